"""Sequence kind and view from vendor protocol names and from geometry."""

from __future__ import annotations

import pytest

from indexer.assembly import assemble_frames
from indexer.frames import frames_of_instance
from tests.dicom_factory import SAX_ORIENTATION, long_axis_orientation, orthonormal

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def series_headers(description: str, slices: int = 1, phases: int = 1, orientation=SAX_ORIENTATION, number: int = 5, **extra):  # type: ignore[no-untyped-def]
    """Headers of a synthetic series: ``slices`` positions 8 mm apart, ``phases`` trigger times 40 ms apart."""
    orientation = orthonormal(orientation)
    normal = [orientation[1] * orientation[5] - orientation[2] * orientation[4],
              orientation[2] * orientation[3] - orientation[0] * orientation[5],
              orientation[0] * orientation[4] - orientation[1] * orientation[3]]
    headers = []
    for s in range(slices):
        for p in range(phases):
            header = {
                "SeriesInstanceUID": f"1.2.3.{number}",
                "SeriesNumber": number,
                "SeriesDescription": description,
                "InstanceNumber": s * phases + p + 1,
                "ImageOrientationPatient": list(orientation),
                "ImagePositionPatient": [8.0 * s * n for n in normal],
                "Rows": 16,
                "Columns": 16,
                "CardiacNumberOfImages": phases if phases > 1 else 0,
                **extra,
            }
            if phases > 1:
                header["TriggerTime"] = 40.0 * p
            headers.append(header)
    return headers


def classify(*series: list[dict]) -> dict[int, tuple[str, str]]:  # type: ignore[type-arg]
    frames = [frame for pk, header in enumerate((h for s in series for h in s), start=1) for frame in frames_of_instance(pk, header)]
    return {item.group.series_numbers[0]: (item.kind.value, item.view.value) for item in assemble_frames(frames)}


@pytest.mark.parametrize(
    ("description", "kind", "view"),
    [
        ("FIESTA CINE 4CH", "cine", "4ch"),
        ("sBTFE_BH_2CH", "cine", "2ch"),
        ("cine_lvot", "cine", "lvot"),
        ("trufi_3ch", "cine", "3ch"),
        ("SA_cine_stack", "cine", "sax"),
        ("tfl_psir_sax", "lge", "sax"),
        ("LGE 3CH", "lge", "3ch"),
        ("2D MDE SAX", "lge", "sax"),
        ("MOLLI_T1map_SAX", "mapping", "sax"),
        ("T2* black blood", "mapping", "other"),
        ("T2 MAP SA", "mapping", "sax"),
        ("Perfusion_stress", "perfusion", "other"),
        ("flow_ao_venc150", "flow", "other"),
        ("Aorta PC", "flow", "other"),
        ("localizer", "scout", "other"),
        ("3-Plane Loc", "scout", "other"),
        ("SmartSurvey", "scout", "other"),
        ("TI scout", "other", "other"),
    ],
)
def test_kind_and_view_from_keywords(description: str, kind: str, view: str) -> None:
    labels = classify(series_headers(description, slices=1, phases=1, orientation=AXIAL))

    assert labels[5] == (kind, view)


def test_siemens_sequence_name_decides_kind() -> None:
    labels = classify(series_headers("", phases=12, orientation=AXIAL, SequenceName="*fl2d1_v150in"))

    assert labels[5][0] == "flow"


def test_unnamed_cine_stack_is_sax_cine() -> None:
    labels = classify(series_headers("", slices=8, phases=20))

    assert labels[5] == ("cine", "sax")


def test_unnamed_long_axis_next_to_stack() -> None:
    labels = classify(
        series_headers("", slices=8, phases=20),
        series_headers("", slices=1, phases=20, orientation=long_axis_orientation(angle_deg=45.0), number=6),
    )

    assert labels[6] == ("cine", "other")


def test_unnamed_orthogonal_single_phase_planes_are_scouts() -> None:
    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    headers = series_headers("", slices=3, orientation=AXIAL) + series_headers("", slices=3, orientation=sagittal) + series_headers(
        "", slices=3, orientation=coronal
    )

    frames = [frame for pk, header in enumerate(headers, start=1) for frame in frames_of_instance(pk, header)]
    assembled = assemble_frames(frames)

    assert len(assembled) == 3
    for item in assembled:
        assert (item.kind.value, item.view.value) == ("scout", "other"), item.kind.rule
        assert item.kind.rule.startswith("structure")


def test_short_single_phase_series_is_other() -> None:
    labels = classify(series_headers("", slices=1, phases=1))

    assert labels[5] == ("other", "other")


def test_unnamed_ungated_dynamics_are_perfusion() -> None:
    headers = series_headers("", slices=3, phases=1)
    dynamics = []
    for dynamic in range(40):
        for header in headers:
            frame = dict(header, InstanceNumber=dynamic * 3 + header["InstanceNumber"], CardiacNumberOfImages=1)
            frame["AcquisitionTime"] = f"1200{dynamic:02d}.000000"
            dynamics.append(frame)

    labels = classify(dynamics)

    assert labels[5] == ("perfusion", "sax")


@pytest.mark.parametrize(
    ("description", "extra"),
    [
        ("IR_TFE_SA", {"InversionTime": 300.0}),
        ("", {"ScanningSequence": ["GR", "IR"]}),
    ],
)
def test_single_phase_inversion_recovery_is_lge(description: str, extra: dict) -> None:  # type: ignore[type-arg]
    labels = classify(series_headers(description, slices=10, phases=1, **extra))

    assert labels[5] == ("lge", "sax")


def test_single_phase_without_inversion_is_not_lge() -> None:
    labels = classify(series_headers("", slices=10, phases=1, InversionTime=0.0))

    assert labels[5][0] != "lge"
