"""Reports written from the ground truth: every finding stated, normals called normal, varied wording."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from phantom.reports import FINDINGS_HEADINGS, IMPRESSION_HEADINGS, write_report


def split_sections(text: str) -> tuple[str, str]:
    """Return the findings and impression sections of a phantom report."""
    lines = text.splitlines()
    findings_at = next(i for i, line in enumerate(lines) if line.strip() in FINDINGS_HEADINGS)
    impression_at = next(i for i, line in enumerate(lines) if line.strip() in IMPRESSION_HEADINGS)
    assert findings_at < impression_at
    return "\n".join(lines[findings_at + 1 : impression_at]), "\n".join(lines[impression_at + 1 :])


def has(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


def check_positive_findings(parameters: dict[str, Any], labels: dict[str, bool], text: str) -> list[str]:
    """Return the positive labels that the findings or the impression fail to state."""
    findings, impression = split_sections(text)
    missing = []
    ef = f"{round(parameters['lv_ef_pct'])}%"
    checks = {
        "lv_systolic_dysfunction": (ef in findings and ef in impression and has(r"reduced|impaired|dysfunction", findings + impression)),
        "lv_dilation": (has(r"dilat", findings) and has(r"dilat", impression) and f"{round(parameters['lv_edvi_ml_m2'])} ml/m²" in findings),
        "lv_hypertrophy": (has(r"hypertroph|LVH", findings) and has(r"hypertroph|LVH|HCM", impression) and f"{round(parameters['max_wall_thickness_mm'])} mm" in findings),
        "rv_dilation": (has(r"\b(RV|right ventricle)\b.*dilat|dilat.*\bRV\b", findings) and has(r"dilated", impression)),
        "rv_dysfunction": (f"{round(parameters['rv_ef_pct'])}%" in findings and has(r"impaired|dysfunction|reduced", findings) and has(r"impaired", impression)),
        "regional_wma": (parameters["wma_territory"] in findings and parameters["wma_severity"] in findings.lower() and parameters["wma_territory"] in impression),
        "lge": (has(r"LGE|late gadolinium enhancement", findings) and has(r"LGE|fibrosis|infarct", impression)),
        "pericardial_effusion": (f"{round(parameters['effusion_mm'])} mm" in findings and has(r"effusion", impression)),
    }
    for label, stated in checks.items():
        if labels[label] and not stated:
            missing.append(label)
    return missing


def test_reports_state_every_finding(phantom_ground_truth: list[dict[str, Any]], phantom_reports: dict[str, str]) -> None:
    for row in phantom_ground_truth:
        text = phantom_reports[row["accession_number"]]
        assert check_positive_findings(row["parameters"], row["labels"], text) == [], text


def test_lge_pattern_named(phantom_ground_truth: list[dict[str, Any]], phantom_reports: dict[str, str]) -> None:
    words = {"subendocardial": r"subendocardial", "transmural": r"transmural|full-thickness", "midwall": r"mid-wall|midwall|mid-myocardial"}
    for row in phantom_ground_truth:
        if row["labels"]["lge"]:
            findings, _ = split_sections(phantom_reports[row["accession_number"]])
            assert has(words[row["parameters"]["lge_pattern"]], findings), findings


def test_negatives_stated(phantom_ground_truth: list[dict[str, Any]], phantom_reports: dict[str, str]) -> None:
    for row in phantom_ground_truth:
        findings, _ = split_sections(phantom_reports[row["accession_number"]])
        labels = row["labels"]
        if not labels["pericardial_effusion"]:
            assert has(r"no (pericardial )?effusion|no pericardial effusion", findings), findings
        if not labels["regional_wma"]:
            assert has(r"no regional|no RWMA|regional wall motion is normal", findings), findings
        if not labels["lge"] and row["parameters"]["has_lge_series"]:
            assert has(r"no (myocardial )?(LGE|late)|LGE: none", findings), findings
        if not row["parameters"]["has_lge_series"]:
            assert has(r"not assessed|not performed|no LGE imaging", findings), findings


def test_normal_studies_called_normal(phantom_ground_truth: list[dict[str, Any]], phantom_reports: dict[str, str]) -> None:
    normals = [row for row in phantom_ground_truth if not any(row["labels"].values())]
    assert normals
    for row in normals:
        _, impression = split_sections(phantom_reports[row["accession_number"]])
        assert has(r"normal|no abnormality", impression), impression
        assert not has(r"dilated|reduced|hypertroph|effusion\b(?! )|akinesis|hypokinesis", impression), impression


def test_abnormal_impression_not_normal(phantom_ground_truth: list[dict[str, Any]], phantom_reports: dict[str, str]) -> None:
    for row in phantom_ground_truth:
        if any(row["labels"].values()):
            _, impression = split_sections(phantom_reports[row["accession_number"]])
            assert not has(r"normal (cardiac MRI|study|CMR)|no abnormality", impression), impression


def test_wording_varies(phantom_ground_truth: list[dict[str, Any]]) -> None:
    reports = []
    for row in phantom_ground_truth:
        for draw in range(25):
            reports.append(write_report(row["parameters"], row["labels"], np.random.default_rng([draw, row["study_index"]])))
    assert len(set(reports)) == len(reports)

    sentences = Counter(sentence for report in reports for sentence in set(re.split(r"(?<=\.)\s+|\n", report)) if len(sentence) > 12)
    most_common, count = sentences.most_common(1)[0]
    assert count < 0.35 * len(reports), most_common

    impression_headings = Counter(split_sections_heading(report) for report in reports)
    assert len(impression_headings) >= 5


def split_sections_heading(text: str) -> str:
    return next(line.strip() for line in text.splitlines() if line.strip() in IMPRESSION_HEADINGS)


def test_report_files_agree(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    with (phantom_archive / "reports.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["accession_number", "study_instance_uid", "report_text"]
        csv_rows = list(reader)
    with (phantom_archive / "reports.jsonl").open(encoding="utf-8") as handle:
        jsonl_rows = [json.loads(line) for line in handle]
    assert csv_rows == jsonl_rows
    assert [row["study_instance_uid"] for row in csv_rows] == [row["study_instance_uid"] for row in phantom_ground_truth]
    assert [row["accession_number"] for row in csv_rows] == [row["accession_number"] for row in phantom_ground_truth]
