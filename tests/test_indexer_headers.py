"""Header records read through pydicom with specific_tags, on every encoding the scan meets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    UID,
)

from indexer.headers import HEADER_KEYWORDS, quiet_pydicom, read_header
from tests.dicom_factory import CineSpec, new_study_uid, orthonormal, write_cine, write_enhanced_cine


def resave(source: Path, target: Path, syntax: UID) -> Path:
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax.is_little_endian:
        ds.save_as(target, implicit_vr=syntax.is_implicit_VR, little_endian=True, enforce_file_format=True)
    else:
        # save_as() rejects a change of byte order, so dcmwrite() writes it, forced, keeping the preamble.
        pydicom.dcmwrite(target, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    return target


def full_read_values(path: Path) -> dict[str, Any]:
    """The header attributes of ``path`` as a plain full ``dcmread`` gives them, without specific_tags."""
    quiet_pydicom()
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    values: dict[str, Any] = {}
    for keyword in HEADER_KEYWORDS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        if isinstance(value, pydicom.multival.MultiValue):
            value = [str(item).strip() if isinstance(item, str) else item for item in value]
        elif isinstance(value, str):
            value = value.strip()
        values[keyword] = value
    return values


@pytest.fixture
def sample_files(tmp_path: Path, sunnybrook: Path) -> dict[str, Path]:
    study = new_study_uid()
    classic = write_cine(tmp_path / "classic", CineSpec(study_uid=study, slices=1, phases=1))[0]
    return {
        "sunnybrook_cine": sorted((sunnybrook / "studies").glob("*/CINESAX_*/*.dcm"))[0],
        "sunnybrook_scout": sorted((sunnybrook / "studies").glob("*/Localizers_1/*.dcm"))[0],
        "explicit_little": classic,
        "implicit_little": resave(classic, tmp_path / "implicit.dcm", ImplicitVRLittleEndian),
        "explicit_big": resave(classic, tmp_path / "big.dcm", ExplicitVRBigEndian),
        "deflated": resave(classic, tmp_path / "deflated.dcm", DeflatedExplicitVRLittleEndian),
        "jpeg2000": write_cine(
            tmp_path / "j2k", CineSpec(study_uid=study, slices=1, phases=1, rows=64, columns=64, transfer_syntax=JPEG2000Lossless)
        )[0],
    }


def test_record_matches_full_read(sample_files: dict[str, Path]) -> None:
    for name, path in sample_files.items():
        record = read_header(str(path))
        expected = full_read_values(path)

        assert record.status == "dicom", (name, record.reason)
        assert record.header == expected, name
        assert record.transfer_syntax_uid == str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


def test_encodings_give_same_header(sample_files: dict[str, Path]) -> None:
    reference = read_header(str(sample_files["explicit_little"])).header

    for name in ("implicit_little", "explicit_big", "deflated"):
        record = read_header(str(sample_files[name]))
        assert record.status == "dicom", (name, record.reason)
        assert record.header == reference, name


def test_sunnybrook_record_values(sample_files: dict[str, Path]) -> None:
    record = read_header(str(sample_files["sunnybrook_cine"]))

    assert record.status == "dicom"
    assert record.patient_id == "SCD0000101"
    assert record.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert record.number_of_frames == 1
    assert "PatientID" not in record.header
    assert "PatientName" not in record.header
    assert record.header["CardiacNumberOfImages"] == 20
    assert record.header["ImageType"] == ["ORIGINAL", "PRIMARY", "CARDIAC", "NONE"]
    assert record.header["Rows"] == 256
    assert len(record.header["ImageOrientationPatient"]) == 6
    assert all(isinstance(value, float) for value in record.header["ImagePositionPatient"])
    assert isinstance(record.header["TriggerTime"], float)


def test_enhanced_frames_read_from_groups(tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=2, phases=3)
    record = read_header(str(write_enhanced_cine(tmp_path / "enhanced.dcm", spec)))

    assert record.status == "dicom"
    assert record.number_of_frames == 6
    assert record.header["ImageOrientationPatient"] == pytest.approx(list(orthonormal(spec.orientation)))
    assert record.header["PixelSpacing"] == [1.5, 1.5]
    assert record.header["SliceThickness"] == 8.0
    frames = record.header["frames"]
    assert [frame["FrameNumber"] for frame in frames] == [1, 2, 3, 4, 5, 6]
    # The factory writes frames phase-major: (slice 0, phase 0), (slice 1, phase 0), (slice 0, phase 1), ...
    for number, frame in enumerate(frames):
        slice_index, phase_index = number % spec.slices, number // spec.slices
        assert frame["InStackPositionNumber"] == slice_index + 1
        assert frame["TemporalPositionIndex"] == phase_index + 1
        assert frame["StackID"] == "1"
        assert frame["TriggerTime"] == pytest.approx(spec.trigger_time(slice_index, phase_index))
        assert frame["ImagePositionPatient"] == pytest.approx(list(spec.position(slice_index)), abs=1e-4)
        assert frame["ImageOrientationPatient"] == record.header["ImageOrientationPatient"]


def test_large_enhanced_object_reads_every_frame(tmp_path: Path) -> None:
    spec = CineSpec(study_uid=new_study_uid(), slices=10, phases=30, rows=4, columns=4)
    record = read_header(str(write_enhanced_cine(tmp_path / "long.dcm", spec)))

    assert record.status == "dicom"
    assert record.number_of_frames == 300
    assert {frame["InStackPositionNumber"] for frame in record.header["frames"]} == set(range(1, 11))
    assert {frame["TemporalPositionIndex"] for frame in record.header["frames"]} == set(range(1, 31))


@pytest.mark.parametrize(
    ("character_set", "institution"),
    [("ISO_IR 144", "Городская больница"), ("ISO_IR 192", "Hôpital Saint-Éloi 病院"), ("ISO_IR 100", "Klinik Würzburg")],
)
def test_character_sets_decoded(tmp_path: Path, character_set: str, institution: str) -> None:
    path = write_cine(tmp_path / "cine", CineSpec(study_uid=new_study_uid(), slices=1, phases=1))[0]
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = character_set
    ds.InstitutionName = institution
    ds.SeriesDescription = institution[:16]
    ds.save_as(path, enforce_file_format=True)

    record = read_header(str(path))

    assert record.status == "dicom"
    assert record.header["InstitutionName"] == institution
    assert record.header["SeriesDescription"] == institution[:16]


def test_truncated_deflated_file_is_error(sample_files: dict[str, Path], tmp_path: Path) -> None:
    data = sample_files["deflated"].read_bytes()
    path = tmp_path / "truncated_deflated.dcm"
    path.write_bytes(data[: len(data) - 40])

    record = read_header(str(path))

    assert record.status == "error"
    assert record.stage == "read"


def test_non_dicom_file_detected(tmp_path: Path) -> None:
    path = tmp_path / "contour.txt"
    path.write_text("120.5 88.25\n" * 200)

    record = read_header(str(path))

    assert record.status == "non_dicom"
    assert record.stage == "read"
