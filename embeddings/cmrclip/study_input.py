"""From a catalogued study to the 64-frame "video" that CMR-CLIP reads.

CMR-CLIP was trained on one fixed concatenation of six views per study, all
grey-scale, 224 × 224, 8-bit:

======  =========================================================  ======
order   segment                                                    frames
======  =========================================================  ======
1       ``cine_lax``: long-axis cine, middle slice, 30 phases      30
2       ``cine_sax``: short-axis cine, middle slice, 30 phases     30
3       ``lge_sax``: LGE short-axis stack, every slice             L
4       ``lge_lax``: one LGE long-axis (4-chamber) image, L times  L
5       ``lge_2ch``: one LGE 2-chamber image, L times              L
6       ``lge_3ch``: one LGE 3-chamber image, L times              L
======  =========================================================  ======

The training studies all had every view and 10 to 15 LGE short-axis slices.
From the 60 + 4L frames, 64 are taken by the published evaluation rule (the
middle frame of each of 64 equal parts), copied into three channels and
normalised with the ImageNet mean and std.

Real archives often lack views: a non-contrast exam has no LGE, and the
Sunnybrook studies have only a short-axis cine. A missing segment keeps its
place and length in the video (``DEFAULT_LGE_SLICES`` frames for an LGE
segment when the study has no LGE stack) and its frames are zero after
normalisation, the value the published loader pads with. ``StudyVideo.segments``
records which segments are real and which are filled.

Pixels come from :func:`indexer.pixels.read_series_pixels` and go through the
shared clip steps in :mod:`embeddings.clips` (cycle resampling, percentile
intensity scaling, resizing), so no second DICOM reader exists here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from embeddings.clips import crop_centred, normalise_intensity, resample_cycle, resize_frames, sax_slice_indices
from indexer.catalog.models import Series
from indexer.pixels import read_series_pixels

logger = logging.getLogger(__name__)

SEGMENTS: tuple[str, ...] = ("cine_lax", "cine_sax", "lge_sax", "lge_lax", "lge_2ch", "lge_3ch")
REAL = "real"
FILLED = "filled"

CINE_PHASES = 30  # every training cine had exactly 30 phases
DEFAULT_LGE_SLICES = 12  # L of a study without an LGE short-axis stack, inside the trained range 10..15
IMAGE_SIZE = 224
# The evaluation transform resizes to 256 and back to 224, which blurs slightly; it is kept.
EVALUATION_RESIZE = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Catalog (kind, views in order of preference) of each segment. The published
# code does not name the long-axis view of its cine; 4-chamber is taken first.
SEGMENT_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cine_lax": ("cine", ("4ch", "2ch", "3ch", "lvot")),
    "cine_sax": ("cine", ("sax",)),
    "lge_sax": ("lge", ("sax",)),
    "lge_lax": ("lge", ("4ch",)),
    "lge_2ch": ("lge", ("2ch",)),
    "lge_3ch": ("lge", ("3ch", "lvot")),
}


class StudyInputError(ValueError):
    """A study has no series that CMR-CLIP can read."""


@dataclass(frozen=True)
class StudyVideo:
    """The model input of one study and where each part came from.

    ``frames`` is (frames, 3, 224, 224) float32, ImageNet-normalised.
    ``segments`` maps each of :data:`SEGMENTS` to "real" or "filled";
    ``series_pks`` maps each real segment to its catalog series.
    ``frame_segments`` names the segment of every sampled frame, and
    ``source_length`` is the length of the video before sampling (60 + 4L).
    """

    frames: torch.Tensor
    segments: dict[str, str]
    series_pks: dict[str, int] = field(default_factory=dict)
    frame_segments: tuple[str, ...] = ()
    source_length: int = 0

    @property
    def real_frames(self) -> int:
        """Number of sampled frames that come from a real series."""
        return sum(self.segments[name] == REAL for name in self.frame_segments)


# ---------------------------------------------------------------------------
# Array-level steps.


def sample_frame_indices(length: int, count: int) -> np.ndarray:
    """Return the published evaluation sample: the middle frame of each of ``count`` equal parts.

    The video of ``length`` frames is cut at ``floor(linspace(0, length, n + 1))``
    with ``n = min(count, length)``, and part ``[start, end)`` contributes
    frame ``(start + end - 1) // 2``.
    """
    if length < 1:
        raise ValueError(f"cannot sample frames from a video of length {length}")
    parts = min(count, length)
    edges = np.linspace(0, length, parts + 1).astype(int)
    return (edges[:-1] + edges[1:] - 1) // 2


def square_full_view(images: np.ndarray) -> np.ndarray:
    """Pad the last two axes to a centred square of the longer side, filled with the minimum.

    NOTE: the published preprocessing that made its 224 × 224 arrays is not
    public. This keeps the whole field of view without distorting it.
    """
    height, width = images.shape[-2:]
    side = max(height, width)
    return crop_centred(images, (height // 2, width // 2), (side, side), fill=float(np.min(images)))


def to_eight_bit(images: np.ndarray) -> np.ndarray:
    """Scale a series' pixels by its 1st..99.5th percentiles, square, resize to 224 and quantise to uint8."""
    scaled = normalise_intensity(square_full_view(images))
    resized = resize_frames(scaled, IMAGE_SIZE)
    return np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8)


