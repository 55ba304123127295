"""The demo's phantom archive step: generate once, reuse, replace a partial run, reject a conflict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmr_search.settings import Settings
from search_app.demo import (
    MARKER_FILE,
    DemoArchive,
    DemoArchiveConflictError,
    archive_dir,
    ensure_phantom_archive,
    read_marker,
    sunnybrook_root,
)


@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose data directory contains a complete one-study phantom archive."""
    root = tmp_path_factory.mktemp("demo-archive")
    settings = Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'catalog.sqlite'}")
    settings.ensure_dirs()
    ensure_phantom_archive(settings, studies=1, seed=3, workers=1, progress=False)
    return settings


def test_archive_generated_with_marker(demo_settings: Settings) -> None:
    folder = archive_dir(demo_settings)

    assert (folder / "reports.csv").is_file()
    assert any((folder / "dicom").rglob("*.dcm"))
    assert read_marker(demo_settings) == DemoArchive(studies=1, seed=3)
    marker = json.loads((demo_settings.data_dir / MARKER_FILE).read_text())
    assert marker == {"studies": 1, "seed": 3}


def test_complete_archive_reused(demo_settings: Settings) -> None:
    folder = archive_dir(demo_settings)
    before = {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}

    returned = ensure_phantom_archive(demo_settings, studies=1, seed=3, workers=1, progress=False)

    assert returned == folder
    after = {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}
    assert after == before


@pytest.mark.parametrize(("studies", "seed"), [(2, 3), (1, 4)])
def test_other_parameters_rejected(demo_settings: Settings, studies: int, seed: int) -> None:
    with pytest.raises(DemoArchiveConflictError) as raised:
        ensure_phantom_archive(demo_settings, studies=studies, seed=seed, workers=1, progress=False)

    message = str(raised.value)
    assert "Rerun with --studies 1 --seed 3" in message
    assert "another --data-dir" in message


def test_partial_archive_replaced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    settings.ensure_dirs()
    leftover = archive_dir(settings) / "dicom" / "interrupted" / "half-written.dcm"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"not a finished file")

    ensure_phantom_archive(settings, studies=1, seed=5, workers=1, progress=False)

    assert not leftover.exists()
    assert (archive_dir(settings) / "reports.csv").is_file()
    assert read_marker(settings) == DemoArchive(studies=1, seed=5)


def test_sunnybrook_root_prefers_studies(tmp_path: Path) -> None:
    (tmp_path / "with" / "studies").mkdir(parents=True)
    (tmp_path / "without").mkdir()

    assert sunnybrook_root(tmp_path / "with") == tmp_path / "with" / "studies"
    assert sunnybrook_root(tmp_path / "without") == tmp_path / "without"
