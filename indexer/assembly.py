"""Recompute a study's series, frame grids and study attributes from its instances.

Assembly reads only the catalog (Instance.header), never the files, and is
idempotent: series rows are matched by ``group_key`` and updated in place,
so their primary keys stay stable across runs while their frames are rebuilt.
It has two steps so that the scan can run the first in worker processes:
:func:`plan_study` reads and computes, :func:`write_study_plan` writes.
"""

from __future__ import annotations

import datetime as dt
import json
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
from indexer.store import insert_rows

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


@dataclass
class SeriesPlan:
    """Column values of one Series row and its Frame rows (tuples in FRAME_COLUMNS order, without ``series_pk``)."""

    group_key: str
    values: dict[str, Any]
    frames: list[tuple[Any, ...]]


@dataclass
class StudyPlan:
    """Everything assembly will write for one study; plain data, so worker processes can return it."""

    study_pk: int
    study_values: dict[str, Any]
    patient_values: dict[str, Any]
    series: list[SeriesPlan]


def plan_study(session: Session, study_pk: int) -> StudyPlan:
    """Read the instances of study ``study_pk`` and compute its series; writes nothing."""
    instances = session.execute(
        select(Instance.id, Instance.header).where(Instance.study_pk == study_pk).order_by(Instance.id)
    ).all()
    frames = [frame for pk, header in instances for frame in frames_of_instance(pk, header)]
    series = [_series_plan(item) for item in assemble_frames(frames)] if frames else []
    first_header = instances[0].header if instances else {}
    study_values = _study_values(first_header) if instances else {}
    patient_values = {"sex": study_values.get("sex"), "birth_date": _date(first_header.get("PatientBirthDate"))}
    return StudyPlan(study_pk, study_values, patient_values, series)


def write_study_plan(session: Session, plan: StudyPlan) -> list[Series]:
    """Write ``plan``: update series in place by ``group_key``, delete stale ones, clear ``needs_assembly``.

    The caller commits.
    """
    study = session.get(Study, plan.study_pk)
    if study is None:
        raise LookupError(f"study {plan.study_pk} is not in the catalog")
    existing = {series.group_key: series for series in session.scalars(select(Series).where(Series.study_pk == plan.study_pk))}
    kept: list[Series] = []
    for item in plan.series:
        series = existing.pop(item.group_key, None)
        if series is None:
            series = Series(study_pk=plan.study_pk, group_key=item.group_key)
            session.add(series)
        for name, value in item.values.items():
            setattr(series, name, value)
        session.flush()
        _write_frames(session, series.id, item.frames)
        kept.append(series)
    for stale in existing.values():
        session.delete(stale)

    for name, value in plan.study_values.items():
        setattr(study, name, value)
    patient = session.get(Patient, study.patient_pk)
    if patient is not None:
        patient.sex = patient.sex or plan.patient_values.get("sex")
        patient.birth_date = patient.birth_date or plan.patient_values.get("birth_date")
    study.needs_assembly = False
    logger.debug("study %d assembled into %d series", plan.study_pk, len(kept))
    return kept


def assemble_study(session: Session, study_pk: int) -> list[Series]:
    """Rebuild the series of study ``study_pk`` and clear its ``needs_assembly`` flag; the caller commits."""
    if session.get(Study, study_pk) is None:
        raise LookupError(f"study {study_pk} is not in the catalog")
    return write_study_plan(session, plan_study(session, study_pk))


def _series_plan(item: AssembledSeries) -> SeriesPlan:
    header = item.group.first.header
    grid = item.grid
    rr_interval, heart_rate = _cardiac_timing(header)
    steps = [step for step in grid.trigger_steps_ms() if step > 0]
    values = {
        "series_instance_uids": item.group.series_uids,
        "series_number": min((n for n in item.group.series_numbers if n is not None), default=None),
        "series_description": _text(header.get("SeriesDescription"), 256),
        "protocol_name": _text(header.get("ProtocolName"), 256),
        "sequence_name": _text(header.get("SequenceName"), 256),
        "kind": item.kind.value,
        "kind_rule": item.kind.rule[:128],
        "view": item.view.value,
        "view_rule": item.view.rule[:128],
        "slices": grid.slices,
        "phases": grid.phases,
        "rows": header.get("Rows"),
        "columns": header.get("Columns"),
        "pixel_spacing_mm": header.get("PixelSpacing"),
        "slice_thickness_mm": _float(header.get("SliceThickness")),
        "slice_spacing_mm": _median_spacing(grid.slice_positions_mm),
        "image_orientation": list(item.group.first.orientation) if item.group.first.orientation else None,
        "rr_interval_ms": rr_interval,
        "heart_rate_bpm": heart_rate,
        "temporal_resolution_ms": statistics.fmean(steps) if steps else None,
        "complete": grid.complete,
        "problems": grid.problems,
        "order_rule": grid.order_rule[:128],
    }
    return SeriesPlan(item.group.group_key, values, _frame_rows(grid))


# Frame columns in the order of the tuples that _frame_rows builds, after series_pk.
FRAME_COLUMNS = (
    "series_pk", "slice_index", "phase_index", "instance_pk", "frame_number", "trigger_time_ms",
    "slice_position_mm", "image_position",
)


def _frame_rows(grid: Grid) -> list[tuple[Any, ...]]:
    """Return Frame rows without series_pk; image_position is JSON text, serialised by the planning worker."""
    rows: list[tuple[Any, ...]] = []
    for (slice_index, phase_index), frame in sorted(grid.cells.items()):
        position = json.dumps(list(frame.position)) if frame.position else None
        rows.append(
            (slice_index, phase_index, frame.instance_pk, frame.frame_number, frame.trigger_time_ms,
             grid.slice_positions_mm[slice_index], position)
        )
    return rows


def _write_frames(session: Session, series_pk: int, rows: list[tuple[Any, ...]]) -> None:
    session.execute(delete(Frame).where(Frame.series_pk == series_pk))
    insert_rows(session, Frame.__table__, FRAME_COLUMNS, [(series_pk, *row) for row in rows])  # type: ignore[arg-type]


def _study_values(header: dict[str, Any]) -> dict[str, Any]:
    study_date = _date(header.get("StudyDate"))
    return {
        "accession_number": _text(header.get("AccessionNumber"), 64),
        "study_date": study_date,
        "study_description": _text(header.get("StudyDescription"), 256),
        "sex": _sex(header.get("PatientSex")),
        "age_years": _age_years(header.get("PatientAge"), _date(header.get("PatientBirthDate")), study_date),
        "manufacturer": _text(header.get("Manufacturer"), 128),
        "model_name": _text(header.get("ManufacturerModelName"), 128),
        "field_strength_t": _float(header.get("MagneticFieldStrength")),
        "institution_name": _text(header.get("InstitutionName"), 256),
    }


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
