"""Import radiology reports and attach them, with their impression section, to catalogued studies.

Input is CSV (UTF-8, an optional byte-order mark) or JSON Lines, one report per
row, with the columns ``accession_number`` and/or ``study_instance_uid`` and
``report_text`` (``report`` is accepted as well). A row is matched by
StudyInstanceUID when it has one, else by AccessionNumber. Rows that match no
study are listed in the summary by row number and key column, never dropped
silently. Key values are not repeated there because they identify patients.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.catalog.models import Study

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("report_text", "report")
KEY_COLUMNS = ("study_instance_uid", "accession_number")

# Headings whose section is the impression, and headings that end a section.
IMPRESSION_HEADINGS = ("impressions?", "conclusions?", "summary", "opinion")
OTHER_HEADINGS = (
    "findings", "technique", "history", "clinical history", "indication", "indications", "comparison",
    "recommendations?", "procedure", "protocol", "measurements", "addendum", "report",
)
_HEADING = r"^[ \t]*(?P<name>{names})[ \t]*(?::|\n|$)"
_IMPRESSION_RE = re.compile(_HEADING.format(names="|".join(IMPRESSION_HEADINGS)), re.IGNORECASE | re.MULTILINE)
_ANY_HEADING_RE = re.compile(
    _HEADING.format(names="|".join(IMPRESSION_HEADINGS + OTHER_HEADINGS)), re.IGNORECASE | re.MULTILINE
)


class ReportFormatError(ValueError):
    """The report file has an unsupported format or lacks a required column."""


@dataclass
class UnmatchedRow:
    """A report row whose key matched no catalogued study."""

    row: int
    key_column: str


@dataclass
class ImportSummary:
    """Counts and skipped rows of one import; ``row`` numbers count data rows from 1."""

    rows: int = 0
    matched_rows: int = 0
    studies_updated: int = 0
    impression_from_heading: int = 0
    impression_is_whole_text: int = 0
    rows_without_key: list[int] = field(default_factory=list)
    rows_without_text: list[int] = field(default_factory=list)
    unmatched: list[UnmatchedRow] = field(default_factory=list)

    def to_json(self) -> str:
        """Serialise the summary as one JSON object."""
        return json.dumps(asdict(self), sort_keys=True)

    def print(self, console: Console) -> None:
        """Print the counts and every row that was not stored."""
        console.print(
            f"{self.rows} rows: {self.matched_rows} matched, {self.studies_updated} studies updated, "
            f"{len(self.unmatched)} unmatched"
        )
        console.print(
            f"impression: {self.impression_from_heading} from an IMPRESSION/CONCLUSION/SUMMARY heading, "
            f"{self.impression_is_whole_text} without such a heading (whole report text stored as impression)"
        )
        for item in self.unmatched:
            console.print(f"  row {item.row}: no catalogued study has this {item.key_column}")
        if self.rows_without_key:
            console.print(f"  rows without accession_number or study_instance_uid: {self.rows_without_key}")
        if self.rows_without_text:
            console.print(f"  rows with an empty report: {self.rows_without_text}")


def parse_impression(text: str) -> str | None:
    """Return the impression section of a report, or None when it has no such heading.

    The section starts after an IMPRESSION, CONCLUSION, SUMMARY or OPINION
    heading (case-insensitive, at the start of a line, followed by a colon or
    a line break) and ends at the next known heading or the end of the text.
    When several impression headings occur, the last one is used, because
    reports put the final impression at the end.
    """
    matches = list(_IMPRESSION_RE.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    following = _ANY_HEADING_RE.search(text, start)
    section = text[start : following.start() if following else len(text)].strip()
    return section or None


def import_reports(session: Session, path: Path | str) -> ImportSummary:
    """Store report text and impression on the studies that the rows of ``path`` name.

    The caller commits. Raises ReportFormatError for an unknown file
    extension, a malformed row or a missing text or key column.
    """
    rows = list(_read_rows(Path(path)))  # parse the whole file first, so a bad line changes nothing
    summary = ImportSummary()
    updated: set[int] = set()
    for row_number, row in rows:
        summary.rows += 1
        text = _text_of(row)
        key_column, key = _key_of(row)
        if key is None:
            summary.rows_without_key.append(row_number)
            continue
        if not text:
            summary.rows_without_text.append(row_number)
            continue

        column = Study.study_instance_uid if key_column == "study_instance_uid" else Study.accession_number
        studies = session.scalars(select(Study).where(column == key)).all()
        if not studies:
            summary.unmatched.append(UnmatchedRow(row_number, key_column))
            continue

        impression = parse_impression(text)
        if impression is None:
            summary.impression_is_whole_text += 1
            impression = text.strip()
        else:
            summary.impression_from_heading += 1
        summary.matched_rows += 1
        for study in studies:
            study.report_text = text
            study.impression = impression
            updated.add(study.id)

    summary.studies_updated = len(updated)
    logger.info(
        "imported %d report rows: %d studies updated, %d rows unmatched",
        summary.rows, summary.studies_updated, len(summary.unmatched),
    )
    return summary


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            _check_columns(path, reader.fieldnames or [])
            for number, row in enumerate(reader, start=1):
                yield number, {(k or "").strip().lower(): v for k, v in row.items()}
        return
    if suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8-sig") as stream:
            number = 0
            for line_number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                number += 1
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ReportFormatError(f"{path}: line {line_number} is not valid JSON: {error.msg}") from error
                if not isinstance(row, dict):
                    raise ReportFormatError(f"{path}: line {line_number} is not a JSON object")
                row = {str(k).strip().lower(): v for k, v in row.items()}
                if number == 1:
                    _check_columns(path, list(row))
                yield number, row
        return
    raise ReportFormatError(f"{path}: unsupported report file type {suffix!r}; expected .csv or .jsonl")


def _check_columns(path: Path, columns: list[str]) -> None:
    names = {c.strip().lower() for c in columns if c}
    if not names & set(TEXT_COLUMNS):
        raise ReportFormatError(f"{path}: missing column report_text (or report); found {sorted(names)}")
    if not names & set(KEY_COLUMNS):
        raise ReportFormatError(
            f"{path}: missing column accession_number or study_instance_uid; found {sorted(names)}"
        )


def _text_of(row: dict[str, Any]) -> str:
    for column in TEXT_COLUMNS:
        value = row.get(column)
        if value not in (None, ""):
            return str(value)
    return ""


def _key_of(row: dict[str, Any]) -> tuple[str, str | None]:
    for column in KEY_COLUMNS:
        value = row.get(column)
        if value not in (None, "") and str(value).strip():
            return column, str(value).strip()
    return KEY_COLUMNS[0], None
