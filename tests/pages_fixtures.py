"""Helpers of the page tests: an indexed test catalog and readers of rendered HTML.

The catalog is embedded by the deterministic ``KeywordEncoder`` of the search
fixtures, so each query has a known best match without loading a model.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from indexer.catalog.models import FindingScore, Study, StudyEmbedding
from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database
from search_app.index_store import rebuild_index
from tests.search_fixtures import FINDINGS, KeywordEncoder, StudySpec

HTMX_HEADERS = {"HX-Request": "true"}


def study_specs(count: int) -> list[StudySpec]:
    """Return ``count`` studies: every finding alone, normals, both sexes, two field strengths, three vendors."""
    specs = []
    for number in range(count):
        findings = (FINDINGS[number % len(FINDINGS)],) if number % 3 else ()
        specs.append(
            StudySpec(
                findings=findings,
                sex="FM"[number % 2],
                age_years=30 + 2 * number,
                study_date=dt.date(2020, 1, 1) + dt.timedelta(days=40 * number),
                field_strength_t=(1.5, 3.0)[number % 2],
                manufacturer=("SIEMENS", "GE MEDICAL SYSTEMS", "Philips")[number % 3],
                views=("sax", "2ch", "4ch") if number % 4 else ("sax",),
            )
        )
    return specs


def migrated_catalog(root: Path) -> tuple[Settings, sessionmaker[Session]]:
    """Create settings with a data directory and a migrated SQLite catalog under ``root``."""
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'catalog.sqlite'}")
    settings.ensure_dirs()
    upgrade_database(settings.database_url)
    return settings, session_factory(create_catalog_engine(settings.database_url))


def embed_catalog(settings: Settings, sessions: sessionmaker[Session], encoder: KeywordEncoder) -> None:
    """Store study vectors and finding scores of ``encoder`` and build its FAISS index."""
    with sessions() as session:
        study_pks = list(session.scalars(select(Study.id).order_by(Study.id)))
        prompts = encoder.finding_prompts()
        prompt_vectors = encoder.encode_text([item.positive[0] for item in prompts])
        for vectors in encoder.encode_studies(session, study_pks):
            session.add(
                StudyEmbedding(
                    study_pk=vectors.study_pk,
                    model_id=encoder.model_id,
                    vector=vectors.study.astype(np.float32).tobytes(),
                    dimension=encoder.dimension,
                    segments={"sax": "real", "4ch": "filled"},
                )
            )
            for item, prompt_vector in zip(prompts, prompt_vectors):
                score = float(vectors.study @ prompt_vector)
                session.add(FindingScore(study_pk=vectors.study_pk, model_id=encoder.model_id, finding=item.name, score=score))
        session.commit()
        rebuild_index(settings, session, encoder.model_id, encoder.dimension)


def card_study_pks(html: str) -> list[int]:
    """Return the study keys of the result cards, in page order."""
    return [int(value) for value in re.findall(r'<li id="study-card-(\d+)">', html)]


def card_html(html: str, study_pk: int) -> str:
    """Return the markup of one result card."""
    start = html.index(f'<li id="study-card-{study_pk}">')
    end = html.index("</article>", start)
    return html[start:end]
