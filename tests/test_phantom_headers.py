"""DICOM headers of the phantom archive: valid, consistent, varied, synthetic."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from cmr_search.cli import app
from phantom import read_ground_truth

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def series_files(root: Path, row: dict[str, Any]) -> dict[str, list[Path]]:
    return {series["series_instance_uid"]: sorted((root / series["folder"]).glob("*.dcm")) for series in row["series"]}


def test_fixture_covers_every_header_style(phantom_ground_truth: list[dict[str, Any]]) -> None:
    parameters = [row["parameters"] for row in phantom_ground_truth]
    assert {p["vendor_style"] for p in parameters} == {"siemens", "ge", "philips"}
    for switch in ("enhanced_multiframe", "per_slice_series", "empty_series_descriptions", "has_lge_series"):
        assert {p[switch] for p in parameters} == {True, False}, switch
    assert {p["transfer_syntax"] for p in parameters} == {"JPEG2000Lossless", "ExplicitVRLittleEndian"}


def test_classic_series_headers(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    checked = 0
    for row in phantom_ground_truth:
        if row["parameters"]["enhanced_multiframe"]:
            continue
        for series in row["series"]:
            files = sorted((phantom_archive / series["folder"]).glob("*.dcm"))
            assert len(files) == series["slices"] * series["phases"]
            datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
            assert {ds.SOPClassUID for ds in datasets} == {MR_IMAGE_STORAGE}
            assert {ds.SeriesInstanceUID for ds in datasets} == {series["series_instance_uid"]}
            assert {ds.StudyInstanceUID for ds in datasets} == {row["study_instance_uid"]}
            assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)
            assert {int(ds.CardiacNumberOfImages) for ds in datasets} == {series["phases"]}
            by_position: dict[tuple[float, ...], list[float]] = defaultdict(list)
            for ds in datasets:
                by_position[tuple(float(v) for v in ds.ImagePositionPatient)].append(float(ds.TriggerTime))
            assert len(by_position) == series["slices"]
            expected = np.arange(series["phases"]) * row["parameters"]["rr_interval_ms"] / series["phases"]
            for trigger_times in by_position.values():
                if series["kind"] == "cine":
                    # Each slice's trigger times may be offset by up to 1.5 ms (own breath-hold).
                    assert sorted(trigger_times) == pytest.approx(expected, abs=1.6)
                    assert np.diff(sorted(trigger_times)) == pytest.approx(np.diff(expected), abs=0.06)
                else:
                    assert len(trigger_times) == 1
            if series["kind"] == "lge":
                assert {float(ds.InversionTime) for ds in datasets} == {row["parameters"]["inversion_time_ms"]}
            checked += 1
    assert checked > 10


def test_enhanced_series_headers(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    enhanced = [row for row in phantom_ground_truth if row["parameters"]["enhanced_multiframe"]]
    assert enhanced
    for row in enhanced:
        for series in row["series"]:
            (path,) = sorted((phantom_archive / series["folder"]).glob("*.dcm"))
            ds = pydicom.dcmread(path)
            assert ds.SOPClassUID == ENHANCED_MR_IMAGE_STORAGE
            assert int(ds.NumberOfFrames) == series["slices"] * series["phases"]
            frames = ds.PerFrameFunctionalGroupsSequence
            assert len(frames) == int(ds.NumberOfFrames)
            shared = ds.SharedFunctionalGroupsSequence[0]
            assert len(shared.PlaneOrientationSequence[0].ImageOrientationPatient) == 6
            assert float(shared.PixelMeasuresSequence[0].PixelSpacing[0]) == pytest.approx(row["parameters"]["pixel_spacing_mm"], abs=1e-3)
            delays = [float(item.CardiacSynchronizationSequence[0].NominalCardiacTriggerDelayTime) for item in frames[: series["phases"]]]
            assert delays == sorted(delays)
            stack_positions = {int(item.FrameContentSequence[0].InStackPositionNumber) for item in frames}
            assert stack_positions == set(range(1, series["slices"] + 1))
            assert ds.pixel_array.shape == (int(ds.NumberOfFrames), ds.Rows, ds.Columns)


def test_pixels_decode_and_identity_synthetic(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    for row in phantom_ground_truth:
        first = next(iter(series_files(phantom_archive, row).values()))[0]
        ds = pydicom.dcmread(first)
        pixels = ds.pixel_array
        assert pixels.dtype == np.uint16
        assert pixels.max() > 20
        assert str(ds.PatientName).startswith("PHANTOM^")
        assert ds.PatientID == row["patient_id"]
        assert ds.AccessionNumber == row["accession_number"]
        assert ds.PatientSex == row["parameters"]["sex"]
        assert ds.PatientAge == f"{row['parameters']['age_years']:03d}Y"
        assert float(ds.MagneticFieldStrength) in (1.5, 3.0)
        assert ds.InstitutionName == "Phantom Heart Centre"
        assert ds.file_meta.TransferSyntaxUID.name.startswith("JPEG 2000") == (row["parameters"]["transfer_syntax"] == "JPEG2000Lossless")


def test_descriptions_follow_vendor_style(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    keywords = {"siemens": ("tf2d", "trufi", "cine_segmented", "tfl2d", "lge", "psir"), "ge": ("fiesta", "mde"), "philips": ("btfe", "tfe")}
    for row in phantom_ground_truth:
        parameters = row["parameters"]
        for files in series_files(phantom_archive, row).values():
            ds = pydicom.dcmread(files[0], stop_before_pixels=True)
            if parameters["empty_series_descriptions"]:
                assert ds.SeriesDescription == ""
            else:
                description = ds.SeriesDescription.lower()
                assert any(word in description for word in keywords[parameters["vendor_style"]]), ds.SeriesDescription


def test_demo_data_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo-data", str(tmp_path / "out"), "--studies", "2", "--seed", "3", "--workers", "1", "--domain", "shifted", "--pathology-mix", "effusion=1"])
    assert result.exit_code == 0, result.output
    rows = read_ground_truth(tmp_path / "out")
    assert len(rows) == 2
    assert {row["domain"] for row in rows} == {"shifted"}
    assert all(row["labels"]["pericardial_effusion"] for row in rows)
    assert {row["parameters"]["vendor_style"] for row in rows} <= {"canon", "siemens_xa", "philips_enhanced"}
    assert (tmp_path / "out" / "reports.csv").is_file()
    assert (tmp_path / "out" / "ground_truth.csv").is_file()


def test_demo_data_rejects_nonempty_output(phantom_archive: Path) -> None:
    result = CliRunner().invoke(app, ["demo-data", str(phantom_archive), "--studies", "1"])
    assert result.exit_code != 0
    assert "not empty" in result.output


@pytest.mark.parametrize(("option", "value"), [("--pathology-mix", "normal=0.5,unknown=0.5"), ("--pathology-mix", "normal=abc"), ("--domain", "elsewhere")])
def test_demo_data_rejects_invalid_options(tmp_path: Path, option: str, value: str) -> None:
    result = CliRunner().invoke(app, ["demo-data", str(tmp_path / "out"), "--studies", "1", option, value])
    assert result.exit_code != 0
    assert not (tmp_path / "out" / "ground_truth.jsonl").exists()
