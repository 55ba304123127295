"""Corrupt compressed pixel data, found when pixels are read, is recorded in scan_errors."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import UID, JPEG2000Lossless, JPEGBaseline8Bit
from sqlalchemy import select
from sqlalchemy.orm import Session

from cmr_search.settings import Settings
from indexer.catalog.models import Instance, ScanError, ScannedFile, Series
from indexer.catalog.session import create_catalog_engine, session_factory
from indexer.errors import record_decode_error
from indexer.pixels import PixelDataError, read_series_pixels
from indexer.scan import catalog_archive
from indexer.summary import ScanSummary
from tests.dicom_factory import CineSpec, new_study_uid, write_cine


def scan(settings: Settings, root: Path) -> ScanSummary:
    return catalog_archive(settings, [root], workers=1, progress=False)


def corrupt_first_frame(path: Path, syntax: UID) -> None:
    """Keep the header and replace the compressed frame by a stream its decoder rejects.

    A JPEG 2000 codestream cut in half fails in openjpeg. A JPEG stream whose
    entropy-coded data is replaced by a byte ramp fails in libjpeg.
    """
    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    if syntax == JPEG2000Lossless:
        broken = frame[: len(frame) // 2]
    else:
        broken = frame[:16] + bytes(range(256)) * (len(frame) // 256 + 1)
    ds.PixelData = encapsulate([broken + b"\x00" * (len(broken) % 2)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)


def write_corrupt_series(folder: Path, syntax: UID) -> tuple[list[Path], Path]:
    """Write a 2 × 2 cine in ``syntax`` and corrupt one of its files; return all paths and the corrupt one."""
    spec = CineSpec(
        study_uid=new_study_uid(), slices=2, phases=2, rows=64, columns=64, transfer_syntax=syntax, texture=True
    )
    paths = write_cine(folder, spec)
    corrupt_first_frame(paths[0], syntax)
    return paths, paths[0]


def decode_errors(session: Session) -> list[tuple[str, str, str]]:
    query = select(ScannedFile.path, ScanError.stage, ScanError.reason).join(ScannedFile, ScanError.file_pk == ScannedFile.id)
    return [(path, stage, reason) for path, stage, reason in session.execute(query)]


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGBaseline8Bit])
def test_corrupt_stream_recorded_on_read(database_url: str, tmp_path: Path, syntax: UID) -> None:
    _, corrupt = write_corrupt_series(tmp_path / "archive", syntax)
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)

    summary = scan(settings, tmp_path / "archive")

    assert summary.files_by_status == {"dicom": 4}, "the scan reads headers only and cannot see the corrupt stream"
    assert summary.errors == 0
    sessions = session_factory(create_catalog_engine(database_url))
    with sessions() as session:
        series_pk = session.scalars(select(Series.id)).one()
        with pytest.raises(PixelDataError, match=str(syntax)):
            read_series_pixels(session, series_pk)
    with sessions() as session:
        errors = decode_errors(session)
    assert len(errors) == 1
    path, stage, reason = errors[0]
    assert path == str(corrupt.resolve())
    assert stage == "decode"
    assert str(syntax) in reason


def test_decode_error_kept_after_rollback(settings: Settings, tmp_path: Path) -> None:
    write_corrupt_series(tmp_path / "archive", JPEG2000Lossless)
    scan(settings, tmp_path / "archive")
    sessions = session_factory(create_catalog_engine(settings.database_url))

    with pytest.raises(PixelDataError):
        with sessions.begin() as session:
            series_pk = session.scalars(select(Series.id)).one()
            read_series_pixels(session, series_pk)

    with sessions() as session:
        assert len(decode_errors(session)) == 1


def test_decode_error_stored_once(settings: Settings, tmp_path: Path) -> None:
    write_corrupt_series(tmp_path / "archive", JPEG2000Lossless)
    scan(settings, tmp_path / "archive")
    sessions = session_factory(create_catalog_engine(settings.database_url))

    with sessions() as session:
        series_pk = session.scalars(select(Series.id)).one()
        for _ in range(3):
            with pytest.raises(PixelDataError):
                read_series_pixels(session, series_pk)

    with sessions() as session:
        assert len(decode_errors(session)) == 1


def test_decode_error_counted_then_cleared(settings: Settings, tmp_path: Path) -> None:
    paths, corrupt = write_corrupt_series(tmp_path / "archive", JPEG2000Lossless)
    scan(settings, tmp_path / "archive")
    sessions = session_factory(create_catalog_engine(settings.database_url))
    with sessions() as session:
        series_pk = session.scalars(select(Series.id)).one()
        with pytest.raises(PixelDataError):
            read_series_pixels(session, series_pk)

    rerun = scan(settings, tmp_path / "archive")
    assert rerun.files_read == 0
    assert rerun.errors == 1

    # Replacing the file with an intact copy of another frame makes the next scan re-read it.
    corrupt.write_bytes(paths[1].read_bytes())
    fixed = scan(settings, tmp_path / "archive")
    assert fixed.files_read == 1
    assert fixed.errors == 0
    with sessions() as session:
        assert decode_errors(session) == []


def test_record_unknown_instance_returns_false(settings: Settings, tmp_path: Path) -> None:
    write_cine(tmp_path / "archive", CineSpec(study_uid=new_study_uid(), slices=1, phases=2))
    scan(settings, tmp_path / "archive")
    sessions = session_factory(create_catalog_engine(settings.database_url))

    with sessions() as session:
        missing_pk = (session.scalar(select(Instance.id).order_by(Instance.id.desc())) or 0) + 1
        assert not record_decode_error(session, missing_pk, "invalid JPEG 2000 codestream")
        instance_pk = session.scalars(select(Instance.id)).first()
        assert record_decode_error(session, instance_pk, "invalid JPEG 2000 codestream")
        assert not record_decode_error(session, instance_pk, "invalid JPEG 2000 codestream")

    with sessions() as session:
        assert [stage for _, stage, _ in decode_errors(session)] == ["decode"]
