"""Approximate signed distances (mm, negative inside) of the phantom's primitives.

The ellipsoid distance is the first-order approximation
``k0 (k0 - 1) / k1`` with ``k0 = |p / axes|`` and ``k1 = |p / axes²|``. It is
exact on the surface and close to the Euclidean distance within a few
millimetres of it, which is all the partial-volume ramp needs.
"""

from __future__ import annotations

import numpy as np


def ellipsoid(points: np.ndarray, center: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Signed distance of ``points`` (N, 3) to an axis-aligned ellipsoid.

    ``axes`` contains the three semi-axes in mm, either shape (3,) or (N, 3),
    so a semi-axis may differ per point (used for the LV, whose short-axis
    radius depends on the circumferential angle).
    """
    axes = np.asarray(axes, dtype=points.dtype)
    k0_squared = np.zeros(points.shape[0], dtype=points.dtype)
    k1_squared = np.zeros(points.shape[0], dtype=points.dtype)
    for dim in range(3):
        component = points[:, dim] - center[dim]
        semi_axis = axes[..., dim]
        scaled = component / semi_axis
        k0_squared += scaled * scaled
        scaled = scaled / semi_axis
        k1_squared += scaled * scaled
    k0 = np.sqrt(k0_squared)
    return k0 * (k0 - 1.0) / np.maximum(np.sqrt(k1_squared), 1e-9)


def capsule(points: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance to a cylinder of ``radius`` mm with round caps from ``start`` to ``end``."""
    axis = (end - start).astype(points.dtype)
    relative = points - start.astype(points.dtype)
    t = np.clip((relative @ axis) / float(axis @ axis), 0.0, 1.0)
    offset = relative - t[:, None] * axis
    return np.sqrt(np.einsum("ij,ij->i", offset, offset)) - radius


def elliptic_cylinder_z(points: np.ndarray, center_xy: np.ndarray, axes_xy: np.ndarray) -> np.ndarray:
    """Signed distance to an infinite elliptic cylinder parallel to the patient z axis."""
    x = (points[:, 0] - center_xy[0]) / axes_xy[0]
    y = (points[:, 1] - center_xy[1]) / axes_xy[1]
    k0 = np.sqrt(x * x + y * y)
    k1 = np.sqrt((x / axes_xy[0]) ** 2 + (y / axes_xy[1]) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def intersect(*distances: np.ndarray) -> np.ndarray:
    """Signed distance of the intersection of shapes (the maximum)."""
    return np.maximum.reduce(distances)


def subtract(shape: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Signed distance of ``shape`` minus ``removed``."""
    return np.maximum(shape, -removed)


def coverage(distance: np.ndarray, width_mm: float) -> np.ndarray:
    """Fraction of a voxel inside the shape: a linear ramp ``width_mm`` wide across the surface.

    This approximates partial volume along the slice and across the pixel.
    """
    return np.clip(0.5 - distance / width_mm, 0.0, 1.0)
