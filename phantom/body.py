"""The chest around the heart: body wall, lungs, liver, spine, descending aorta.

All shapes are fixed in patient (LPS) coordinates and do not move over the
cycle. Breathing is not modelled because cine is acquired in breath-hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom import shapes
from phantom.tissues import Tissue


@dataclass(frozen=True)
class Body:
    """Sizes and positions (mm, LPS) of the structures around the heart."""

    center_xy: np.ndarray
    axes_xy: np.ndarray
    fat_mm: float
    muscle_mm: float
    lung_centers: tuple[np.ndarray, np.ndarray]
    lung_axes: np.ndarray
    liver_center: np.ndarray
    liver_axes: np.ndarray
    vertebra_xy: np.ndarray
    vertebra_radius: float
    canal_xy: np.ndarray
    aorta_xy: np.ndarray
    aorta_radius: float


def sample_body(bmi: float, heart_points_lps: np.ndarray, rng: np.random.Generator) -> Body:
    """Draw a chest for a patient with body-mass index ``bmi`` (kg/m²).

    ``heart_points_lps`` (N, 3) samples the end-diastolic heart. The chest is
    placed so that the heart sits left of the midline right behind the
    anterior chest wall, and the liver dome lies below the heart.
    """
    fat = float(np.clip(4.0 + 0.9 * (bmi - 18.0) + rng.normal(0, 2.0), 4.0, 35.0))
    muscle = float(rng.uniform(7.0, 14.0))
    lowest = heart_points_lps.min(axis=0)
    highest = heart_points_lps.max(axis=0)
    axes = np.array([150.0 + 1.2 * fat, 100.0 + 1.0 * fat]) * rng.uniform(0.96, 1.08, 2)
    axes[1] = max(axes[1], 0.5 * (highest[1] - lowest[1]) + fat + muscle + 45.0)
    center_y = lowest[1] - float(rng.uniform(4.0, 12.0)) - fat - muscle + axes[1]
    center_x = 0.5 * (lowest[0] + highest[0]) - float(rng.uniform(35.0, 50.0))
    axes[0] = max(axes[0], highest[0] - center_x + fat + muscle + 15.0)
    center = np.array([center_x, center_y])
    posterior = center[1] + axes[1]
    lung_axes = np.array([0.36 * axes[0], 0.68 * axes[1], 150.0]) * rng.uniform(0.94, 1.06)
    lung_z = float(highest[2]) - 30.0 + rng.normal(0, 8.0)
    left = np.array([center[0] + 0.55 * axes[0], center[1] + 0.22 * axes[1], lung_z])
    right = np.array([center[0] - 0.52 * axes[0], center[1] + 0.18 * axes[1], lung_z])
    liver_center = np.array([center[0] - 0.3 * axes[0], center[1] + 5.0, float(lowest[2]) - 55.0 + rng.normal(0, 8)])
    return Body(
        center_xy=center,
        axes_xy=axes,
        fat_mm=fat,
        muscle_mm=muscle,
        lung_centers=(left, right),
        lung_axes=lung_axes,
        liver_center=liver_center,
        liver_axes=np.array([0.75 * axes[0], 0.85 * axes[1], 80.0]) * rng.uniform(0.9, 1.1),
        vertebra_xy=np.array([center[0], posterior - 55.0]),
        vertebra_radius=float(rng.uniform(15.0, 19.0)),
        canal_xy=np.array([center[0], posterior - 30.0]),
        aorta_xy=np.array([center[0] + 24.0, posterior - 68.0]),
        aorta_radius=float(rng.uniform(10.0, 13.0)),
    )


def body_layers(body: Body, points: np.ndarray) -> list[tuple[np.ndarray, Tissue]]:
    """Return (signed distance, tissue) pairs to paint in order, outermost first."""
    skin = shapes.elliptic_cylinder_z(points, body.center_xy, body.axes_xy)
    inner_axes = body.axes_xy - body.fat_mm
    muscle = shapes.elliptic_cylinder_z(points, body.center_xy, inner_axes)
    cavity = shapes.elliptic_cylinder_z(points, body.center_xy, inner_axes - body.muscle_mm)
    lungs = np.minimum(
        shapes.ellipsoid(points, body.lung_centers[0], body.lung_axes),
        shapes.ellipsoid(points, body.lung_centers[1], body.lung_axes),
    )
    lungs = shapes.intersect(lungs, cavity)
    liver = shapes.intersect(shapes.ellipsoid(points, body.liver_center, body.liver_axes), cavity)
    vertebra = shapes.elliptic_cylinder_z(points, body.vertebra_xy, np.full(2, body.vertebra_radius))
    marrow = vertebra + 2.0
    canal = shapes.elliptic_cylinder_z(points, body.canal_xy, np.array([8.0, 7.0]))
    aorta = shapes.elliptic_cylinder_z(points, body.aorta_xy, np.full(2, body.aorta_radius))
    return [
        (skin, Tissue.SUBCUTANEOUS_FAT),
        (muscle, Tissue.MUSCLE),
        (cavity, Tissue.SOFT_TISSUE),
        (lungs, Tissue.LUNG),
        (liver, Tissue.LIVER),
        (vertebra, Tissue.CORTICAL_BONE),
        (marrow, Tissue.BONE_MARROW),
        (canal, Tissue.CSF),
        (aorta, Tissue.DESCENDING_AORTA),
    ]
