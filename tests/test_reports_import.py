"""Import reports from CSV and JSON Lines and parse their impression section."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cmr_search.cli import app
from cmr_search.settings import Settings
from indexer.catalog.models import Study
from indexer.catalog.session import create_catalog_engine, session_factory
from indexer.reports import ReportFormatError, import_reports, parse_impression
from indexer.scan import catalog_archive
from tests.dicom_factory import CineSpec, new_study_uid, write_cine

REPORT_WITH_HEADINGS = """CLINICAL HISTORY: Dyspnoea.
FINDINGS:
Dilated left ventricle with reduced systolic function.
IMPRESSION:
Dilated cardiomyopathy, LVEF 30 %.
No late gadolinium enhancement.
RECOMMENDATION: Follow-up in 6 months.
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (REPORT_WITH_HEADINGS, "Dilated cardiomyopathy, LVEF 30 %.\nNo late gadolinium enhancement."),
        ("Findings: normal.\nconclusion: Normal study.", "Normal study."),
        ("FINDINGS: x\nSummary\nMild LVH.\n", "Mild LVH."),
        ("Impressions: first\nAddendum: y\nIMPRESSION: final", "final"),
        ("Normal biventricular size and function.", None),
        ("The impression is normal.", None),
        ("IMPRESSION:\n\nFINDINGS: x", None),
    ],
)
def test_parse_impression(text: str, expected: str | None) -> None:
    assert parse_impression(text) == expected


@pytest.fixture
def two_studies(settings: Settings, tmp_path: Path) -> tuple[Settings, str, str]:
    """A catalog with study A (accession ACC-A) and study B (accession ACC-B)."""
    uid_a, uid_b = new_study_uid(), new_study_uid()
    write_cine(tmp_path / "archive" / "a", CineSpec(study_uid=uid_a, accession_number="ACC-A", slices=1, phases=2))
    write_cine(tmp_path / "archive" / "b", CineSpec(study_uid=uid_b, accession_number="ACC-B", patient_id="P2", slices=1, phases=2))
    catalog_archive(settings, [tmp_path / "archive"], workers=1, progress=False)
    return settings, uid_a, uid_b


def stored_reports(settings: Settings) -> dict[str, tuple[str | None, str | None]]:
    with session_factory(create_catalog_engine(settings.database_url))() as session:
        return {s.accession_number: (s.report_text, s.impression) for s in session.scalars(select(Study))}


def test_import_csv_by_accession_and_uid(two_studies: tuple[Settings, str, str], tmp_path: Path) -> None:
    settings, _, uid_b = two_studies
    path = tmp_path / "reports.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as stream:
        writer = csv.writer(stream)
        writer.writerow(["accession_number", "study_instance_uid", "report_text"])
        writer.writerow(["ACC-A", "", REPORT_WITH_HEADINGS])
        writer.writerow(["", uid_b, "Normal study without headings."])
        writer.writerow(["ACC-UNKNOWN", "", "IMPRESSION: lost"])
        writer.writerow(["", "", "no key"])

    with session_factory(create_catalog_engine(settings.database_url)).begin() as session:
        summary = import_reports(session, path)

    assert summary.rows == 4
    assert summary.matched_rows == 2
    assert summary.studies_updated == 2
    assert summary.impression_from_heading == 1
    assert summary.impression_is_whole_text == 1
    assert [(u.row, u.key_column) for u in summary.unmatched] == [(3, "accession_number")]
    assert summary.rows_without_key == [4]
    reports = stored_reports(settings)
    assert reports["ACC-A"] == (REPORT_WITH_HEADINGS, "Dilated cardiomyopathy, LVEF 30 %.\nNo late gadolinium enhancement.")
    assert reports["ACC-B"] == ("Normal study without headings.", "Normal study without headings.")


def test_import_jsonl_with_report_column(two_studies: tuple[Settings, str, str], tmp_path: Path) -> None:
    settings, uid_a, _ = two_studies
    path = tmp_path / "reports.jsonl"
    lines = [{"study_instance_uid": uid_a, "report": "FINDINGS: x\nCONCLUSION: Apical infarct."}, {"accession_number": "NOPE", "report": "y"}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")

    with session_factory(create_catalog_engine(settings.database_url)).begin() as session:
        summary = import_reports(session, path)

    assert summary.rows == 2
    assert summary.matched_rows == 1
    assert [(u.row, u.key_column) for u in summary.unmatched] == [(2, "accession_number")]
    assert stored_reports(settings)["ACC-A"][1] == "Apical infarct."


def test_import_rejects_bad_files(settings: Settings, tmp_path: Path) -> None:
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("accession_number,notes\nA,x\n")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"accession_number": "A", "report": "x"}\n{oops\n')
    wrong_type = tmp_path / "reports.xlsx"
    wrong_type.write_text("x")

    with session_factory(create_catalog_engine(settings.database_url))() as session:
        with pytest.raises(ReportFormatError, match="missing column report_text"):
            import_reports(session, no_text)
        with pytest.raises(ReportFormatError, match="line 2 is not valid JSON"):
            import_reports(session, bad_json)
        with pytest.raises(ReportFormatError, match="unsupported report file type '.xlsx'"):
            import_reports(session, wrong_type)


def test_reports_import_command(two_studies: tuple[Settings, str, str], tmp_path: Path) -> None:
    settings, _, _ = two_studies
    path = tmp_path / "reports.csv"
    path.write_text("accession_number,report_text\nACC-B,SUMMARY: Normal.\nACC-X,IMPRESSION: none\n")

    result = CliRunner().invoke(
        app, ["reports", "import", str(path), "--database-url", settings.database_url, "--data-dir", str(settings.data_dir), "--json"]
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["studies_updated"] == 1
    assert summary["unmatched"] == [{"row": 2, "key_column": "accession_number"}]
    assert stored_reports(settings)["ACC-B"] == ("SUMMARY: Normal.", "Normal.")
