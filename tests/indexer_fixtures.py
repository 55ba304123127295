"""Shared pytest fixtures of the indexer tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cmr_search.settings import Settings
from indexer.scan import catalog_archive
from indexer.summary import ScanSummary


@dataclass(frozen=True)
class ScannedArchive:
    """A catalog built from one archive, with the summaries of a first run and a rerun."""

    settings: Settings
    first: ScanSummary
    rerun: ScanSummary


@pytest.fixture(scope="session")
def sunnybrook_catalog(sunnybrook: Path, tmp_path_factory: pytest.TempPathFactory) -> ScannedArchive:
    """The Sunnybrook archive catalogued into SQLite with 2 workers, then scanned again."""
    data_dir = tmp_path_factory.mktemp("sunnybrook-catalog")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
    first = catalog_archive(settings, [sunnybrook], workers=2, progress=False)
    rerun = catalog_archive(settings, [sunnybrook], workers=2, progress=False)
    return ScannedArchive(settings, first, rerun)
