"""The geometry and timing of one image of a study, as assembly reads them.

A single-frame instance yields one :class:`FrameInfo`; an Enhanced MR
multi-frame instance yields one per entry of its ``frames`` list, with the
per-frame values over the instance's top-level ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FrameInfo:
    """Geometry (mm, patient coordinates) and timing (ms) of one frame."""

    instance_pk: int
    frame_number: int
    header: Mapping[str, Any]
    series_uid: str
    series_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    trigger_time_ms: float | None
    acquisition_time_s: float | None
    instance_number: int | None
    slice_location_mm: float | None
    temporal_index: int | None
    in_stack_position: int | None
    echo_time_ms: float | None
    inversion_time_ms: float | None
    image_type: tuple[str, ...]

    @property
    def normal(self) -> np.ndarray | None:
        """Unit slice normal: row cosines × column cosines of ImageOrientationPatient."""
        if self.orientation is None:
            return None
        normal = np.cross(self.orientation[:3], self.orientation[3:])
        length = float(np.linalg.norm(normal))
        return normal / length if length > 0 else None

    @property
    def matrix(self) -> tuple[int | None, int | None]:
        """Rows and Columns."""
        return self.header.get("Rows"), self.header.get("Columns")


def frames_of_instance(instance_pk: int, header: Mapping[str, Any]) -> list[FrameInfo]:
    """Expand one catalogued instance into its frames, in FrameNumber order."""
    per_frame = header.get("frames") or [{}]
    frames = []
    for index, values in enumerate(per_frame, start=1):
        merged = {**header, **values} if values else header
        frames.append(_frame_info(instance_pk, int(values.get("FrameNumber", index)), header, merged))
    return frames


def _frame_info(instance_pk: int, frame_number: int, header: Mapping[str, Any], values: Mapping[str, Any]) -> FrameInfo:
    image_type = values.get("ImageType") or []
    if isinstance(image_type, str):
        image_type = [image_type]
    return FrameInfo(
        instance_pk=instance_pk,
        frame_number=frame_number,
        header=header,
        series_uid=str(values.get("SeriesInstanceUID", "")),
        series_number=_as_int(values.get("SeriesNumber")),
        position=_vector(values.get("ImagePositionPatient"), 3),
        orientation=_vector(values.get("ImageOrientationPatient"), 6),
        trigger_time_ms=_as_float(values.get("TriggerTime")),
        acquisition_time_s=_time_of_day_s(values.get("AcquisitionTime") or values.get("ContentTime"))
        if "FrameAcquisitionDateTime" not in values
        else _time_of_day_s(str(values["FrameAcquisitionDateTime"])[8:]),
        instance_number=_as_int(values.get("InstanceNumber")),
        slice_location_mm=_as_float(values.get("SliceLocation")),
        temporal_index=_as_int(values.get("TemporalPositionIndex") or values.get("TemporalPositionIdentifier")),
        in_stack_position=_as_int(values.get("InStackPositionNumber")),
        echo_time_ms=_as_float(values.get("EchoTime")),
        inversion_time_ms=_first_float(values.get("InversionTime")),
        image_type=tuple(str(item) for item in image_type),
    )


def _vector(value: Any, length: int) -> tuple[float, ...] | None:
    if not isinstance(value, list) or len(value) != length:
        return None
    try:
        return tuple(float(item) for item in value)
    except (TypeError, ValueError):
        return None


def _as_float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _first_float(value: Any) -> float | None:
    if isinstance(value, list):
        return _as_float(value[0]) if value else None
    return _as_float(value)


def _as_int(value: Any) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _time_of_day_s(value: Any) -> float | None:
    """Convert a DICOM TM value (HHMMSS.FFFFFF, parts optional) to seconds after midnight."""
    if not value:
        return None
    text = str(value).replace(":", "").strip()
    try:
        hours = int(text[0:2])
        minutes = int(text[2:4]) if len(text) >= 4 else 0
        seconds = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return None
    return hours * 3600 + minutes * 60 + seconds
