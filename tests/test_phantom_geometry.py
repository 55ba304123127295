"""Geometry in the headers matches the 3-D model: SAX spacing and where views intersect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from phantom.series import SeriesLayout, render_series
from phantom.study import plan_study
from phantom.tissues import Tissue

# Views must agree on at least this share of the cardiac points on their
# common line; the rest are partial-volume pixels at tissue boundaries.
MIN_AGREEMENT = 0.85


def header_planes(path: Path) -> list[dict[str, Any]]:
    """Plane geometry of every distinct slice in a classic or enhanced MR file."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0]
        orientation = [float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient]
        spacing = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
        positions = [tuple(float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient) for item in ds.PerFrameFunctionalGroupsSequence]
    else:
        orientation = [float(v) for v in ds.ImageOrientationPatient]
        spacing = [float(v) for v in ds.PixelSpacing]
        positions = [tuple(float(v) for v in ds.ImagePositionPatient)]
    unique = list(dict.fromkeys(positions))
    return [
        {"position": np.array(p), "row": np.array(orientation[:3]), "column": np.array(orientation[3:]), "spacing": spacing, "shape": (ds.Rows, ds.Columns)}
        for p in unique
    ]


def series_planes(root: Path, row: dict[str, Any], kind: str, view: str) -> list[dict[str, Any]]:
    planes = []
    for series in row["series"]:
        if series["kind"] == kind and series["view"] == view:
            files = sorted((root / series["folder"]).glob("*.dcm"))
            seen = set()
            for path in files:
                for plane in header_planes(path):
                    key = tuple(np.round(plane["position"], 3))
                    if key not in seen:
                        seen.add(key)
                        planes.append(plane)
    return planes


def test_sax_positions_follow_spacing(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    for row in phantom_ground_truth:
        parameters = row["parameters"]
        planes = series_planes(phantom_archive, row, "cine", "sax")
        assert 8 <= len(planes) <= 14
        assert len(planes) == parameters["sax_slices"]
        normal = np.cross(planes[0]["row"], planes[0]["column"])
        for plane in planes:
            assert np.allclose(plane["row"], planes[0]["row"], atol=1e-5)
        offsets = np.sort([float(plane["position"] @ normal) for plane in planes])
        gaps = np.diff(offsets)
        assert gaps == pytest.approx(np.full(len(gaps), parameters["sax_slice_spacing_mm"]), abs=0.02), row["accession_number"]
        assert parameters["sax_slice_spacing_mm"] >= parameters["slice_thickness_mm"] - 1e-6
        # Slices are centred on the LV long axis: in-plane offsets of their centres barely move.
        centres = [plane["position"] - float(plane["position"] @ normal) * normal for plane in planes]
        assert np.max(np.linalg.norm(np.array(centres) - centres[0], axis=1)) < 0.05


def line_of_intersection(a: dict[str, Any], b: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    normal_a = np.cross(a["row"], a["column"])
    normal_b = np.cross(b["row"], b["column"])
    direction = np.cross(normal_a, normal_b)
    direction /= np.linalg.norm(direction)
    matrix = np.stack([normal_a, normal_b, direction])
    point = np.linalg.solve(matrix, np.array([normal_a @ a["position"], normal_b @ b["position"], 0.0]))
    return point, direction


def pixel_index(plane: dict[str, Any], points: np.ndarray) -> np.ndarray:
    offset = points - plane["position"]
    rows = offset @ plane["column"] / plane["spacing"][0]
    columns = offset @ plane["row"] / plane["spacing"][1]
    return np.rint(np.stack([rows, columns], axis=1)).astype(int)


def rendered_labels(row: dict[str, Any], plane: dict[str, Any], view: str) -> np.ndarray:
    """The generator's label map of the plane that matches ``plane``'s header, at end-diastole."""
    plan = plan_study(row["seed"], row["study_index"], row["scenario"], row["domain"])
    candidates = plan.sax.planes if view == "sax" else (plan.long_axis[view],)
    (model_plane,) = [p for p in candidates if np.allclose(p.position, plane["position"], atol=1e-3)]
    layout = SeriesLayout("cine", view, (model_plane,), (0.0,), (0.0,))
    return render_series(plan, layout, with_labels=True).labels[0, 0]


@pytest.mark.parametrize("view", ["2ch", "3ch", "4ch"])
def test_views_intersect_where_model_says(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]], view: str) -> None:
    for row in phantom_ground_truth[:5]:
        sax_planes = series_planes(phantom_archive, row, "cine", "sax")
        sax = sax_planes[len(sax_planes) // 2]
        (long_axis,) = series_planes(phantom_archive, row, "cine", view)
        point, direction = line_of_intersection(sax, long_axis)
        samples = point + np.arange(-150.0, 150.0, 0.5)[:, None] * direction
        sax_pixels = pixel_index(sax, samples)
        long_axis_pixels = pixel_index(long_axis, samples)
        inside = np.all((sax_pixels >= 0) & (sax_pixels < sax["shape"]) & (long_axis_pixels >= 0) & (long_axis_pixels < long_axis["shape"]), axis=1)
        sax_labels = rendered_labels(row, sax, "sax")[tuple(sax_pixels[inside].T)]
        long_axis_labels = rendered_labels(row, long_axis, view)[tuple(long_axis_pixels[inside].T)]

        assert np.count_nonzero(sax_labels == Tissue.LV_BLOOD) >= 20, "the line misses the LV cavity"
        cardiac = (sax_labels >= Tissue.PERICARDIAL_FAT) | (long_axis_labels >= Tissue.PERICARDIAL_FAT)
        agreement = float(np.mean(sax_labels[cardiac] == long_axis_labels[cardiac]))
        assert agreement >= MIN_AGREEMENT, (row["accession_number"], view, agreement)

        # Reading the SAX image 15 mm off the line, as a wrong ImagePositionPatient would, must disagree more.
        across = np.cross(np.cross(sax["row"], sax["column"]), direction)
        moved_sax = pixel_index(sax, samples[inside] + 15.0 * across)
        valid = np.all((moved_sax >= 0) & (moved_sax < sax["shape"]), axis=1)
        moved_labels = rendered_labels(row, sax, "sax")[tuple(moved_sax[valid].T)]
        wrong = float(np.mean((moved_labels == long_axis_labels[valid])[cardiac[valid]]))
        assert wrong < agreement - 0.05, (row["accession_number"], view, agreement, wrong)


def test_pixels_match_labels(phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]]) -> None:
    """Stored cine pixels are bright in the LV blood pool and dark in the myocardium of the label map."""
    for row in phantom_ground_truth[:4]:
        series = next(s for s in row["series"] if s["kind"] == "cine" and s["view"] == "4ch")
        (path,) = sorted((phantom_archive / series["folder"]).glob("*.dcm"))[:1]
        ds = pydicom.dcmread(path)
        image = ds.pixel_array[0] if "NumberOfFrames" in ds and int(ds.NumberOfFrames) > 1 else ds.pixel_array
        labels = rendered_labels(row, header_planes(path)[0], "4ch")
        blood = image[labels == Tissue.LV_BLOOD].mean()
        myocardium = image[labels == Tissue.LV_MYOCARDIUM].mean()
        lung = image[labels == Tissue.LUNG].mean() if np.any(labels == Tissue.LUNG) else 0.0
        assert blood > 2.0 * myocardium, row["accession_number"]
        assert myocardium > lung, row["accession_number"]
