"""Catalogue the real Sunnybrook archive and check its studies, series and grids."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.catalog.models import Frame, Instance, Patient, ScannedFile, Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory
from tests.indexer_fixtures import ScannedArchive


@pytest.fixture
def session(sunnybrook_catalog: ScannedArchive) -> Iterator[Session]:
    engine = create_catalog_engine(sunnybrook_catalog.settings.database_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def expected_cases(sunnybrook: Path) -> dict[str, dict[str, str]]:
    with open(sunnybrook / "cases.csv", newline="", encoding="utf-8-sig") as stream:
        return {row["patient_id"]: row for row in csv.DictReader(stream)}


def cine_of(session: Session, patient_id: str) -> list[Series]:
    return list(
        session.scalars(
            select(Series)
            .join(Study, Series.study_pk == Study.id)
            .join(Patient, Study.patient_pk == Patient.id)
            .where(Patient.patient_id == patient_id, Series.kind == "cine")
        )
    )


def test_sunnybrook_counts_studies_and_files(sunnybrook_catalog: ScannedArchive) -> None:
    first = sunnybrook_catalog.first
    assert first.studies == 8
    assert first.files_seen == 1408
    assert first.files_by_status["dicom"] == 1260
    assert first.files_by_status["non_dicom"] == 1408 - 1260
    assert first.files_by_status.get("error", 0) == 0
    assert first.series_by_kind == {"cine": 5, "scout": 24}


def test_sunnybrook_cine_grids_match_cases(sunnybrook: Path, session: Session) -> None:
    for patient_id, case in expected_cases(sunnybrook).items():
        cines = cine_of(session, patient_id)
        if not case["cine_sax_series"]:
            assert cines == [], f"{patient_id} has no cine in the archive"
            continue
        assert len(cines) == 1, patient_id
        cine = cines[0]
        assert cine.view == "sax", patient_id
        assert (cine.slices, cine.phases) == (int(case["n_slices"]), int(case["n_phases"])), patient_id
        assert cine.complete, cine.problems
        assert cine.series_number == int(case["cine_sax_series"].split("_")[1])
        frame_count = session.scalar(select(func.count(Frame.id)).where(Frame.series_pk == cine.id))
        assert frame_count == cine.slices * cine.phases


def test_sunnybrook_slices_in_spatial_order(session: Session) -> None:
    for cine in session.scalars(select(Series).where(Series.kind == "cine")):
        normal = np.cross(cine.image_orientation[:3], cine.image_orientation[3:])
        frames = session.scalars(select(Frame).where(Frame.series_pk == cine.id, Frame.phase_index == 0).order_by(Frame.slice_index)).all()
        positions = [float(np.dot(frame.image_position, normal)) for frame in frames]
        assert positions == sorted(positions)
        assert len(set(np.round(positions, 2))) == cine.slices
        assert cine.slice_spacing_mm == pytest.approx(float(np.median(np.diff(positions))))


def test_sunnybrook_phases_in_time_order(session: Session) -> None:
    for cine in session.scalars(select(Series).where(Series.kind == "cine")):
        for slice_index in range(cine.slices):
            times = session.scalars(
                select(Frame.trigger_time_ms).where(Frame.series_pk == cine.id, Frame.slice_index == slice_index).order_by(Frame.phase_index)
            ).all()
            assert len(times) == cine.phases
            assert all(b > a for a, b in zip(times, times[1:])), f"series {cine.id} slice {slice_index}"


def test_sunnybrook_frames_agree_with_files(session: Session) -> None:
    """The catalog's order matches the files' own headers, read again from disk."""
    cine = session.scalars(select(Series).where(Series.kind == "cine").order_by(Series.id)).first()
    rows = session.execute(
        select(Frame.slice_index, Frame.phase_index, ScannedFile.path)
        .join(Instance, Frame.instance_pk == Instance.id)
        .join(ScannedFile, Instance.file_pk == ScannedFile.id)
        .where(Frame.series_pk == cine.id, Frame.slice_index.in_([0, cine.slices - 1]), Frame.phase_index.in_([0, 19]))
    ).all()
    headers = {(s, p): pydicom.dcmread(path, stop_before_pixels=True) for s, p, path in rows}
    assert float(headers[(0, 0)].TriggerTime) < float(headers[(0, 19)].TriggerTime)
    normal = np.cross(cine.image_orientation[:3], cine.image_orientation[3:])
    first = float(np.dot([float(v) for v in headers[(0, 0)].ImagePositionPatient], normal))
    last = float(np.dot([float(v) for v in headers[(cine.slices - 1, 0)].ImagePositionPatient], normal))
    assert first < last


def test_sunnybrook_scouts_are_scouts(session: Session) -> None:
    scouts = session.scalars(select(Series).where(Series.kind == "scout")).all()
    assert len(scouts) == 8 * 3
    for scout in scouts:
        assert scout.series_description == "SCOUT"
        assert (scout.slices, scout.phases) == (5, 1)
        assert scout.view == "other"


def test_sunnybrook_scout_only_studies_have_no_cine(sunnybrook: Path, session: Session) -> None:
    scout_only = [pid for pid, case in expected_cases(sunnybrook).items() if not case["cine_sax_series"]]
    assert len(scout_only) == 3
    for patient_id in scout_only:
        study = session.scalars(select(Study).join(Patient).where(Patient.patient_id == patient_id)).one()
        kinds = session.scalars(select(Series.kind).where(Series.study_pk == study.id)).all()
        assert sorted(kinds) == ["scout", "scout", "scout"]


def test_sunnybrook_study_attributes(session: Session) -> None:
    for study in session.scalars(select(Study)):
        assert study.manufacturer == "GE MEDICAL SYSTEMS"
        assert study.model_name == "SIGNA HDx"
        assert study.field_strength_t == pytest.approx(1.5)
        assert study.study_date is None  # de-identified as 20120000
        assert not study.needs_assembly


def test_sunnybrook_cine_timing(session: Session) -> None:
    for cine in session.scalars(select(Series).where(Series.kind == "cine")):
        assert cine.heart_rate_bpm and 30 < cine.heart_rate_bpm < 200
        assert cine.temporal_resolution_ms and 20 < cine.temporal_resolution_ms < 60
        assert cine.pixel_spacing_mm and 1.2 < cine.pixel_spacing_mm[0] < 1.4


def test_sunnybrook_rerun_changes_nothing(sunnybrook_catalog: ScannedArchive) -> None:
    first, rerun = sunnybrook_catalog.first, sunnybrook_catalog.rerun
    assert rerun.files_read == 0
    assert rerun.files_unchanged == 1408
    assert rerun.studies_assembled == 0
    assert rerun.study_details == first.study_details
    assert rerun.catalog_files_by_status == first.catalog_files_by_status


def test_sunnybrook_subset_on_each_database(database_url: str, sunnybrook: Path, tmp_path: Path) -> None:
    """Worker pools for reading and assembly against SQLite and PostgreSQL."""
    from cmr_search.settings import Settings
    from indexer.scan import catalog_archive

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    roots = [sunnybrook / "studies" / "SCD0000401", sunnybrook / "localizer_only_studies"]

    summary = catalog_archive(settings, roots, workers=2, progress=False)

    assert summary.files_by_status == {"dicom": 11 * 20 + 15 + 3 * 15}
    assert summary.studies == 4
    assert summary.series_by_kind == {"cine": 1, "scout": 12}
    cine = next(s for study in summary.study_details for s in study.series if s.kind == "cine")
    assert (cine.view, cine.slices, cine.phases, cine.complete) == ("sax", 11, 20, True)
