"""Split a study's frames into catalog series, and merge per-slice series.

SeriesInstanceUID alone is not trusted: some archives give every series of a
study one UID, so frames are split by SeriesInstanceUID, SeriesNumber and
orientation. Conversely, vendors that write each short-axis slice as its own
series get those single-position series merged back into one stack.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from indexer.frames import FrameInfo

# Two orientations are the same plane family when both their row and their
# column cosines differ by less than this angle.
ORIENTATION_TOLERANCE_DEG = 3.0
# Frames whose positions along the normal differ by less than this are one slice.
POSITION_TOLERANCE_MM = 0.1


@dataclass
class FrameGroup:
    """Frames that form one catalog series, with the key that identifies it."""

    group_key: str
    frames: list[FrameInfo]
    series_uids: list[str]
    series_numbers: list[int | None]
    merged: bool = False
    siblings: list[FrameGroup] = field(default_factory=list, repr=False)

    @property
    def first(self) -> FrameInfo:
        """The frame with the lowest (InstanceNumber, FrameNumber): the source of series-level attributes."""
        return min(self.frames, key=lambda f: (f.instance_number or 0, f.instance_pk, f.frame_number))

    def slice_positions(self) -> list[float]:
        """Distinct positions along the slice normal, in mm, ascending."""
        return distinct_positions(self.frames)


def same_orientation(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> bool:
    """Tell whether two ImageOrientationPatient values describe the same plane family."""
    if a is None or b is None:
        return a is None and b is None
    limit = np.cos(np.radians(ORIENTATION_TOLERANCE_DEG))
    return bool(np.dot(a[:3], b[:3]) >= limit and np.dot(a[3:], b[3:]) >= limit)


def position_along_normal(frame: FrameInfo, normal: np.ndarray | None) -> float | None:
    """Return ImagePositionPatient · normal in mm, or SliceLocation when geometry is missing."""
    if normal is not None and frame.position is not None:
        return float(np.dot(frame.position, normal))
    return frame.slice_location_mm


def distinct_positions(frames: list[FrameInfo]) -> list[float]:
    """Cluster the frames' positions along the first frame's normal (tolerance POSITION_TOLERANCE_MM)."""
    normal = frames[0].normal
    values = sorted(v for v in (position_along_normal(f, normal) for f in frames) if v is not None)
    positions: list[float] = []
    for value in values:
        if not positions or value - positions[-1] > POSITION_TOLERANCE_MM:
            positions.append(value)
    return positions


def group_study_frames(frames: Iterable[FrameInfo]) -> list[FrameGroup]:
    """Split frames by SeriesInstanceUID, SeriesNumber and orientation, then merge per-slice series."""
    by_series: dict[tuple[str, int | None], list[FrameInfo]] = defaultdict(list)
    for frame in frames:
        by_series[(frame.series_uid, frame.series_number)].append(frame)

    groups: list[FrameGroup] = []
    for (series_uid, series_number), series_frames in sorted(by_series.items(), key=_series_sort_key):
        clusters = _orientation_clusters(series_frames)
        split = [
            FrameGroup(
                group_key=_group_key(series_uid, series_number, cluster),
                frames=cluster,
                series_uids=[series_uid],
                series_numbers=[series_number],
            )
            for cluster in clusters
        ]
        for group in split:
            group.siblings = [other for other in split if other is not group]
        groups.extend(split)
    return _merge_per_slice_series(groups)


def _series_sort_key(item: tuple[tuple[str, int | None], list[FrameInfo]]) -> tuple[int, str]:
    (series_uid, series_number), _ = item
    return (series_number if series_number is not None else -1, series_uid)


def _orientation_clusters(frames: list[FrameInfo]) -> list[list[FrameInfo]]:
    ordered = sorted(frames, key=lambda f: (f.instance_number or 0, f.instance_pk, f.frame_number))
    clusters: list[list[FrameInfo]] = []
    for frame in ordered:
        for cluster in clusters:
            if same_orientation(cluster[0].orientation, frame.orientation):
                cluster.append(frame)
                break
        else:
            clusters.append([frame])
    return clusters


def _orientation_label(orientation: tuple[float, ...] | None) -> str:
    """Format the slice normal, rounded, as a readable label such as ``n+0.35-0.93-0.10``."""
    if orientation is None:
        return "no-orientation"
    normal = np.cross(orientation[:3], orientation[3:])
    return "n" + "".join(f"{value:+.2f}" for value in normal)


def _group_key(series_uid: str, series_number: int | None, frames: list[FrameInfo]) -> str:
    uid_hash = hashlib.sha1(series_uid.encode()).hexdigest()[:12]
    return f"{uid_hash}/{series_number}/{_orientation_label(frames[0].orientation)}"


def _description_stem(frame: FrameInfo) -> str:
    """SeriesDescription without digits, so ``sa_cine_3`` and ``sa_cine_4`` match."""
    text = str(frame.header.get("SeriesDescription") or frame.header.get("ProtocolName") or "")
    return re.sub(r"[\d\s_\-.]+", " ", text.lower()).strip()


def _merge_key(group: FrameGroup) -> tuple[object, ...]:
    first = group.first
    spacing = first.header.get("PixelSpacing") or [None, None]
    phases_per_position = len(group.frames)
    return (
        first.matrix,
        tuple(round(float(v), 3) if v is not None else None for v in spacing),
        _description_stem(first),
        phases_per_position,
    )


def _merge_per_slice_series(groups: list[FrameGroup]) -> list[FrameGroup]:
    """Merge single-position series of one orientation, matrix, spacing and description into one stack."""
    candidates = [g for g in groups if g.first.orientation is not None and len(g.slice_positions()) == 1]
    buckets: list[list[FrameGroup]] = []
    for group in candidates:
        for bucket in buckets:
            head = bucket[0]
            if same_orientation(head.first.orientation, group.first.orientation) and _merge_key(head) == _merge_key(group):
                bucket.append(group)
                break
        else:
            buckets.append([group])

    merged_ids: set[int] = set()
    result: list[FrameGroup] = []
    for bucket in buckets:
        positions = {round(g.slice_positions()[0], 1) for g in bucket}
        if len(bucket) < 2 or len(positions) < 2:
            continue
        merged_ids.update(id(g) for g in bucket)
        numbers = [n for g in bucket for n in g.series_numbers]
        known = [n for n in numbers if n is not None]
        span = f"{min(known)}-{max(known)}" if known else "none"
        frames = [f for g in bucket for f in g.frames]
        result.append(
            FrameGroup(
                group_key=f"merged/{span}/{_orientation_label(bucket[0].first.orientation)}",
                frames=frames,
                series_uids=sorted({u for g in bucket for u in g.series_uids}),
                series_numbers=numbers,
                merged=True,
            )
        )
    kept = [g for g in groups if id(g) not in merged_ids]
    return _unique_keys(kept + result)


def _unique_keys(groups: list[FrameGroup]) -> list[FrameGroup]:
    seen: dict[str, int] = {}
    for group in groups:
        count = seen.get(group.group_key, 0)
        seen[group.group_key] = count + 1
        if count:
            group.group_key = f"{group.group_key}#{count + 1}"
    return groups
