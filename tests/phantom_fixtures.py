"""Shared pytest fixtures of the phantom tests, also used by other stages' tests.

``phantom_archive`` generates one small synthetic archive per test session.
Its seed was chosen so that its studies cover every finding label, a normal
study and the three standard-domain vendors. They also cover both values of
every header switch: enhanced multi-frame, one series per slice, empty
descriptions, JPEG 2000 or native pixel data, and LGE series or not.
test_phantom_headers checks that this is still true.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PHANTOM_FIXTURE_STUDIES = 14
PHANTOM_FIXTURE_SEED = 7


@pytest.fixture(scope="session")
def phantom_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a 14-study standard-domain phantom archive (dicom/, reports, ground truth)."""
    from phantom import generate_archive

    root = tmp_path_factory.mktemp("phantom") / "archive"
    generate_archive(root, PHANTOM_FIXTURE_STUDIES, PHANTOM_FIXTURE_SEED, progress=False, workers=2)
    return root


@pytest.fixture(scope="session")
def phantom_ground_truth(phantom_archive: Path) -> list[dict[str, Any]]:
    """Parsed ``ground_truth.jsonl`` of :func:`phantom_archive`, one dict per study in index order."""
    from phantom import read_ground_truth

    return read_ground_truth(phantom_archive)


@pytest.fixture(scope="session")
def phantom_reports(phantom_archive: Path) -> dict[str, str]:
    """Report text of each study of :func:`phantom_archive`, keyed by AccessionNumber."""
    with (phantom_archive / "reports.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {row["accession_number"]: row["report_text"] for row in rows}
