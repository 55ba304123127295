"""The indexer's catalog of the phantom archive: every series' kind and view, every report matched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cmr_search.settings import Settings
from indexer.catalog.models import Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory
from indexer.reports import import_reports, parse_impression
from indexer.scan import catalog_archive
from phantom import generate_archive, read_ground_truth
from phantom.reports import IMPRESSION_HEADINGS

# Five shifted-domain studies with all three of its vendor styles, LGE
# series from each, enhanced and classic files, and empty descriptions.
SHIFTED_SEED = 5
SHIFTED_STUDIES = 5


@pytest.fixture(scope="module")
def phantom_catalog(phantom_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("phantom-catalog")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
    catalog_archive(settings, [phantom_archive / "dicom"], workers=1, progress=False)
    return settings


@pytest.fixture(scope="module")
def shifted_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("phantom-shifted") / "archive"
    generate_archive(root, SHIFTED_STUDIES, SHIFTED_SEED, domain="shifted", progress=False, workers=2)
    settings = Settings(data_dir=root.parent / "data", database_url=f"sqlite:///{root.parent / 'catalog.sqlite'}")
    catalog_archive(settings, [root / "dicom"], workers=1, progress=False)
    return settings, read_ground_truth(root)


def expected_series(ground_truth: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    expected = {}
    for row in ground_truth:
        for series in row["series"]:
            style = {key: row["parameters"][key] for key in ("vendor_style", "enhanced_multiframe", "per_slice_series", "empty_series_descriptions")}
            expected[series["series_instance_uid"]] = {**series, **style}
    return expected


def misclassified_series(settings: Settings, ground_truth: list[dict[str, Any]]) -> tuple[set[str], list[str]]:
    """Return the catalogued SeriesInstanceUIDs and a line per series whose kind or view is wrong."""
    expected = expected_series(ground_truth)
    engine = create_catalog_engine(settings.database_url)
    seen: set[str] = set()
    wrong = []
    try:
        with session_factory(engine)() as session:
            for series in session.scalars(select(Series)):
                uids = list(series.series_instance_uids)
                seen.update(uids)
                truth = expected[uids[0]]
                if (series.kind, series.view) != (truth["kind"], truth["view"]):
                    wrong.append(
                        f"{truth['kind']} {truth['view']} ({truth['vendor_style']}, enhanced={truth['enhanced_multiframe']}, "
                        f"empty description={truth['empty_series_descriptions']}, description={series.series_description!r}) "
                        f"catalogued as {series.kind} {series.view} by {series.kind_rule!r} / {series.view_rule!r}"
                    )
    finally:
        engine.dispose()
    return seen, wrong


def test_catalog_classifies_every_series(phantom_catalog: Settings, phantom_ground_truth: list[dict[str, Any]]) -> None:
    seen, wrong = misclassified_series(phantom_catalog, phantom_ground_truth)
    assert seen == set(expected_series(phantom_ground_truth))
    assert wrong == [], "\n".join(wrong)


def test_catalog_classifies_shifted_series(shifted_archive: tuple[Settings, list[dict[str, Any]]]) -> None:
    settings, ground_truth = shifted_archive
    seen, wrong = misclassified_series(settings, ground_truth)
    assert seen == set(expected_series(ground_truth))
    assert wrong == [], "\n".join(wrong)


def test_catalog_grid_matches_ground_truth(phantom_catalog: Settings, phantom_ground_truth: list[dict[str, Any]]) -> None:
    expected = expected_series(phantom_ground_truth)
    engine = create_catalog_engine(phantom_catalog.database_url)
    try:
        with session_factory(engine)() as session:
            for series in session.scalars(select(Series)):
                truths = [expected[uid] for uid in series.series_instance_uids]
                assert series.slices == sum(truth["slices"] for truth in truths), series.series_description
                assert series.phases == truths[0]["phases"], series.series_description
            studies = session.scalars(select(Study)).all()
            assert {study.study_instance_uid for study in studies} == {row["study_instance_uid"] for row in phantom_ground_truth}
    finally:
        engine.dispose()


def test_reports_import_into_catalog(phantom_catalog: Settings, phantom_archive: Path, phantom_reports: dict[str, str]) -> None:
    engine = create_catalog_engine(phantom_catalog.database_url)
    try:
        with session_factory(engine).begin() as session:
            summary = import_reports(session, phantom_archive / "reports.csv")
    finally:
        engine.dispose()
    assert summary.unmatched == []
    assert summary.matched_rows == len(phantom_reports)
    for text in phantom_reports.values():
        impression = parse_impression(text)
        assert impression is not None, text
        written = text.split(next(line for line in text.splitlines() if line.strip() in IMPRESSION_HEADINGS), 1)[1].strip()
        assert impression.strip() == written
