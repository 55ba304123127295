"""Catalogue synthetic archives in the layouts the real data lacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.pixels import pixel_array
from pydicom.uid import MPEG4HP41, UID, JPEGBaseline8Bit, JPEGLSLossless, RLELossless
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cmr_search.settings import Settings
from indexer.catalog.models import Frame, Instance, ScanError, Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory
from indexer.pixels import PixelDataError, read_series_pixels
from indexer.scan import catalog_archive
from indexer.summary import ScanSummary
from tests.dicom_factory import (
    JPEG2000Lossless,
    CineSpec,
    expected_image,
    long_axis_orientation,
    new_study_uid,
    pixel_value,
    write_cine,
    write_enhanced_cine,
)


def scan(settings: Settings, root: Path, workers: int = 1) -> ScanSummary:
    return catalog_archive(settings, [root], workers=workers, progress=False)


def open_session(settings: Settings) -> Session:
    return session_factory(create_catalog_engine(settings.database_url))()


def only_series(session: Session, **filters: object) -> Series:
    query = select(Series)
    for name, value in filters.items():
        query = query.where(getattr(Series, name) == value)
    return session.scalars(query).one()


def assert_pixels_in_grid_order(session: Session, series: Series) -> None:
    pixels = read_series_pixels(session, series.id)
    assert pixels.array.shape[:2] == (series.slices, series.phases)
    for slice_index in range(series.slices):
        for phase_index in range(series.phases):
            value = pixels.array[slice_index, phase_index, 0, 0]
            assert value == pixel_value(slice_index, phase_index), (slice_index, phase_index)


def test_per_slice_series_merged_into_stack(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=5, phases=6, per_slice_series=True, description="sa_cine")
    write_cine(tmp_path / "archive", spec)

    summary = scan(settings, tmp_path / "archive")

    assert summary.series_by_kind == {"cine": 1}
    with open_session(settings) as session:
        series = only_series(session)
        assert (series.slices, series.phases) == (5, 6)
        assert series.group_key.startswith("merged/")
        assert len(series.series_instance_uids) == 5
        assert series.view == "sax"
        assert series.complete
        assert_pixels_in_grid_order(session, series)


def test_enhanced_multiframe_assembled(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=3, phases=12, description="")
    write_enhanced_cine(tmp_path / "archive" / "enhanced.dcm", spec)

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"dicom": 1}
    with open_session(settings) as session:
        series = only_series(session)
        assert (series.slices, series.phases) == (3, 12)
        assert series.kind == "cine"
        assert series.view == "sax"
        assert series.pixel_spacing_mm == [1.5, 1.5]
        assert series.complete
        instance = session.scalars(select(Instance)).one()
        assert instance.number_of_frames == 36
        frame_numbers = session.scalars(select(Frame.frame_number).where(Frame.series_pk == series.id)).all()
        assert sorted(frame_numbers) == list(range(1, 37))
        assert_pixels_in_grid_order(session, series)


def test_long_axis_views_by_keyword_and_geometry(settings: Settings, tmp_path: Path) -> None:
    study = new_study_uid()
    write_cine(tmp_path / "archive" / "sax", CineSpec(study_uid=study, series_number=10, description="", slices=6, phases=12))
    views = {11: ("cine_2ch", 0.0), 12: ("4CH cine", 60.0), 13: ("3-chamber", 120.0), 14: ("LVOT", 140.0), 15: ("", 90.0)}
    for number, (description, angle) in views.items():
        write_cine(
            tmp_path / "archive" / str(number),
            CineSpec(study_uid=study, series_number=number, description=description, slices=1, phases=12,
                     orientation=long_axis_orientation(angle_deg=angle)),
        )

    scan(settings, tmp_path / "archive")

    with open_session(settings) as session:
        by_number = {s.series_number: s for s in session.scalars(select(Series))}
        assert by_number[10].view == "sax"
        assert by_number[10].view_rule.startswith("geometry")
        assert by_number[11].view == "2ch"
        assert by_number[12].view == "4ch"
        assert by_number[13].view == "3ch"
        assert by_number[14].view == "lvot"
        assert by_number[15].view == "other"
        assert "long-axis" in by_number[15].view_rule
        for series in by_number.values():
            assert series.kind == "cine", series.kind_rule


def test_instance_number_against_time(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), instance_number_against_time=True)
    write_cine(tmp_path / "archive", spec)

    scan(settings, tmp_path / "archive")

    with open_session(settings) as session:
        series = only_series(session)
        assert series.order_rule == "slices: position along normal; phases: TriggerTime"
        assert_pixels_in_grid_order(session, series)


def test_missing_slice_location(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slice_location=False, slices=5)
    write_cine(tmp_path / "archive", spec)

    scan(settings, tmp_path / "archive")

    with open_session(settings) as session:
        series = only_series(session)
        assert (series.slices, series.phases) == (5, 6)
        assert series.slice_spacing_mm == pytest.approx(8.0, abs=1e-3)
        assert_pixels_in_grid_order(session, series)


# Largest error in grey levels that each syntax may leave in the textured test images.
# JPEG baseline at quality 100 is the only lossy one: pylibjpeg and Pillow both decode within 1.
COMPRESSED_SYNTAXES = [(JPEG2000Lossless, 0), (RLELossless, 0), (JPEGLSLossless, 0), (JPEGBaseline8Bit, 2)]


def assert_pixels_match(session: Session, series: Series, spec: CineSpec, tolerance: int) -> None:
    pixels = read_series_pixels(session, series.id)
    assert pixels.array.shape == (spec.slices, spec.phases, spec.rows, spec.columns)
    for slice_index in range(spec.slices):
        for phase_index in range(spec.phases):
            expected = expected_image(spec, slice_index, phase_index).astype(np.float32)
            error = np.abs(pixels.array[slice_index, phase_index] - expected).max()
            assert error <= tolerance, (slice_index, phase_index, error)


@pytest.mark.parametrize(("syntax", "tolerance"), COMPRESSED_SYNTAXES)
def test_compressed_series_decodes(settings: Settings, tmp_path: Path, syntax: UID, tolerance: int) -> None:
    spec = CineSpec(
        study_uid=new_study_uid(), slices=2, phases=3, rows=64, columns=64, transfer_syntax=syntax, texture=True
    )
    write_cine(tmp_path / "archive", spec)

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"dicom": 6}
    with open_session(settings) as session:
        syntaxes = set(session.scalars(select(Instance.transfer_syntax_uid)))
        assert syntaxes == {str(syntax)}
        assert_pixels_match(session, only_series(session), spec, tolerance)


@pytest.mark.parametrize(("syntax", "tolerance"), [(JPEGLSLossless, 0), (JPEGBaseline8Bit, 2)])
def test_compressed_enhanced_decodes(settings: Settings, tmp_path: Path, syntax: UID, tolerance: int) -> None:
    spec = CineSpec(
        study_uid=new_study_uid(), slices=2, phases=4, rows=32, columns=32, transfer_syntax=syntax, texture=True
    )
    write_enhanced_cine(tmp_path / "archive" / "enhanced.dcm", spec)

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"dicom": 1}
    with open_session(settings) as session:
        assert_pixels_match(session, only_series(session), spec, tolerance)


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEGLSLossless, JPEG2000Lossless])
def test_pylibjpeg_decodes_factory_files(tmp_path: Path, syntax: UID) -> None:
    """pylibjpeg is the decoder the project installs; the other plugins here come from the test extra or Pillow."""
    spec = CineSpec(study_uid=new_study_uid(), slices=1, phases=1, rows=64, columns=64, transfer_syntax=syntax, texture=True)
    path = write_cine(tmp_path / "archive", spec)[0]

    decoded = pixel_array(str(path), decoding_plugin="pylibjpeg")

    tolerance = dict(COMPRESSED_SYNTAXES)[syntax]
    assert np.abs(decoded.astype(np.float32) - expected_image(spec, 0, 0)).max() <= tolerance


def test_syntax_without_decoder_is_error(settings: Settings, tmp_path: Path) -> None:
    import pydicom

    spec = CineSpec(study_uid=new_study_uid(), slices=1, phases=1, rows=64, columns=64, transfer_syntax=JPEG2000Lossless)
    path = write_cine(tmp_path / "archive", spec)[0]
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = MPEG4HP41  # encapsulated video: pydicom decodes no frames of it
    ds.save_as(path)

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"error": 1}
    with open_session(settings) as session:
        stage, reason = session.execute(select(ScanError.stage, ScanError.reason)).one()
    assert stage == "decode"
    assert str(MPEG4HP41) in reason


def test_missing_frame_flags_incomplete(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=4, phases=6, skip={(2, 3)})
    write_cine(tmp_path / "archive", spec)

    scan(settings, tmp_path / "archive")

    with open_session(settings) as session:
        series = only_series(session)
        assert (series.slices, series.phases) == (4, 6)
        assert not series.complete
        assert series.problems == ["slice 2 has 5 of 6 phases; missing phase(s) 3"]
        assert session.scalar(select(func.count(Frame.id))) == 23
        assert session.scalar(select(Frame.id).where(Frame.slice_index == 2, Frame.phase_index == 3)) is None
        assert session.scalar(select(Frame.phase_index).where(Frame.slice_index == 2, Frame.trigger_time_ms > 200)) == 5
        with pytest.raises(PixelDataError, match="slice 2, phase 3"):
            read_series_pixels(session, series.id)


def test_missing_slice_reported_as_gap(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=6, phases=4, skip={(3, p) for p in range(4)})
    write_cine(tmp_path / "archive", spec)

    scan(settings, tmp_path / "archive")

    with open_session(settings) as session:
        series = only_series(session)
        assert series.slices == 5
        assert not series.complete
        assert len(series.problems) == 1
        assert "gap of 16.0 mm between slices 2 and 3" in series.problems[0]


def test_duplicate_frame_flags_incomplete(settings: Settings, tmp_path: Path) -> None:
    import pydicom
    from pydicom.uid import generate_uid

    spec = CineSpec(study_uid=new_study_uid(), slices=2, phases=4, shuffle_files=False)
    paths = write_cine(tmp_path / "archive", spec)
    copy = pydicom.dcmread(paths[1])
    copy.SOPInstanceUID = generate_uid()
    copy.file_meta.MediaStorageSOPInstanceUID = copy.SOPInstanceUID
    copy.save_as(tmp_path / "archive" / "resent.dcm")

    scan(settings, tmp_path / "archive")

    with open_session(settings) as session:
        series = only_series(session)
        assert (series.slices, series.phases) == (2, 4)
        assert not series.complete
        assert len(series.problems) == 1
        assert "duplicate frame" in series.problems[0]
        assert session.scalar(select(func.count(Frame.id))) == 8


def test_same_sop_instance_under_two_paths_stored_once(settings: Settings, tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=2, phases=3)
    paths = write_cine(tmp_path / "archive" / "a", spec)
    (tmp_path / "archive" / "b").mkdir()
    for path in paths:
        (tmp_path / "archive" / "b" / path.name).write_bytes(path.read_bytes())

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"dicom": 6, "duplicate": 6}
    with open_session(settings) as session:
        assert session.scalar(select(func.count(Instance.id))) == 6
        assert only_series(session).complete


def test_layouts_on_each_database(database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    study = new_study_uid()
    write_cine(tmp_path / "archive" / "stack", CineSpec(study_uid=study, per_slice_series=True, description="sa"))
    write_enhanced_cine(tmp_path / "archive" / "enhanced.dcm", CineSpec(study_uid=study, series_number=30, description="cine 4ch", slices=1))

    first = scan(settings, tmp_path / "archive")
    rerun = scan(settings, tmp_path / "archive")

    assert first.studies == 1
    assert first.series_by_view == {"sax": 1, "4ch": 1}
    assert rerun.files_read == 0
    assert rerun.study_details == first.study_details
    with open_session(settings) as session:
        study_row = session.scalars(select(Study)).one()
        assert study_row.accession_number == "ACC0001"
        assert study_row.sex == "F"
        assert study_row.age_years == 54
        assert study_row.field_strength_t == 3
        assert study_row.institution_name == "Test Hospital"
        assert str(study_row.study_date) == "2024-01-31"
        for series in session.scalars(select(Series)):
            assert_pixels_in_grid_order(session, series)


def test_worker_processes_match_single_process(tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=8, phases=20)
    write_cine(tmp_path / "archive", spec)
    results = []
    for workers in (1, 2):
        data_dir = tmp_path / f"data{workers}"
        settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
        results.append(scan(settings, tmp_path / "archive", workers=workers))

    assert results[0].files_by_status == results[1].files_by_status == {"dicom": 160}
    assert results[0].study_details == results[1].study_details
    assert np.array_equal(
        [s.slices for s in results[0].study_details[0].series], [s.slices for s in results[1].study_details[0].series]
    )