def cine_segment(cine: np.ndarray, trigger_times_ms: np.ndarray | None = None) -> np.ndarray:
    """Turn one cine slice (phases, Rows, Columns) into (30, 224, 224) uint8 over one cardiac cycle."""
    if cine.ndim != 3:
        raise ValueError(f"expected one cine slice (phases, rows, cols), got shape {cine.shape}")
    return to_eight_bit(resample_cycle(cine, CINE_PHASES, trigger_times_ms))


def still_segment(images: np.ndarray) -> np.ndarray:
    """Turn still images (slices, Rows, Columns) into (slices, 224, 224) uint8, scaled together."""
    if images.ndim != 3:
        raise ValueError(f"expected (slices, rows, cols), got shape {images.shape}")
    return to_eight_bit(images)


def segment_lengths(lge_slices: int) -> dict[str, int]:
    """Return the number of frames of each segment for an LGE stack of ``lge_slices`` slices."""
    lengths = {"cine_lax": CINE_PHASES, "cine_sax": CINE_PHASES}
    lengths.update({name: lge_slices for name in SEGMENTS[2:]})
    return lengths


def normalise_frames(frames: np.ndarray) -> torch.Tensor:
    """Turn uint8 frames (n, 224, 224) into ImageNet-normalised (n, 3, 224, 224) float32.

    As in the published evaluation transform, frames are resized to 256 and
    back to 224 (bilinear, antialiased) before normalisation.
    """
    scaled = frames.astype(np.float32) / 255.0
    scaled = resize_frames(resize_frames(scaled, EVALUATION_RESIZE), IMAGE_SIZE)
    rgb = torch.from_numpy(scaled).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((rgb - mean) / std).contiguous()


