"""Image formation: paint tissues on a plane, then shade, add noise and quantise.

Painting composites tissues from the outermost to the innermost with
partial-volume coverage (see :func:`phantom.shapes.coverage`), so every pixel
mixes the tissues that share it. The label map keeps, per pixel, the last
tissue that covered at least half of it; it is the generator's own mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom import shapes
from phantom.body import Body, body_layers
from phantom.geometry import HeartFrame, Plane
from phantom.heart import ATRIAL_WALL_MM, AORTIC_WALL_MM, PERICARDIUM_MM, HeartModel, HeartState
from phantom.tissues import Tissue


MAX_EPICARDIAL_FAT_MM = 9.0


@dataclass
class Canvas:
    """Signal (relative, float32) and tissue labels (uint8) of a set of points."""

    signal: np.ndarray
    labels: np.ndarray

    def paint(self, distance: np.ndarray, tissue: Tissue, contrast: dict[Tissue, float], width_mm: float) -> None:
        """Composite ``tissue`` over the canvas wherever ``distance`` is negative."""
        cover = shapes.coverage(distance, width_mm).astype(np.float32)
        self.signal += (np.float32(contrast[tissue]) - self.signal) * cover
        self.labels[cover >= 0.5] = tissue

    def paint_fraction(self, cover: np.ndarray, tissue: Tissue, contrast: dict[Tissue, float]) -> None:
        """Composite ``tissue`` with an explicit coverage fraction per point."""
        cover = cover.astype(np.float32)
        self.signal += (np.float32(contrast[tissue]) - self.signal) * cover
        self.labels[cover >= 0.5] = tissue


def paint_body(body: Body, points: np.ndarray, contrast: dict[Tissue, float], width_mm: float) -> Canvas:
    """Paint the static chest on LPS ``points`` (N, 3)."""
    canvas = Canvas(np.zeros(points.shape[0], np.float32), np.zeros(points.shape[0], np.uint8))
    for distance, tissue in body_layers(body, points):
        canvas.paint(distance, tissue, contrast, width_mm)
    return canvas


def paint_heart(
    canvas: Canvas,
    model: HeartModel,
    state: HeartState,
    points: np.ndarray,
    contrast: dict[Tissue, float],
    width_mm: float,
    effusion_mm: float,
) -> None:
    """Paint pericardium, atria, aorta, RV and LV (with scar) over ``canvas``.

    ``points`` are heart-frame coordinates (N, 3) of the canvas's points.
    """
    lv_epi = model.lv_epi(points, state)
    lv_endo = model.lv_endo(points, state)
    rv_outer = model.rv_outer(points, state)
    rv_cavity = model.rv_cavity(points, state, lv_epi)
    la, ra = model.atria(points, state)
    la_outer, ra_outer = model.atria(points, state, ATRIAL_WALL_MM)
    aorta = model.aorta(points, state)
    aorta_outer = model.aorta(points, state, AORTIC_WALL_MM)
    envelope = np.minimum.reduce([lv_epi, rv_outer, la_outer, ra_outer, aorta_outer])

    # Epicardial fat is thickest over the anterior wall and in the AV groove.
    groove = np.clip(1.0 - np.abs(points[:, 2] - state.base_h3) / 15.0, 0.0, 1.0)
    fat_mm = 0.5 + 3.5 * np.clip(points[:, 1] / 45.0, 0.0, 1.0) + (MAX_EPICARDIAL_FAT_MM - 4.0) * groove
    canvas.paint(envelope - effusion_mm - PERICARDIUM_MM - fat_mm, Tissue.PERICARDIAL_FAT, contrast, width_mm)
    canvas.paint(envelope - effusion_mm - PERICARDIUM_MM, Tissue.PERICARDIUM, contrast, width_mm)
    if effusion_mm > 0.5:
        canvas.paint(envelope - effusion_mm, Tissue.EFFUSION, contrast, width_mm)

    canvas.paint(np.minimum(la_outer, ra_outer), Tissue.ATRIAL_WALL, contrast, width_mm)
    canvas.paint(aorta_outer, Tissue.AORTIC_WALL, contrast, width_mm)
    canvas.paint(rv_outer, Tissue.RV_MYOCARDIUM, contrast, width_mm)
    canvas.paint(rv_cavity, Tissue.RV_BLOOD, contrast, width_mm)
    canvas.paint(lv_epi, Tissue.LV_MYOCARDIUM, contrast, width_mm)

    scar = model.scar_weight(points, state, lv_endo, lv_epi)
    if np.any(scar > 0):
        myocardium = shapes.coverage(lv_epi, width_mm) * (1.0 - shapes.coverage(lv_endo, width_mm))
        canvas.paint_fraction(scar * myocardium, Tissue.SCAR, contrast)

    # Atrial and aortic blood go over the ventricular walls they overlap, so
    # blood runs on through the AV valves and the LV outflow tract.
    canvas.paint(la, Tissue.LA_BLOOD, contrast, width_mm)
    canvas.paint(ra, Tissue.RA_BLOOD, contrast, width_mm)
    canvas.paint(aorta, Tissue.AORTIC_BLOOD, contrast, width_mm)
    canvas.paint(lv_endo, Tissue.LV_BLOOD, contrast, width_mm)
    papillary = shapes.intersect(model.papillary_muscles(points, state), lv_endo + 1.0)
    canvas.paint(papillary, Tissue.PAPILLARY_MUSCLE, contrast, width_mm)


@dataclass(frozen=True)
class Shading:
    """Receive-coil sensitivity: Gaussian blobs of anterior and posterior coil elements."""

    coil_centers: np.ndarray  # (K, 3) LPS mm
    coil_gains: np.ndarray  # (K,)
    width_mm: float
    floor: float

    def at(self, points: np.ndarray) -> np.ndarray:
        """Relative sensitivity at LPS ``points`` (N, 3), about 1 at the heart."""
        squared = np.sum((points[:, None, :] - self.coil_centers[None]) ** 2, axis=-1)
        field = self.floor + np.exp(-squared / (2 * self.width_mm**2)) @ self.coil_gains
        return field.astype(np.float32)


class PlaneRenderer:
    """Renders one plane at any cardiac phase; the static chest is painted once."""

    def __init__(self, plane: Plane, frame: HeartFrame, body: Body, model: HeartModel, shading: Shading, width_mm: float) -> None:
        self.plane = plane
        self.model = model
        self.width_mm = width_mm
        points = plane.pixel_points().reshape(-1, 3).astype(np.float32)
        heart_points = frame.to_heart(points)
        # Paint the heart only near it: ventricles are largest at end-diastole,
        # atria at end-systole, and the margin covers effusion, pericardium and fat.
        margin = model.spec.effusion_mm + PERICARDIUM_MM + MAX_EPICARDIAL_FAT_MM + 2.0 * width_mm
        extremes = [model.state(0.0), model.state(model.systole_fraction)]
        near = np.minimum.reduce([model.envelope(heart_points, state) for state in extremes]) < margin
        self.heart_index = np.flatnonzero(near)
        self.heart_points = heart_points[self.heart_index]
        self.lps_points = points
        self.body = body
        self.sensitivity = shading.at(points)
        self._body_canvas: dict[int, Canvas] = {}

    def tissue_image(self, state: HeartState, contrast: dict[Tissue, float], effusion_mm: float) -> Canvas:
        """Noise-free relative signal and labels of the plane at ``state``."""
        key = id(contrast)
        if key not in self._body_canvas:
            self._body_canvas[key] = paint_body(self.body, self.lps_points, contrast, self.width_mm)
        body = self._body_canvas[key]
        signal = body.signal.copy()
        labels = body.labels.copy()
        part = Canvas(signal[self.heart_index], labels[self.heart_index])
        paint_heart(part, self.model, state, self.heart_points, contrast, self.width_mm, effusion_mm)
        signal[self.heart_index] = part.signal
        labels[self.heart_index] = part.labels
        shape = (self.plane.rows, self.plane.columns)
        return Canvas(signal.reshape(shape), labels.reshape(shape))

    def acquire(self, canvas: Canvas, snr: float, scale: float, rng: np.random.Generator) -> np.ndarray:
        """Apply coil shading and Rician noise (sigma = 1/snr of blood) and quantise to uint16."""
        shape = canvas.signal.shape
        clean = canvas.signal * self.sensitivity.reshape(shape)
        sigma = np.float32(1.0 / snr)
        real = clean + sigma * rng.standard_normal(shape, dtype=np.float32)
        imaginary = sigma * rng.standard_normal(shape, dtype=np.float32)
        magnitude = np.sqrt(real * real + imaginary * imaginary)
        return np.clip(np.rint(magnitude * scale), 0, 4095).astype(np.uint16)
