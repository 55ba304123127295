"""The summary of a scan: what this run read, and what the catalog now contains."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.catalog.models import ScanError, ScannedFile, Series, Study


@dataclass
class SeriesSummary:
    """One catalog series as the summary reports it."""

    id: int
    series_number: int | None
    kind: str
    kind_rule: str
    view: str
    view_rule: str
    slices: int
    phases: int
    complete: bool
    problems: list[str]


@dataclass
class StudySummary:
    """One catalog study, identified by its catalog id and AccessionNumber only."""

    id: int
    accession_number: str | None
    series: list[SeriesSummary]


@dataclass
class ScanSummary:
    """Counts of one scan run and of the whole catalog after it.

    ``files_missing`` counts catalogued files under the scanned paths that
    the walk no longer found; they stay in the catalog.
    ``files_by_status`` counts the files this run read, by ScannedFile.status
    (dicom, duplicate, non_image, non_dicom, error). ``errors`` counts the
    ScanError rows of the catalog, which include one per non-DICOM file. ``catalog_files_by_status`` and the
    series counts cover the whole catalog.
    """

    files_seen: int = 0
    files_unchanged: int = 0
    files_missing: int = 0
    files_read: int = 0
    files_by_status: dict[str, int] = field(default_factory=dict)
    catalog_files_by_status: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    studies: int = 0
    studies_assembled: int = 0
    series_by_kind: dict[str, int] = field(default_factory=dict)
    series_by_view: dict[str, int] = field(default_factory=dict)
    incomplete_series: int = 0
    seconds: float = 0.0
    seconds_by_phase: dict[str, float] = field(default_factory=dict)
    study_details: list[StudySummary] = field(default_factory=list)

    @property
    def indexed_anything(self) -> bool:
        """True when the catalog contains at least one study after the run."""
        return self.studies > 0

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain data; ``study_details`` becomes ``studies_detail``."""
        data = asdict(self)
        data["studies_detail"] = data.pop("study_details")
        return data

    def to_json(self) -> str:
        """Serialise the summary as one JSON object."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def print(self, console: Console) -> None:
        """Print the counts as two tables."""
        files = Table(title="Files", show_header=False)
        files.add_row("seen", str(self.files_seen))
        files.add_row("unchanged (not re-read)", str(self.files_unchanged))
        files.add_row("catalogued but no longer on disk", str(self.files_missing))
        files.add_row("read", str(self.files_read))
        for status in ("dicom", "duplicate", "non_image", "non_dicom", "error"):
            files.add_row(f"  {status.replace('_', '-')}", str(self.files_by_status.get(status, 0)))
        files.add_row("error records in catalog (incl. non-DICOM)", str(self.errors))
        files.add_row("seconds", f"{self.seconds:.1f}")
        console.print(files)

        series = Table(title=f"Catalog: {self.studies} studies")
        series.add_column("kind")
        series.add_column("series", justify="right")
        for kind, count in sorted(self.series_by_kind.items()):
            series.add_row(kind, str(count))
        series.add_section()
        for view, count in sorted(self.series_by_view.items()):
            series.add_row(f"view {view}", str(count))
        series.add_section()
        series.add_row("incomplete", str(self.incomplete_series))
        console.print(series)


def summarize_catalog(session: Session) -> ScanSummary:
    """Count studies, series by kind and view, files and errors in the catalog."""
    summary = ScanSummary()
    summary.studies = session.scalar(select(func.count(Study.id))) or 0
    summary.errors = session.scalar(select(func.count(ScanError.id))) or 0
    status_counts = session.execute(select(ScannedFile.status, func.count(ScannedFile.id)).group_by(ScannedFile.status))
    summary.catalog_files_by_status = {status: count for status, count in status_counts}

    by_kind: Counter[str] = Counter()
    by_view: Counter[str] = Counter()
    details: dict[int, StudySummary] = {
        study_pk: StudySummary(study_pk, accession, [])
        for study_pk, accession in session.execute(select(Study.id, Study.accession_number).order_by(Study.id))
    }
    for series in session.scalars(select(Series).order_by(Series.study_pk, Series.series_number, Series.id)):
        by_kind[series.kind] += 1
        by_view[series.view] += 1
        summary.incomplete_series += 0 if series.complete else 1
        details[series.study_pk].series.append(
            SeriesSummary(
                id=series.id,
                series_number=series.series_number,
                kind=series.kind,
                kind_rule=series.kind_rule,
                view=series.view,
                view_rule=series.view_rule,
                slices=series.slices,
                phases=series.phases,
                complete=series.complete,
                problems=list(series.problems or []),
            )
        )
    summary.series_by_kind = dict(by_kind)
    summary.series_by_view = dict(by_view)
    summary.study_details = list(details.values())
    return summary
