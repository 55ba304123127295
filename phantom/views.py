"""Imaging planes of a study: the SAX stack and the three long-axis views.

Each plane is a cut through the same heart frame, so the views agree with
each other the way a real exam planned on localisers does. Displays follow
the usual conventions: on SAX the anterior wall is up and the RV on the
viewer's left; on long-axis views the apex is up and the atria down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phantom.acquisition import Acquisition
from phantom.geometry import HeartFrame, Plane, centered_plane, rotate, unit
from phantom.heart import HeartModel

MIN_SAX_SLICES = 8
MAX_SAX_SLICES = 14
OUTFLOW_ANGLE_DEG = 30.0  # circumferential angle of the 3CH plane (through the aortic root)


@dataclass(frozen=True)
class SaxStack:
    """SAX slice planes from base to apex and their heart-frame levels (mm along e3)."""

    planes: tuple[Plane, ...]
    levels_mm: tuple[float, ...]
    spacing_mm: float


def sax_stack(frame: HeartFrame, model: HeartModel, acquisition: Acquisition, rng: np.random.Generator) -> SaxStack:
    """Plan a SAX stack that covers the LV from just below the base to the apex.

    The slice count follows the LV length; when it would fall outside 8–14
    slices, the gap between slices is changed instead, as an operator would.
    """
    first = -float(rng.uniform(2.0, 7.0))
    last = model.apex_h3 - 0.5 * model.apex_wall_ed
    spacing = acquisition.slice_spacing_mm
    count = int(math.floor((first - last) / spacing)) + 1
    if count > MAX_SAX_SLICES:
        count = MAX_SAX_SLICES
        spacing = (first - last) / (count - 1)
    elif count < MIN_SAX_SLICES:
        count = MIN_SAX_SLICES
        spacing = max(acquisition.slice_thickness_mm, (first - last) / (count - 1))
    spacing = round(spacing, 2)
    rotation = math.radians(acquisition.in_plane_rotation_deg["sax"])
    row = rotate(-frame.e1, frame.e3, rotation)
    column = rotate(-frame.e2, frame.e3, rotation)
    offset = np.array([12.0, 0.0, 0.0]) + np.append(rng.normal(0.0, 6.0, 2), 0.0)
    levels = tuple(first - k * spacing for k in range(count))
    planes = tuple(
        centered_plane(frame.to_patient(offset + np.array([0.0, 0.0, level])), row, column, acquisition.rows, acquisition.columns, acquisition.pixel_spacing_mm)
        for level in levels
    )
    return SaxStack(planes=planes, levels_mm=levels, spacing_mm=spacing)


def long_axis_plane(view: str, frame: HeartFrame, model: HeartModel, acquisition: Acquisition, rng: np.random.Generator) -> Plane:
    """Plan a 2CH, 3CH or 4CH plane through the LV long axis.

    4CH contains e1 (through both ventricles), 2CH contains e2 (anterior and
    inferior LV walls only) and 3CH contains the direction of the aortic
    root, 30° from the septum towards the anterior wall.
    """
    if view == "4ch":
        in_plane = frame.e1
    elif view == "2ch":
        in_plane = -frame.e2
    elif view == "3ch":
        angle = math.radians(OUTFLOW_ANGLE_DEG)
        in_plane = math.cos(angle) * frame.e1 + math.sin(angle) * frame.e2
    else:
        raise ValueError(f"unknown long-axis view {view!r}; expected 2ch, 3ch or 4ch")
    normal = unit(np.cross(in_plane, frame.e3))
    rotation = math.radians(acquisition.in_plane_rotation_deg[view])
    row = rotate(-in_plane, normal, rotation)
    column = rotate(frame.e3, normal, rotation)
    along = 12.0 if view == "4ch" else 0.0
    centre_heart = np.array([0.0, 0.0, 0.45 * model.apex_h3 + 10.0]) + along * np.array([1.0, 0.0, 0.0])
    centre = frame.to_patient(centre_heart) + float(rng.normal(0.0, 5.0)) * unit(row)
    return centered_plane(centre, row, column, acquisition.rows, acquisition.columns, acquisition.pixel_spacing_mm)
