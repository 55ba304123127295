"""Recompute a study's series, frame grids and study attributes from its instances.

Assembly reads only the catalog (Instance.header), never the files, and is
idempotent: series rows are matched by ``group_key`` and updated in place,
so their primary keys stay stable across runs while their frames are rebuilt.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from indexer.catalog.models import Frame, Instance, Patient, Series, Study
from indexer.classify import Label, classify_kind, classify_view, sax_stack_normal
from indexer.frames import FrameInfo, frames_of_instance
from indexer.grid import Grid, build_grid
from indexer.grouping import FrameGroup, group_study_frames

logger = logging.getLogger(__name__)


@dataclass
class AssembledSeries:
    """One series ready to be written: its frames, grid and labels."""

    group: FrameGroup
    grid: Grid
    kind: Label
    view: Label


def assemble_frames(frames: list[FrameInfo]) -> list[AssembledSeries]:
    """Group, order and classify the frames of one study."""
    groups = group_study_frames(frames)
    grids = [(group, build_grid(group.frames)) for group in groups]
    sax_normal = sax_stack_normal(grids)
    assembled = []
    for group, grid in grids:
        kind = classify_kind(group, grid)
        view = classify_view(group, grid, kind, sax_normal)
        assembled.append(AssembledSeries(group, grid, kind, view))
    return assembled


def assemble_study(session: Session, study_pk: int) -> list[Series]:
    """Rebuild the series of study ``study_pk`` and clear its ``needs_assembly`` flag.

    The caller commits. Series whose group no longer exists are deleted.
    """
    study = session.get(Study, study_pk)
    if study is None:
        raise LookupError(f"study {study_pk} is not in the catalog")
    instances = session.execute(
        select(Instance.id, Instance.header).where(Instance.study_pk == study_pk).order_by(Instance.id)
    ).all()
    frames = [frame for pk, header in instances for frame in frames_of_instance(pk, header)]

    existing = {series.group_key: series for series in session.scalars(select(Series).where(Series.study_pk == study_pk))}
    kept: list[Series] = []
    for item in assemble_frames(frames) if frames else []:
        series = existing.pop(item.group.group_key, None)
        if series is None:
            series = Series(study_pk=study_pk, group_key=item.group.group_key)
            session.add(series)
        _fill_series(series, item)
        session.flush()
        _write_frames(session, series.id, item.grid)
        kept.append(series)
    for stale in existing.values():
        session.delete(stale)

    if instances:
        _fill_study(session, study, instances[0].header)
    study.needs_assembly = False
    logger.debug("study %d assembled into %d series", study_pk, len(kept))
    return kept


def _fill_series(series: Series, item: AssembledSeries) -> None:
    header = item.group.first.header
    grid = item.grid
    series.series_instance_uids = item.group.series_uids
    series.series_number = min((n for n in item.group.series_numbers if n is not None), default=None)
    series.series_description = _text(header.get("SeriesDescription"), 256)
    series.protocol_name = _text(header.get("ProtocolName"), 256)
    series.sequence_name = _text(header.get("SequenceName"), 256)
    series.kind, series.kind_rule = item.kind.value, item.kind.rule[:128]
    series.view, series.view_rule = item.view.value, item.view.rule[:128]
    series.slices, series.phases = grid.slices, grid.phases
    series.rows, series.columns = header.get("Rows"), header.get("Columns")
    series.pixel_spacing_mm = header.get("PixelSpacing")
    series.slice_thickness_mm = _float(header.get("SliceThickness"))
    series.slice_spacing_mm = _median_spacing(grid.slice_positions_mm)
    series.image_orientation = list(item.group.first.orientation) if item.group.first.orientation else None
    series.rr_interval_ms, series.heart_rate_bpm = _cardiac_timing(header)
    steps = [step for step in grid.trigger_steps_ms() if step > 0]
    series.temporal_resolution_ms = statistics.fmean(steps) if steps else None
    series.complete = grid.complete
    series.problems = grid.problems
    series.order_rule = grid.order_rule[:128]


def _write_frames(session: Session, series_pk: int, grid: Grid) -> None:
    session.execute(delete(Frame).where(Frame.series_pk == series_pk))
    rows: list[dict[str, Any]] = []
    for (slice_index, phase_index), frame in sorted(grid.cells.items()):
        rows.append(
            {
                "series_pk": series_pk,
                "slice_index": slice_index,
                "phase_index": phase_index,
                "instance_pk": frame.instance_pk,
                "frame_number": frame.frame_number,
                "trigger_time_ms": frame.trigger_time_ms,
                "slice_position_mm": grid.slice_positions_mm[slice_index],
                "image_position": list(frame.position) if frame.position else None,
            }
        )
    if rows:
        session.connection().execute(Frame.__table__.insert(), rows)


def _fill_study(session: Session, study: Study, header: dict[str, Any]) -> None:
    study.accession_number = _text(header.get("AccessionNumber"), 64)
    study.study_date = _date(header.get("StudyDate"))
    study.study_description = _text(header.get("StudyDescription"), 256)
    study.sex = _sex(header.get("PatientSex"))
    study.age_years = _age_years(header.get("PatientAge"), _date(header.get("PatientBirthDate")), study.study_date)
    study.manufacturer = _text(header.get("Manufacturer"), 128)
    study.model_name = _text(header.get("ManufacturerModelName"), 128)
    study.field_strength_t = _float(header.get("MagneticFieldStrength"))
    study.institution_name = _text(header.get("InstitutionName"), 256)

    patient = session.get(Patient, study.patient_pk)
    if patient is not None:
        patient.sex = patient.sex or study.sex
        patient.birth_date = patient.birth_date or _date(header.get("PatientBirthDate"))


def _cardiac_timing(header: dict[str, Any]) -> tuple[float | None, float | None]:
    """Return (RR interval in ms, heart rate in bpm) from NominalInterval and HeartRate."""
    rr = _float(header.get("NominalInterval"))
    rate = _float(header.get("HeartRate"))
    rr = rr if rr and rr > 0 else None
    rate = rate if rate and rate > 0 else None
    if rr is None and rate is not None:
        rr = 60000.0 / rate
    if rate is None and rr is not None:
        rate = 60000.0 / rr
    return rr, rate


def _median_spacing(positions: list[float | None]) -> float | None:
    known = [p for p in positions if p is not None]
    if len(known) < 2:
        return None
    return float(statistics.median(b - a for a, b in zip(known, known[1:])))


def _text(value: Any, limit: int) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, list):
        value = "\\".join(str(v) for v in value)
    return str(value)[:limit]


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> dt.date | None:
    """Parse a DA value (YYYYMMDD); de-identified dates such as 20120000 give None."""
    try:
        return dt.datetime.strptime(str(value), "%Y%m%d").date() if value else None
    except ValueError:
        return None


def _sex(value: Any) -> str | None:
    text = str(value or "").strip().upper()[:1]
    return text if text in ("M", "F", "O") else None


def _age_years(age: Any, birth_date: dt.date | None, study_date: dt.date | None) -> float | None:
    """Parse PatientAge (nnnD, nnnW, nnnM or nnnY), else StudyDate minus PatientBirthDate."""
    text = str(age or "").strip().upper()
    if len(text) >= 2 and text[:-1].isdigit():
        divisor = {"D": 365.25, "W": 365.25 / 7, "M": 12.0, "Y": 1.0}.get(text[-1])
        if divisor:
            return int(text[:-1]) / divisor
    if birth_date and study_date and study_date >= birth_date:
        return (study_date - birth_date).days / 365.25
    return None
