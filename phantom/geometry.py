"""Coordinates: the heart's own frame inside the patient, and imaging planes.

Patient coordinates are DICOM's LPS (x to the patient's left, y posterior,
z superior), in mm. The heart frame has its origin at the centre of the LV
base (mitral) plane at end-diastole and three unit axes:

* ``e3`` along the LV long axis, pointing from the apex towards the base;
* ``e1`` in the short-axis plane, pointing from the LV centre to the
  mid-septum and on into the RV;
* ``e2`` in the short-axis plane, pointing to the anterior wall.

Circumferential angle ``theta = atan2(h2, h1)`` is 0° at the mid-septum,
+90° anterior, ±180° lateral and -90° inferior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unit(vector: np.ndarray) -> np.ndarray:
    """Return ``vector`` scaled to length 1."""
    return vector / np.linalg.norm(vector)


def rotate(vector: np.ndarray, axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotate ``vector`` about the unit ``axis`` by ``angle_rad`` (Rodrigues' formula)."""
    axis = unit(axis)
    return (
        vector * np.cos(angle_rad)
        + np.cross(axis, vector) * np.sin(angle_rad)
        + axis * float(axis @ vector) * (1.0 - np.cos(angle_rad))
    )


@dataclass(frozen=True)
class HeartFrame:
    """Placement of the heart frame in patient coordinates."""

    origin: np.ndarray  # LPS position of the ED base-plane centre, mm
    e1: np.ndarray
    e2: np.ndarray
    e3: np.ndarray

    @property
    def rotation(self) -> np.ndarray:
        """Matrix whose rows are e1, e2, e3: heart = rotation @ (patient - origin)."""
        return np.stack([self.e1, self.e2, self.e3])

    def to_heart(self, points: np.ndarray) -> np.ndarray:
        """Map LPS points (..., 3) to heart-frame coordinates."""
        return (points - self.origin) @ self.rotation.T

    def to_patient(self, points: np.ndarray) -> np.ndarray:
        """Map heart-frame points (..., 3) to LPS coordinates."""
        return points @ self.rotation + self.origin


def sample_heart_frame(origin: np.ndarray, rng: np.random.Generator) -> HeartFrame:
    """Draw a heart orientation around the typical one.

    The apex points left, anterior and inferior (roughly 45° from each of the
    body's axes), with about 8° of variation per patient.
    """
    apex_direction = unit(np.array([0.62, -0.55, -0.55]) + rng.normal(0.0, 0.08, 3))
    e3 = -apex_direction
    toward_rv = np.array([-0.8, -0.6, 0.0]) + rng.normal(0.0, 0.08, 3)
    e1 = unit(toward_rv - float(toward_rv @ e3) * e3)
    e2 = np.cross(e3, e1)
    if float(e2 @ np.array([0.0, -1.0, 0.3])) < 0:
        e2 = -e2
    return HeartFrame(origin=np.asarray(origin, dtype=float), e1=e1, e2=e2, e3=e3)


@dataclass(frozen=True)
class Plane:
    """One image plane as DICOM describes it.

    ``position`` is ImagePositionPatient, the centre of the first pixel;
    ``row_direction`` and ``column_direction`` are the two halves of
    ImageOrientationPatient. Pixel (r, c) lies at ``position + c *
    column_spacing * row_direction + r * row_spacing * column_direction``.
    """

    position: np.ndarray
    row_direction: np.ndarray
    column_direction: np.ndarray
    rows: int
    columns: int
    row_spacing_mm: float  # PixelSpacing[0], between rows
    column_spacing_mm: float  # PixelSpacing[1], between columns

    @property
    def normal(self) -> np.ndarray:
        """Unit normal: row direction × column direction."""
        return np.cross(self.row_direction, self.column_direction)

    @property
    def center(self) -> np.ndarray:
        """LPS position of the image centre."""
        return (
            self.position
            + 0.5 * (self.columns - 1) * self.column_spacing_mm * self.row_direction
            + 0.5 * (self.rows - 1) * self.row_spacing_mm * self.column_direction
        )

    def pixel_points(self) -> np.ndarray:
        """LPS positions of every pixel centre, shape (rows, columns, 3)."""
        r = np.arange(self.rows, dtype=np.float64)[:, None, None] * self.row_spacing_mm
        c = np.arange(self.columns, dtype=np.float64)[None, :, None] * self.column_spacing_mm
        return self.position + c * self.row_direction + r * self.column_direction

    def to_pixel(self, points: np.ndarray) -> np.ndarray:
        """Map LPS points (..., 3) to fractional (row, column) indices, ignoring the offset along the normal."""
        offset = points - self.position
        row = (offset @ self.column_direction) / self.row_spacing_mm
        column = (offset @ self.row_direction) / self.column_spacing_mm
        return np.stack([row, column], axis=-1)


def centered_plane(
    center: np.ndarray,
    row_direction: np.ndarray,
    column_direction: np.ndarray,
    rows: int,
    columns: int,
    spacing_mm: float,
) -> Plane:
    """Build a plane of square pixels whose image centre is ``center``."""
    row_direction = unit(row_direction)
    column_direction = unit(column_direction - float(column_direction @ row_direction) * row_direction)
    position = (
        center
        - 0.5 * (columns - 1) * spacing_mm * row_direction
        - 0.5 * (rows - 1) * spacing_mm * column_direction
    )
    return Plane(position, row_direction, column_direction, rows, columns, spacing_mm, spacing_mm)
