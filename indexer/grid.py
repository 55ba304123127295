"""Order a series' frames into a slice × phase grid and report what is missing.

Slices are ordered by position along the slice normal (ImagePositionPatient
· normal of ImageOrientationPatient), falling back to SliceLocation and then
InStackPositionNumber. Phases are ordered within each slice, by TriggerTime
when it separates the frames. Each slice is its own breath-hold, so trigger
times jitter between slices and are never matched across slices exactly.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from indexer.frames import FrameInfo
from indexer.grouping import POSITION_TOLERANCE_MM, position_along_normal

# A gap between neighbouring slices larger than this many times the median
# spacing is reported as a possibly missing slice.
SLICE_GAP_FACTOR = 1.5


@dataclass
class Grid:
    """Frames placed at (slice_index, phase_index), with what could not be placed."""

    cells: dict[tuple[int, int], FrameInfo]
    slices: int
    phases: int
    slice_positions_mm: list[float | None]
    order_rule: str
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every cell contains exactly one frame and no slice gap was found."""
        return not self.problems

    def trigger_steps_ms(self) -> list[float]:
        """Differences of TriggerTime between consecutive phases, over every slice."""
        steps = []
        for slice_index in range(self.slices):
            times = [self.cells[(slice_index, p)].trigger_time_ms for p in range(self.phases) if (slice_index, p) in self.cells]
            known = [t for t in times if t is not None]
            steps.extend(b - a for a, b in zip(known, known[1:]))
        return steps


def build_grid(frames: list[FrameInfo]) -> Grid:
    """Place ``frames`` (one series, one orientation family) on a slice × phase grid."""
    slices, slice_rule, problems = _split_slices(frames)
    slices, duplicate_problems = _drop_duplicates(slices)
    problems += duplicate_problems

    phase_rule = _phase_rule(slices)
    ordered = [sorted(members, key=lambda f: _phase_key(f, phase_rule)) for _, members in slices]
    expected_phases = _expected_phases(ordered, phase_rule)

    cells: dict[tuple[int, int], FrameInfo] = {}
    reference = _reference_timeline(ordered, expected_phases) if phase_rule == "TriggerTime" else None
    for slice_index, members in enumerate(ordered):
        slots = _assign_slots(members, expected_phases, reference)
        for frame, slot in zip(members, slots):
            cells[(slice_index, slot)] = frame
        if len(members) < expected_phases:
            missing = sorted(set(range(expected_phases)) - set(slots))
            problems.append(
                f"slice {slice_index} has {len(members)} of {expected_phases} phases; missing phase(s) {_ranges(missing)}"
            )

    positions = [position for position, _ in slices]
    problems += _slice_gap_problems(positions)
    return Grid(
        cells=cells,
        slices=len(slices),
        phases=expected_phases,
        slice_positions_mm=positions,
        order_rule=f"slices: {slice_rule}; phases: {phase_rule}",
        problems=problems,
    )


def _split_slices(frames: list[FrameInfo]) -> tuple[list[tuple[float | None, list[FrameInfo]]], str, list[str]]:
    normal = frames[0].normal
    keyed: list[tuple[float, FrameInfo]] = []
    if all(f.position is not None for f in frames) and normal is not None:
        rule = "position along normal"
        keyed = [(float(np.dot(f.position, normal)), f) for f in frames]  # type: ignore[arg-type]
    elif all(f.slice_location_mm is not None for f in frames):
        rule = "SliceLocation"
        keyed = [(position_along_normal(f, None), f) for f in frames]  # type: ignore[misc]
    elif all(f.in_stack_position is not None for f in frames):
        rule = "InStackPositionNumber"
        keyed = [(float(f.in_stack_position), f) for f in frames]  # type: ignore[arg-type]
    else:
        return [(None, list(frames))], "none", ["no ImagePositionPatient, SliceLocation or InStackPositionNumber; frames treated as one slice"]

    keyed.sort(key=lambda item: item[0])
    slices: list[tuple[float | None, list[FrameInfo]]] = []
    for value, frame in keyed:
        if slices and value - slices[-1][0] <= POSITION_TOLERANCE_MM:  # type: ignore[operator]
            slices[-1][1].append(frame)
        else:
            slices.append((value, [frame]))
    return slices, rule, []


def _identity(frame: FrameInfo) -> tuple[object, ...]:
    """Attributes that tell two frames at one position apart; equal values mean a duplicate frame."""
    return (
        frame.trigger_time_ms,
        frame.temporal_index,
        frame.acquisition_time_s,
        frame.echo_time_ms,
        frame.inversion_time_ms,
        frame.image_type,
        frame.instance_number,
    )


