"""Label a catalog series with its sequence kind and cardiac view.

Keywords come first: SeriesDescription, ProtocolName and SequenceName are
matched against the naming of Siemens, GE and Philips protocols, in the order
of ``KIND_RULES`` and ``VIEW_RULES``. When no keyword matches, structure and
geometry decide (phase count, orientations of sibling images, the slice
normal). Every label carries the name of the rule that chose it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from indexer.grid import Grid
from indexer.grouping import FrameGroup

KINDS = ("cine", "lge", "scout", "mapping", "perfusion", "flow", "other")
VIEWS = ("sax", "2ch", "3ch", "4ch", "lvot", "other")

# (kind, pattern) tried in this order on the normalised description text.
# TI scouts (Look-Locker inversion-time finders) are matched before "scout".
KIND_RULES: tuple[tuple[str, str], ...] = (
    ("other", r"\bti ?scout\b|\btiscout\b|look ?locker|\bti ?finder\b"),
    ("mapping", r"\bt1 ?map|\bt2 ?map|\bt2 ?star|\bt2\*|\bmolli\b|\bshmolli\b|\bsasha\b|\bmyomaps?\b|\bmapping\b|\becv\b"),
    ("perfusion", r"\bperf|first ?pass|\bstress\b|\brest\b|\badenosine\b|\bregadenoson\b"),
    # Siemens phase-contrast SequenceName such as "*fl2d1_v150in" carries the VENC in cm/s.
    ("flow", r"\bflow\b|\bq ?flow\b|\bpc\b|phase ?contrast|\bvenc|\bvelocity\b|\bv\d{2,3}(in|through|rl|ap|fh)\b"),
    ("lge", r"\blge\b|\bpsir\b|\bde\b|delayed ?enh|late ?(gad|gadolinium|enh)|\bmde\b|\bviability\b|\bir ?fgre\b"),
    ("scout", r"\bscout\b|\blocali[sz]er\b|\bsurvey\b|\bsmartsurvey\b|\b3 ?pl(ane)?\b|\btri ?plane\b|\bloc\b|\bpilot\b"),
    ("cine", r"\bcine\b|\btrufi\b|\bbssfp\b|\bssfp\b|\bfiesta\b|\bs?b ?ffe\b|\bs?b ?tfe\b|\bbalanced\b|\btfi2d"),
)

VIEW_RULES: tuple[tuple[str, str], ...] = (
    ("2ch", r"\b2 ?ch\b|\b2 ?chamber|\btwo ?chamber|\bvla\b|\bvlax\b|vertical ?long"),
    ("3ch", r"\b3 ?ch\b|\b3 ?chamber|\bthree ?chamber"),
    ("4ch", r"\b4 ?ch\b|\b4 ?chamber|\bfour ?chamber|\bhla\b|\bhlax\b|horizontal ?long"),
    ("lvot", r"\blvot\b|outflow ?tract"),
    ("sax", r"\bsax\b|\bsa\b|short ?axis|\bshort\b|\bsa ?stack\b"),
)

# A cine has at least this many phases per slice (CMR guidelines ask for
# a temporal resolution of 45 ms or better, i.e. well over 10 phases per beat).
MIN_CINE_PHASES = 10
# First-pass perfusion images 3 to 4 short-axis slices once per heartbeat for about a
# minute, so it has many ungated dynamics of few slices. These bounds are estimates.
MIN_PERFUSION_DYNAMICS = 20
MAX_PERFUSION_SLICES = 5
# An orientation within this angle of a patient axis is "axis-aligned", not double-oblique.
AXIS_ALIGNED_DEG = 10.0
# A plane whose normal is within this angle of perpendicular to the short-axis
# normal contains the left-ventricular long axis.
LONG_AXIS_TOLERANCE_DEG = 20.0
# A short-axis stack has at least this many parallel slices.
MIN_SAX_SLICES = 3


@dataclass(frozen=True)
class Label:
    """A kind or view with the rule that chose it."""

    value: str
    rule: str


def description_text(group: FrameGroup) -> str:
    """SeriesDescription, ProtocolName and SequenceName, lower case, punctuation as spaces."""
    header = group.first.header
    parts = [str(header.get(k) or "") for k in ("SeriesDescription", "ProtocolName", "SequenceName")]
    return re.sub(r"[^a-z0-9*]+", " ", " ".join(parts).lower()).strip()


def classify_kind(group: FrameGroup, grid: Grid) -> Label:
    """Return the sequence kind of ``group``, by keyword, then by structure."""
    text = description_text(group)
    for kind, pattern in KIND_RULES:
        match = re.search(pattern, text)
        if match:
            return Label(kind, f"keyword '{match.group(0).strip()}'")

    if grid.phases == 1 and _has_orthogonal_sibling(group):
        return Label("scout", "structure: single-phase planes orthogonal to others of the same series")
    if grid.phases == 1 and _inversion_recovery(group):
        return Label("lge", "structure: single-phase inversion-recovery images (InversionTime or ScanningSequence IR)")
    cardiac_images = group.first.header.get("CardiacNumberOfImages")
    gated = grid.order_rule.endswith("TriggerTime") or (isinstance(cardiac_images, int) and cardiac_images > 1)
    if gated and grid.phases >= MIN_CINE_PHASES:
        return Label("cine", f"structure: {grid.phases} phases per slice by TriggerTime")
    if grid.order_rule.endswith("AcquisitionTime") and grid.phases >= MIN_PERFUSION_DYNAMICS and grid.slices <= MAX_PERFUSION_SLICES:
        return Label("perfusion", f"structure: {grid.phases} ungated dynamics of {grid.slices} slice(s) by AcquisitionTime")
    return Label("other", "no keyword or structural rule matched")


def classify_view(group: FrameGroup, grid: Grid, kind: Label, sax_normal: np.ndarray | None) -> Label:
    """Return the view of ``group``, by keyword, then by geometry.

    ``sax_normal`` is the slice normal of the study's short-axis stack, when
    one was found, so that long-axis planes can be recognised.
    """
    if kind.value == "scout":
        return Label("other", "scout: localizer planes are not a cardiac view")
    text = description_text(group)
    for view, pattern in VIEW_RULES:
        match = re.search(pattern, text)
        if match:
            return Label(view, f"keyword '{match.group(0).strip()}'")

    normal = group.first.normal
    if normal is None:
        return Label("other", "no ImageOrientationPatient")
    if _axis_aligned(normal):
        return Label("other", "geometry: plane aligned with a patient axis")
    if grid.slices >= MIN_SAX_SLICES and (sax_normal is None or _parallel(normal, sax_normal)):
        return Label("sax", f"geometry: stack of {grid.slices} parallel double-oblique slices")
    if sax_normal is not None and _contains_long_axis(normal, sax_normal):
        # TODO: tell 2CH, 3CH and 4CH apart from geometry (needs the LV and RV centres).
        return Label("other", "geometry: long-axis plane; the chamber view needs a keyword")
    return Label("other", "geometry: double-oblique plane of unknown view")


def sax_stack_normal(candidates: list[tuple[FrameGroup, Grid]]) -> np.ndarray | None:
    """Return the slice normal of the study's likely short-axis stack.

    That is the double-oblique multi-slice series with the most slices, or one
    that a keyword calls short axis.
    """
    best: tuple[int, np.ndarray] | None = None
    for group, grid in candidates:
        normal = group.first.normal
        if normal is None or _axis_aligned(normal):
            continue
        keyword = re.search(VIEW_RULES[-1][1], description_text(group)) is not None
        score = grid.slices + (1000 if keyword else 0)
        if (keyword or grid.slices >= MIN_SAX_SLICES) and (best is None or score > best[0]):
            best = (score, normal)
    return best[1] if best else None


def _axis_aligned(normal: np.ndarray) -> bool:
    return bool(np.max(np.abs(normal)) >= np.cos(np.radians(AXIS_ALIGNED_DEG)))


def _parallel(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(abs(float(np.dot(a, b))) >= np.cos(np.radians(AXIS_ALIGNED_DEG)))


def _contains_long_axis(normal: np.ndarray, sax_normal: np.ndarray) -> bool:
    return bool(abs(float(np.dot(normal, sax_normal))) <= np.sin(np.radians(LONG_AXIS_TOLERANCE_DEG)))


def _inversion_recovery(group: FrameGroup) -> bool:
    header = group.first.header
    inversion_time = header.get("InversionTime")
    if isinstance(inversion_time, (int, float)) and inversion_time > 0:
        return True
    scanning = header.get("ScanningSequence") or ()
    values = [scanning] if isinstance(scanning, str) else list(scanning)
    return any(str(value).upper() == "IR" for value in values)


def _has_orthogonal_sibling(group: FrameGroup) -> bool:
    normal = group.first.normal
    if normal is None:
        return False
    for sibling in group.siblings:
        other = sibling.first.normal
        if other is not None and abs(float(np.dot(normal, other))) < 0.1:
            return True
    return False
