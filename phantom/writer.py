"""Write one planned study to disk: series to DICOM, plus its ground-truth row and report."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from phantom.dicom_classic import SeriesIds, write_classic_series
from phantom.dicom_common import ENHANCED_MR_IMAGE_STORAGE, MR_IMAGE_STORAGE, study_identity
from phantom.dicom_enhanced import write_enhanced_series
from phantom.measurements import study_labels, study_parameters
from phantom.reports import write_report
from phantom.series import render_series, series_layouts
from phantom.study import StudyPlan, plan_study
from phantom.uids import derive_uid

# Study-level choice of file names, so nothing downstream can rely on them.
FILE_PATTERNS = ("{:04d}.dcm", "IM_{:04d}.dcm", "MR{:06d}.dcm", "img{:05d}.dcm")


@dataclass
class StudyResult:
    """Ground-truth row, report row and file counts of one written study."""

    index: int
    ground_truth: dict[str, Any]
    report: dict[str, str]
    files: int = 0
    bytes: int = 0
    series: int = 0
    seconds: float = 0.0
    paths: list[Path] = field(default_factory=list)


def _stable_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big")


def _series_number(plan: StudyPlan, position: int) -> int:
    # Philips numbers series 101, 201, ...; the others count from 1.
    return 100 * position + 1 if plan.acquisition.vendor.startswith("philips") else position


def write_study(seed: int, index: int, scenario: str, domain: str, dicom_root: Path) -> StudyResult:
    """Plan, render and write study ``index``; return its ground truth and report rows."""
    plan = plan_study(seed, index, scenario, domain)
    identity = study_identity(plan)
    parameters = study_parameters(plan)
    labels = study_labels(parameters)
    report_rng = np.random.default_rng(np.random.SeedSequence([seed, index, _stable_int("report") % 2**32]))
    report_text = write_report(parameters, labels, report_rng)

    study_folder = dicom_root / f"study_{index + 1:04d}"
    pattern = FILE_PATTERNS[_stable_int(seed, index, "file-names") % len(FILE_PATTERNS)]
    series_rows = []
    result = StudyResult(index=index, ground_truth={}, report={})
    for position, layout in enumerate(series_layouts(plan), start=1):
        number = _series_number(plan, position)
        ids = SeriesIds(number, derive_uid(seed, index, "series", number), study_folder / f"series_{number:04d}", pattern)
        rendered = render_series(plan, layout)
        writer = write_enhanced_series if plan.acquisition.enhanced else write_classic_series
        paths = writer(plan, identity, rendered, ids, plan.acquisition.compressed)
        result.paths += paths
        result.files += len(paths)
        result.bytes += sum(path.stat().st_size for path in paths)
        series_rows.append(
            {
                "series_instance_uid": ids.uid,
                "series_number": number,
                "kind": layout.kind,
                "view": layout.view,
                "slices": len(layout.planes),
                "phases": len(layout.phase_fractions),
                "sop_class_uid": str(ENHANCED_MR_IMAGE_STORAGE if plan.acquisition.enhanced else MR_IMAGE_STORAGE),
                "files": len(paths),
                "folder": str(ids.folder.relative_to(dicom_root.parent)),
            }
        )
    result.series = len(series_rows)
    result.ground_truth = {
        "study_instance_uid": identity.study_instance_uid,
        "accession_number": identity.accession_number,
        "patient_id": identity.patient_id,
        "domain": domain,
        "seed": seed,
        "study_index": index,
        "scenario": scenario,
        "parameters": parameters,
        "labels": labels,
        "series": series_rows,
    }
    result.report = {
        "accession_number": identity.accession_number,
        "study_instance_uid": identity.study_instance_uid,
        "report_text": report_text,
    }
    return result