def assemble_video(parts: dict[str, np.ndarray | None], frame_count: int = 64) -> StudyVideo:
    """Concatenate segments in the published order, sample ``frame_count`` frames and normalise them.

    ``parts`` maps segment names to uint8 arrays (n, 224, 224), or to None for
    a missing segment. A single LGE long-axis image is repeated once per LGE
    short-axis slice. A video shorter than ``frame_count`` is padded with zero
    frames after normalisation, as the published loader does.
    """
    unknown = set(parts) - set(SEGMENTS)
    if unknown:
        raise ValueError(f"unknown segments {sorted(unknown)}; expected names from {SEGMENTS}")
    lge_stack = parts.get("lge_sax")
    lengths = segment_lengths(DEFAULT_LGE_SLICES if lge_stack is None else lge_stack.shape[0])

    sources: list[tuple[str, np.ndarray | None, int]] = []  # (segment, array, index in array) per video frame
    for name in SEGMENTS:
        array = parts.get(name)
        for position in range(lengths[name]):
            if array is None:
                sources.append((name, None, 0))
            elif name in ("lge_lax", "lge_2ch", "lge_3ch"):
                sources.append((name, array, array.shape[0] // 2))  # one image, repeated
            else:
                sources.append((name, array, position))

    picked = [sources[index] for index in sample_frame_indices(len(sources), frame_count)]
    frames = torch.zeros(frame_count, 3, IMAGE_SIZE, IMAGE_SIZE)
    real_rows = [row for row, (_, array, _) in enumerate(picked) if array is not None]
    if real_rows:
        stacked = np.stack([picked[row][1][picked[row][2]] for row in real_rows])  # type: ignore[index]
        frames[real_rows] = normalise_frames(stacked)

    segments = {name: (FILLED if parts.get(name) is None else REAL) for name in SEGMENTS}
    return StudyVideo(
        frames=frames,
        segments=segments,
        frame_segments=tuple(name for name, _, _ in picked),
        source_length=len(sources),
    )


# ---------------------------------------------------------------------------
# Catalog-level functions.


def select_segment_series(session: Session, study_pk: int) -> dict[str, Series]:
    """Return the catalog series behind each segment that the study has.

    Only complete series count. Among several candidates of one segment the
    preferred view wins, then the most slices, then the most phases, then the
    lowest id.
    """
    candidates = session.scalars(
        select(Series).where(Series.study_pk == study_pk, Series.complete.is_(True), Series.kind.in_(("cine", "lge")))
    ).all()
    chosen: dict[str, Series] = {}
    for name, (kind, views) in SEGMENT_SOURCES.items():
        matching = [series for series in candidates if series.kind == kind and series.view in views]
        if matching:
            chosen[name] = min(matching, key=lambda s: (views.index(s.view), -s.slices, -s.phases, s.id))
    return chosen


def read_segment(session: Session, name: str, series: Series) -> np.ndarray:
    """Decode the frames one segment needs from ``series`` and return them as uint8 (n, 224, 224)."""
    if name.startswith("cine"):
        middle = series.slices // 2
        pixels = read_series_pixels(session, series.id, [middle])
        return cine_segment(pixels.array[0], pixels.trigger_times_ms[0])

    if name == "lge_sax":
        positions = _even_positions(series.slices)
        order = sax_slice_indices(series.slices, series.image_orientation, positions)  # base to apex
        pixels = read_series_pixels(session, series.id, order)
    else:
        pixels = read_series_pixels(session, series.id, [series.slices // 2])
    # NOTE: an LGE series with several phases (for example several inversion times) is read at its first phase.
    return still_segment(pixels.array[:, 0])


def build_study_video(session: Session, study_pk: int, frame_count: int = 64) -> StudyVideo:
    """Build the CMR-CLIP input of catalog study ``study_pk`` from its cine and LGE series.

    Raises:
        StudyInputError: the study has no complete cine series in a short-
            or long-axis view, so nothing real would reach the model.
        indexer.pixels.PixelDataError: a chosen series cannot be decoded.
    """
    chosen = select_segment_series(session, study_pk)
    if "cine_sax" not in chosen and "cine_lax" not in chosen:
        raise StudyInputError(f"study {study_pk} has no complete short- or long-axis cine series")

    parts: dict[str, np.ndarray | None] = {name: None for name in SEGMENTS}
    for name, series in chosen.items():
        parts[name] = read_segment(session, name, series)
    video = assemble_video(parts, frame_count)

    lge_slices = chosen["lge_sax"].slices if "lge_sax" in chosen else None
    if lge_slices is not None and not 10 <= lge_slices <= 15:
        logger.info("study %d: LGE short-axis stack has %d slices, outside the trained 10..15", study_pk, lge_slices)
    filled = [name for name, status in video.segments.items() if status == FILLED]
    logger.debug("study %d: filled segments %s", study_pk, ", ".join(filled) or "none")
    return StudyVideo(
        frames=video.frames,
        segments=video.segments,
        series_pks={name: series.id for name, series in chosen.items()},
        frame_segments=video.frame_segments,
        source_length=video.source_length,
    )


def _even_positions(count: int) -> Sequence[float]:
    if count == 1:
        return [0.0]
    return [index / (count - 1) for index in range(count)]