def _drop_duplicates(slices: list[tuple[float | None, list[FrameInfo]]]) -> tuple[list[tuple[float | None, list[FrameInfo]]], list[str]]:
    problems: list[str] = []
    result = []
    for slice_index, (position, members) in enumerate(slices):
        kept: dict[tuple[object, ...], FrameInfo] = {}
        for frame in sorted(members, key=lambda f: (f.instance_pk, f.frame_number)):
            key = _identity(frame)
            if key in kept:
                other = kept[key]
                problems.append(
                    f"slice {slice_index}: duplicate frame, instance {frame.instance_pk} frame {frame.frame_number} "
                    f"repeats instance {other.instance_pk} frame {other.frame_number}; the first is kept"
                )
                continue
            kept[key] = frame
        result.append((position, list(kept.values())))
    return result, problems


def _distinct_within_slices(slices: list[tuple[float | None, list[FrameInfo]]], attribute: str) -> bool:
    for _, members in slices:
        values = [getattr(f, attribute) for f in members]
        if any(v is None for v in values) or len(set(values)) != len(values):
            return False
    return True


def _phase_rule(slices: list[tuple[float | None, list[FrameInfo]]]) -> str:
    """Pick the attribute that orders phases within every slice.

    Cine is gated, so TriggerTime separates its phases. Ungated dynamic series
    such as first-pass perfusion have (nearly) one TriggerTime per slice and
    one image per heartbeat, so CardiacNumberOfImages of 0 or 1 together with
    distinct acquisition times selects AcquisitionTime.
    """
    cardiac_images = slices[0][1][0].header.get("CardiacNumberOfImages")
    dynamic = any(len(members) > 1 for _, members in slices)
    if not dynamic:
        return "single phase"
    if cardiac_images in (0, 1) and dynamic and _distinct_within_slices(slices, "acquisition_time_s"):
        return "AcquisitionTime"
    for attribute, rule in (
        ("trigger_time_ms", "TriggerTime"),
        ("temporal_index", "TemporalPositionIndex"),
        ("acquisition_time_s", "AcquisitionTime"),
    ):
        if _distinct_within_slices(slices, attribute):
            return rule
    return "InstanceNumber"


def _phase_key(frame: FrameInfo, rule: str) -> tuple[float, float, int]:
    fallback = (frame.instance_number if frame.instance_number is not None else 0, frame.frame_number)
    value = {
        "TriggerTime": frame.trigger_time_ms,
        "TemporalPositionIndex": frame.temporal_index,
        "AcquisitionTime": frame.acquisition_time_s,
    }.get(rule)
    return (float(value) if value is not None else 0.0, float(fallback[0]), fallback[1])


def _expected_phases(ordered: list[list[FrameInfo]], rule: str) -> int:
    most = max(len(members) for members in ordered)
    cardiac_images = ordered[0][0].header.get("CardiacNumberOfImages")
    if rule == "TriggerTime" and isinstance(cardiac_images, int) and cardiac_images > most:
        return cardiac_images
    return most


def _reference_timeline(ordered: list[list[FrameInfo]], phases: int) -> list[float] | None:
    """Median TriggerTime of each phase over the slices that have every phase."""
    full = [members for members in ordered if len(members) == phases]
    if not full:
        return None
    return [statistics.median(m[p].trigger_time_ms for m in full) for p in range(phases)]  # type: ignore[misc]


def _assign_slots(members: list[FrameInfo], phases: int, reference: list[float] | None) -> list[int]:
    """Return the phase index of each frame; a short slice is matched to the reference timeline."""
    if len(members) == phases or reference is None:
        return list(range(len(members)))
    slots: list[int] = []
    for index, frame in enumerate(members):
        lowest = slots[-1] + 1 if slots else 0
        highest = phases - (len(members) - index)
        candidates = range(lowest, highest + 1)
        slots.append(min(candidates, key=lambda p: abs(reference[p] - (frame.trigger_time_ms or 0.0))))
    return slots


def _slice_gap_problems(positions: list[float | None]) -> list[str]:
    known = [p for p in positions if p is not None]
    if len(known) < 3 or len(known) != len(positions):
        return []
    gaps = np.diff(known)
    spacing = float(np.median(gaps))
    problems = []
    for index, gap in enumerate(gaps):
        if spacing > 0 and gap > SLICE_GAP_FACTOR * spacing:
            problems.append(
                f"gap of {gap:.1f} mm between slices {index} and {index + 1} "
                f"(median spacing {spacing:.1f} mm): a slice may be missing"
            )
    return problems


def _ranges(values: list[int]) -> str:
    """Format sorted integers as ``0-2, 5``."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)
