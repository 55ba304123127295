"""The fast header parser against pydicom, on every encoding the scan meets."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, JPEG2000Lossless

from indexer.fast_header import NotDicom, UnsupportedEncoding, parse_file
from indexer.headers import NESTED_TABLE, TOP_LEVEL_TABLE, read_header, read_with_pydicom
from tests.dicom_factory import CineSpec, new_study_uid, write_cine, write_enhanced_cine


def resave(source: Path, target: Path, syntax: pydicom.uid.UID) -> Path:
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = syntax
    if syntax.is_little_endian:
        ds.save_as(target, implicit_vr=syntax.is_implicit_VR, little_endian=True, enforce_file_format=True)
    else:
        # save_as() refuses to change the byte order; dcmwrite() does it when forced, keeping the preamble.
        pydicom.dcmwrite(target, ds, implicit_vr=False, little_endian=False, force_encoding=True)
    return target


@pytest.fixture
def sample_files(tmp_path: Path, sunnybrook: Path) -> dict[str, Path]:
    study = new_study_uid()
    classic = write_cine(tmp_path / "classic", CineSpec(study_uid=study, slices=1, phases=1))[0]
    return {
        "sunnybrook_cine": sorted((sunnybrook / "studies").glob("*/CINESAX_*/*.dcm"))[0],
        "sunnybrook_scout": sorted((sunnybrook / "studies").glob("*/Localizers_1/*.dcm"))[0],
        "explicit_little": classic,
        "implicit_little": resave(classic, tmp_path / "implicit.dcm", ImplicitVRLittleEndian),
        "enhanced": write_enhanced_cine(tmp_path / "enhanced.dcm", CineSpec(study_uid=study, slices=2, phases=3)),
        "jpeg2000": write_cine(
            tmp_path / "j2k", CineSpec(study_uid=study, slices=1, phases=1, rows=64, columns=64, transfer_syntax=JPEG2000Lossless)
        )[0],
    }


def test_fast_parser_matches_pydicom(sample_files: dict[str, Path]) -> None:
    for name, path in sample_files.items():
        fast = parse_file(str(path), TOP_LEVEL_TABLE, NESTED_TABLE)
        slow = read_with_pydicom(str(path))
        assert fast.values == slow.values, name
        assert fast.transfer_syntax_uid == slow.transfer_syntax_uid, name
        assert fast.pixel_data_offset == slow.pixel_data_offset, name


def test_enhanced_frames_read_from_groups(sample_files: dict[str, Path]) -> None:
    record = read_header(str(sample_files["enhanced"]))

    assert record.status == "dicom"
    assert record.number_of_frames == 6
    frames = record.header["frames"]
    assert [f["FrameNumber"] for f in frames] == [1, 2, 3, 4, 5, 6]
    assert {f["InStackPositionNumber"] for f in frames} == {1, 2}
    assert all(f["ImageOrientationPatient"] == record.header["ImageOrientationPatient"] for f in frames)
    assert record.header["PixelSpacing"] == [1.5, 1.5]


def test_big_endian_falls_back_to_pydicom(sample_files: dict[str, Path], tmp_path: Path) -> None:
    path = resave(sample_files["explicit_little"], tmp_path / "big.dcm", ExplicitVRBigEndian)

    with pytest.raises(UnsupportedEncoding):
        parse_file(str(path), TOP_LEVEL_TABLE, NESTED_TABLE)
    record = read_header(str(path))

    assert record.status == "dicom"
    assert record.header == read_header(str(sample_files["explicit_little"])).header


def test_non_dicom_detected_without_pydicom(tmp_path: Path) -> None:
    path = tmp_path / "contour.txt"
    path.write_text("120.5 88.25\n" * 200)

    with pytest.raises(NotDicom):
        parse_file(str(path), TOP_LEVEL_TABLE, NESTED_TABLE)
    assert read_header(str(path)).status == "non_dicom"


def test_header_holds_no_patient_id(sample_files: dict[str, Path]) -> None:
    record = read_header(str(sample_files["sunnybrook_cine"]))

    assert record.patient_id == "SCD0000101"
    assert "PatientID" not in record.header
    assert "PatientName" not in record.header
    assert record.header["CardiacNumberOfImages"] == 20
    assert record.header["ImageType"] == ["ORIGINAL", "PRIMARY", "CARDIAC", "NONE"]


def test_header_longer_than_first_read(tmp_path: Path) -> None:
    from indexer.fast_header import INITIAL_READ_BYTES

    path = write_enhanced_cine(tmp_path / "long.dcm", CineSpec(study_uid=new_study_uid(), slices=10, phases=30, rows=4, columns=4))
    fast = parse_file(str(path), TOP_LEVEL_TABLE, NESTED_TABLE)

    assert fast.pixel_data_offset is not None
    assert fast.pixel_data_offset > 4 * INITIAL_READ_BYTES
    assert len(fast.values["PerFrameFunctionalGroupsSequence"]) == 300
    assert fast.values == read_with_pydicom(str(path)).values
