"""Shared pytest fixtures of the embedding tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from cmr_search.settings import Settings
from indexer.catalog.models import Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory

# One impression per Sunnybrook cine study (all heart failure with infarction), varied so pairs differ.
TRAINING_IMPRESSIONS = (
    "Dilated LV with severely reduced EF. Inferior MI with transmural LGE.",
    "Moderately impaired LV systolic function. Anterior wall akinesis, LAD territory infarct.",
    "Severely dilated left ventricle, LVEF 20%. Lateral subendocardial LGE.",
    "Global LV hypokinesis, EF 30%. Septal scar.",
    "Dilated cardiomyopathy pattern with LVEF 25% and inferolateral infarction.",
)


@pytest.fixture
def sunnybrook_training_catalog(sunnybrook_catalog, tmp_path: Path) -> Settings:
    """A private copy of the Sunnybrook catalog whose five cine studies have report impressions."""
    data_dir = tmp_path / "sunnybrook-training"
    data_dir.mkdir()
    source = Path(sunnybrook_catalog.settings.database_url.removeprefix("sqlite:///"))
    shutil.copy(source, data_dir / "catalog.sqlite")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
    settings.ensure_dirs()

    engine = create_catalog_engine(settings.database_url)
    with session_factory(engine)() as session:
        cine_studies = session.scalars(
            select(Study).join(Series, Series.study_pk == Study.id).where(Series.kind == "cine").order_by(Study.id)
        ).all()
        for study, impression in zip(cine_studies, TRAINING_IMPRESSIONS, strict=True):
            study.impression = impression
        session.commit()
    engine.dispose()
    return settings
