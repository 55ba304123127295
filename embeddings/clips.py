"""Clips: from a catalogued cine series to the tensor the video tower reads.

One clip is a float32 array of shape (slices, frames, size, size) in [0, 1]:

1. pick the slices (basal, mid and apical for a short-axis stack, the single
   slice of a long-axis view),
2. resample ``frames`` frames evenly over one cardiac cycle,
3. crop a square centred on the heart, found from the temporal standard
   deviation of the pixels (the heart is what moves in a breath-hold cine),
4. resize it to ``size`` × ``size`` pixels at a fixed physical field of view
   when PixelSpacing is known,
5. scale intensities by per-series percentiles.

Training, indexing and the CMR-CLIP input builder all call these functions,
so a clip looks the same wherever it is made.

A late gadolinium enhancement (LGE) short-axis stack has one phase and so no
motion to find the heart by. Its crop is centred on the point that the
study's cine SAX stack locates, carried over through ImagePositionPatient,
ImageOrientationPatient and PixelSpacing. Its one image is repeated over the
``frames`` axis so that it fits the same tensor. :class:`ClipCache` keeps clips
as float16 files under ``Settings.clip_cache_dir`` so that training epochs and
re-indexing do not decode DICOM again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import center_of_mass, gaussian_filter, label
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.catalog.models import Frame, Instance, ScannedFile, Series
from indexer.pixels import PixelDataError, read_series_pixels

logger = logging.getLogger(__name__)

# Catalog views of cine series that the model reads, in the order clips of a study are returned.
CLIP_VIEWS: tuple[str, ...] = ("sax", "2ch", "3ch", "4ch")

# One view type per clip slice. The video tower learns an embedding for each.
CINE_VIEW_TYPES: tuple[str, ...] = ("sax_basal", "sax_mid", "sax_apical", "2ch", "3ch", "4ch")
LGE_VIEW_TYPES: tuple[str, ...] = ("lge_basal", "lge_mid", "lge_apical")
VIEW_TYPES: tuple[str, ...] = CINE_VIEW_TYPES + LGE_VIEW_TYPES

# Unit vector from the cardiac base towards the apex in the DICOM patient
# coordinate system (LPS: +x patient left, +y posterior, +z head). The apex
# points left, anterior and inferior, so this only has to be right in sign
# along the slice normal of a short-axis stack, which it is for the usual
# supine, head-first positions.
APEX_DIRECTION_LPS = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)


@dataclass(frozen=True)
class ClipSettings:
    """Parameters of clip making. Any change here gives new cache keys."""

    frames: int = 16
    size: int = 64  # output height and width in pixels
    fov_mm: float = 180.0  # side of the square crop in millimetres when PixelSpacing is known
    fallback_fov_fraction: float = 0.6  # crop side as a fraction of the shorter image side without PixelSpacing
    sax_positions: tuple[float, ...] = (0.2, 0.5, 0.8)  # basal, mid, apical: fractions of the stack from the base
    low_percentile: float = 1.0
    high_percentile: float = 99.5
    centre_sigma_mm: float = 12.0  # Gaussian smoothing of the motion map before its maximum is taken

    def key(self) -> str:
        """Return a short hash of these settings, used in cache file names."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def view_types_for(self, kind: str, view: str) -> tuple[str, ...]:
        """Return the view type of each slice of a clip of a catalog series of ``kind`` and ``view``."""
        if view == "sax" and kind in ("cine", "lge"):
            if len(self.sax_positions) != 3:
                raise ValueError(f"sax_positions must give 3 slices (basal, mid, apical), got {self.sax_positions}")
            return CINE_VIEW_TYPES[:3] if kind == "cine" else LGE_VIEW_TYPES
        if kind == "cine" and view == "lvot":
            return ("3ch",)
        if kind == "cine" and view in CLIP_VIEWS:
            return (view,)
        raise ValueError(f"a {kind} series of view {view!r} has no clip; clips exist for cine {CLIP_VIEWS} and LGE sax")


@dataclass(frozen=True)
class SeriesClip:
    """The clip of one series: ``array`` is (slices, frames, size, size) float32 in [0, 1]."""

    series_pk: int
    kind: str  # Series.kind: "cine" or "lge"
    view: str
    view_types: tuple[str, ...]
    array: np.ndarray


# ---------------------------------------------------------------------------
# Array-level steps. Each takes and returns plain numpy arrays.


def resample_cycle(frames: np.ndarray, count: int, trigger_times_ms: np.ndarray | None = None) -> np.ndarray:
    """Resample a cine over one cardiac cycle to ``count`` evenly spaced frames.

    ``frames`` has the phase axis first, (phases, ...). The phases are taken to
    cover one RR interval, as in retrospectively gated cine. The cycle wraps
    around, so the frame after the last phase is the first. With
    ``trigger_times_ms`` (TriggerTime per phase, increasing) the samples are
    spaced evenly in time, and the cycle length is the last TriggerTime plus
    the mean step. Without them the phases are taken as evenly spaced.
    Interpolation is linear between neighbouring phases.
    """
    phases = frames.shape[0]
    if phases == 0:
        raise ValueError("cannot resample a cine with no phases")
    if phases == 1:
        return np.repeat(frames, count, axis=0)

    positions = _phase_positions(phases, count, trigger_times_ms)
    lower = np.floor(positions).astype(int) % phases
    upper = (lower + 1) % phases
    weight = (positions - np.floor(positions)).reshape((count,) + (1,) * (frames.ndim - 1))
    return ((1.0 - weight) * frames[lower] + weight * frames[upper]).astype(np.float32)


def _phase_positions(phases: int, count: int, trigger_times_ms: np.ndarray | None) -> np.ndarray:
    """Return fractional phase indices of ``count`` samples evenly spaced over one cycle."""
    even = np.arange(count) * phases / count
    if trigger_times_ms is None:
        return even
    times = np.asarray(trigger_times_ms, dtype=np.float64)
    steps = np.diff(times)
    if times.shape != (phases,) or not np.all(np.isfinite(times)) or np.any(steps <= 0):
        return even
    cycle_ms = times[-1] + steps.mean() - times[0]
    sample_times = times[0] + np.arange(count) * cycle_ms / count
    # Fractional index of each sample time, with the wrap-around step after the last phase.
    knots = np.append(times, times[0] + cycle_ms)
    return np.interp(sample_times, knots, np.arange(phases + 1))


def locate_heart(cine: np.ndarray, pixel_spacing_mm: tuple[float, float] | None, sigma_mm: float = 12.0) -> tuple[int, int]:
    """Return the (row, column) of the heart centre from the motion in a cine.

    ``cine`` is (phases, Rows, Columns) or (slices, phases, Rows, Columns). The
    temporal standard deviation of each pixel is high where the ventricles
    contract and low in static tissue and air. It is smoothed with a Gaussian
    of ``sigma_mm`` (taking 1.5 mm pixels when PixelSpacing is unknown). The
    centre is the motion-weighted centroid of the region around the maximum
    where the smoothed map is at least half its maximum, which lands nearer
    the middle of both ventricles than the maximum alone.
    """
    if cine.ndim == 3:
        cine = cine[np.newaxis]
    if cine.ndim != 4:
        raise ValueError(f"expected (phases, rows, cols) or (slices, phases, rows, cols), got shape {cine.shape}")
    motion = cine.std(axis=1).sum(axis=0)
    spacing = pixel_spacing_mm or (1.5, 1.5)
    sigma = (sigma_mm / spacing[0], sigma_mm / spacing[1])
    smoothed = gaussian_filter(motion.astype(np.float64), sigma=sigma, mode="constant")
    if not smoothed.max() > 0:
        # No motion at all (one phase, or a blank series): take the image centre.
        return cine.shape[-2] // 2, cine.shape[-1] // 2
    peak = np.unravel_index(int(np.argmax(smoothed)), smoothed.shape)
    regions, _ = label(smoothed >= 0.5 * smoothed[peak])
    weights = np.where(regions == regions[peak], smoothed, 0.0)
    row, column = center_of_mass(weights)
    return int(round(row)), int(round(column))


def crop_box_size(
    image_shape: tuple[int, int], pixel_spacing_mm: tuple[float, float] | None, settings: ClipSettings
) -> tuple[int, int]:
    """Return the crop height and width in pixels for the settings' field of view.

    With PixelSpacing (row spacing, column spacing in mm) the crop covers
    ``fov_mm`` × ``fov_mm``. Without it the crop is a square of
    ``fallback_fov_fraction`` times the shorter image side.
    """
    if pixel_spacing_mm is not None and all(s > 0 for s in pixel_spacing_mm):
        return (
            max(1, round(settings.fov_mm / pixel_spacing_mm[0])),
            max(1, round(settings.fov_mm / pixel_spacing_mm[1])),
        )
    side = max(1, round(settings.fallback_fov_fraction * min(image_shape)))
    return side, side


def crop_centred(images: np.ndarray, centre: tuple[int, int], box: tuple[int, int], fill: float = 0.0) -> np.ndarray:
    """Crop a ``box`` (height, width) around ``centre`` from the last two axes.

    Parts of the box outside the image are filled with ``fill``, so the crop
    always has the requested size and the heart stays in its middle.
    """
    height, width = images.shape[-2:]
    top = centre[0] - box[0] // 2
    left = centre[1] - box[1] // 2
    out = np.full(images.shape[:-2] + box, fill, dtype=images.dtype)

    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + box[0], height), min(left + box[1], width)
    if src_bottom > src_top and src_right > src_left:
        out[..., src_top - top : src_bottom - top, src_left - left : src_right - left] = images[
            ..., src_top:src_bottom, src_left:src_right
        ]
    return out


def resize_frames(images: np.ndarray, size: int) -> np.ndarray:
    """Resize the last two axes to ``size`` × ``size`` with antialiased bilinear interpolation."""
    leading = images.shape[:-2]
    flat = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, 1, *images.shape[-2:])
    resized = F.interpolate(flat, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.reshape(*leading, size, size).numpy()


def normalise_intensity(images: np.ndarray, low_percentile: float = 1.0, high_percentile: float = 99.5) -> np.ndarray:
    """Map the ``low_percentile``..``high_percentile`` range of ``images`` to [0, 1] and clip.

    One pair of percentiles is taken over the whole array, so the relative
    brightness of slices and phases of a series is kept.
    """
    low, high = np.percentile(images, [low_percentile, high_percentile])
    if not high > low:
        return np.zeros_like(images, dtype=np.float32)
    return np.clip((images - low) / (high - low), 0.0, 1.0).astype(np.float32)


def make_clip(
    stack: np.ndarray,
    pixel_spacing_mm: tuple[float, float] | None,
    settings: ClipSettings,
    trigger_times_ms: np.ndarray | None = None,
    centre: tuple[int, int] | None = None,
) -> np.ndarray:
    """Turn decoded frames (slices, phases, Rows, Columns) into a clip (slices, frames, size, size).

    ``trigger_times_ms`` is TriggerTime per (slice, phase). Every slice is
    resampled with its own trigger times, because each slice of a cine stack
    is often acquired in its own breath-hold. ``centre`` (row, column)
    overrides the heart centre found from motion, for single-phase series.
    """
    if stack.ndim != 4:
        raise ValueError(f"expected (slices, phases, rows, cols), got shape {stack.shape}")
    resampled = np.stack(
        [
            resample_cycle(stack[i], settings.frames, None if trigger_times_ms is None else trigger_times_ms[i])
            for i in range(stack.shape[0])
        ]
    )
    if centre is None:
        centre = locate_heart(resampled, pixel_spacing_mm, settings.centre_sigma_mm)
    box = crop_box_size(stack.shape[-2:], pixel_spacing_mm, settings)
    cropped = crop_centred(resampled, centre, box, fill=float(np.min(stack)))
    normalised = normalise_intensity(cropped, settings.low_percentile, settings.high_percentile)
    # Antialiased bilinear resizing can overshoot [0, 1] by rounding.
    return np.clip(resize_frames(normalised, settings.size), 0.0, 1.0)


# ---------------------------------------------------------------------------
# Catalog-level functions.


def sax_slice_indices(
    slice_count: int, image_orientation: Sequence[float] | None, positions: Sequence[float]
) -> list[int]:
    """Return catalog slice indices at ``positions`` (fractions from base to apex) of a SAX stack.

    Catalog slice 0 is the first position along the slice normal (row cosine
    × column cosine of ImageOrientationPatient). Whether that end is basal or
    apical follows from the sign of the normal along the base-to-apex
    direction. Without ImageOrientationPatient, slice 0 is taken as basal.
    """
    if slice_count < 1:
        raise ValueError("a SAX stack needs at least one slice")
    apex_last = True
    if image_orientation is not None and len(image_orientation) == 6:
        row_cosine = np.asarray(image_orientation[:3], dtype=np.float64)
        column_cosine = np.asarray(image_orientation[3:], dtype=np.float64)
        normal = np.cross(row_cosine, column_cosine)
        apex_last = float(normal @ APEX_DIRECTION_LPS) >= 0.0
    indices = [min(slice_count - 1, int(round(p * (slice_count - 1)))) for p in positions]
    return indices if apex_last else [slice_count - 1 - i for i in indices]


def series_slice_indices(series: Series, settings: ClipSettings) -> list[int]:
    """Return the catalog slice indices that a clip of ``series`` reads."""
    if series.view == "sax":
        return sax_slice_indices(series.slices, series.image_orientation, settings.sax_positions)
    return [series.slices // 2]


def build_series_clip(session: Session, series_pk: int, settings: ClipSettings) -> SeriesClip:
    """Decode catalog series ``series_pk`` and make its clip.

    An LGE series is centred on the heart found in the study's cine SAX
    stack (see :func:`lge_centre`).

    Raises:
        PixelDataError: the series is missing, has no clip view, or its pixels
            cannot be decoded.
    """
    series = session.get(Series, series_pk)
    if series is None:
        raise PixelDataError(f"series {series_pk} is not in the catalog")
    try:
        view_types = settings.view_types_for(series.kind, series.view)
    except ValueError as error:
        raise PixelDataError(f"series {series_pk}: {error}") from error
    slice_indices = series_slice_indices(series, settings)
    pixels = read_series_pixels(session, series_pk, slice_indices)
    centre = lge_centre(session, series, slice_indices[len(slice_indices) // 2], settings) if series.kind == "lge" else None
    array = make_clip(pixels.array, pixels.pixel_spacing_mm, settings, pixels.trigger_times_ms, centre)
    return SeriesClip(series_pk, series.kind, series.view, view_types, array)


def heart_centre_mm(session: Session, series: Series, settings: ClipSettings) -> np.ndarray | None:
    """Return the heart centre of a cine series as a point in patient coordinates (mm), or None.

    The centre is found from motion on the slices a clip reads and placed on
    the mid slice. None when the series lacks ImagePositionPatient,
    ImageOrientationPatient or PixelSpacing.
    """
    slice_indices = series_slice_indices(series, settings)
    pixels = read_series_pixels(session, series.id, slice_indices)
    row, column = locate_heart(pixels.array, pixels.pixel_spacing_mm, settings.centre_sigma_mm)
    plane = _slice_plane(session, series, slice_indices[len(slice_indices) // 2])
    if plane is None:
        return None
    origin, row_cosine, column_cosine, (row_spacing, column_spacing) = plane
    # PS3.3 C.7.6.2.1.1: column index steps along the row cosine by the column spacing, and vice versa.
    return origin + column * column_spacing * row_cosine + row * row_spacing * column_cosine


def lge_centre(session: Session, series: Series, slice_index: int, settings: ClipSettings) -> tuple[int, int] | None:
    """Return the (row, column) of the cine-located heart centre in slice ``slice_index`` of an LGE series.

    None when the study has no cine SAX or either series lacks the geometry
    tags, and the crop is then centred on the image.
    """
    cine = session.scalars(
        select(Series)
        .where(Series.study_pk == series.study_pk, Series.kind == "cine", Series.view == "sax", Series.complete.is_(True))
        .order_by(Series.slices.desc(), Series.id)
    ).first()
    plane = _slice_plane(session, series, slice_index)
    if cine is None or plane is None:
        return None
    point = heart_centre_mm(session, cine, settings)
    if point is None:
        return None
    origin, row_cosine, column_cosine, (row_spacing, column_spacing) = plane
    offset = point - origin
    return int(round(offset @ column_cosine / row_spacing)), int(round(offset @ row_cosine / column_spacing))


def _slice_plane(
    session: Session, series: Series, slice_index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]] | None:
    """Return ImagePositionPatient, the row and column cosines and PixelSpacing of one slice, or None."""
    if not series.image_orientation or len(series.image_orientation) != 6 or not series.pixel_spacing_mm:
        return None
    position = session.scalars(
        select(Frame.image_position).where(Frame.series_pk == series.id, Frame.slice_index == slice_index).limit(1)
    ).first()
    if not position:
        return None
    orientation = np.asarray(series.image_orientation, dtype=np.float64)
    spacing = (float(series.pixel_spacing_mm[0]), float(series.pixel_spacing_mm[1]))
    return np.asarray(position, dtype=np.float64), orientation[:3], orientation[3:], spacing


def select_study_series(session: Session, study_pk: int) -> list[Series]:
    """Return the series a study's clips come from, in :data:`CLIP_VIEWS` order and then the LGE SAX stack.

    At most one complete cine series per view and one complete LGE SAX
    series. An LVOT cine replaces a missing 3CH cine. Where there are several, the one with the most slices and then
    the most phases wins (the lowest id on a tie).
    """
    candidates = session.scalars(
        select(Series).where(Series.study_pk == study_pk, Series.complete.is_(True), Series.kind.in_(("cine", "lge")))
    ).all()
    best: dict[tuple[str, str], Series] = {}
    for series in sorted(candidates, key=lambda s: (-s.slices, -s.phases, s.id)):
        if (series.kind == "cine" and series.view in CLIP_VIEWS) or (series.kind == "lge" and series.view == "sax"):
            best.setdefault((series.kind, series.view), series)
    # Many sites call the three-chamber view the LVOT view, so an LVOT cine fills a missing 3CH slot.
    for series in sorted(candidates, key=lambda s: (-s.phases, s.id)):
        if series.kind == "cine" and series.view == "lvot":
            best.setdefault(("cine", "3ch"), series)
    keys = [("cine", view) for view in CLIP_VIEWS] + [("lge", "sax")]
    return [best[key] for key in keys if key in best]


class ClipCache:
    """Float16 clips on disk, one ``.npz`` file per series and clip settings.

    The file name contains the series id, the settings key and a fingerprint of
    the series' frames (instance ids, frame numbers, file sizes and
    modification times), so a rescanned or changed series is decoded again.
    """

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)

    def path_for(self, session: Session, series_pk: int, settings: ClipSettings) -> Path:
        """Return the cache file of series ``series_pk`` under ``settings``.

        An LGE clip also depends on the study's cine series (its crop
        centre), so their frames are part of its fingerprint.
        """
        fingerprint = frames_fingerprint(session, series_pk)
        series = session.get(Series, series_pk)
        if series is not None and series.kind == "lge":
            cine_pks = session.scalars(
                select(Series.id).where(Series.study_pk == series.study_pk, Series.kind == "cine").order_by(Series.id)
            ).all()
            parts = [fingerprint] + [frames_fingerprint(session, pk) for pk in cine_pks]
            fingerprint = hashlib.sha256(":".join(parts).encode()).hexdigest()[:12]
        return self.cache_dir / f"series-{series_pk}-{settings.key()}-{fingerprint}.npz"

    def load_or_build(self, session: Session, series_pk: int, settings: ClipSettings) -> SeriesClip:
        """Return the cached clip of ``series_pk``, decoding and storing it first on a miss."""
        path = self.path_for(session, series_pk, settings)
        if path.exists():
            try:
                return _read_clip_file(path, series_pk)
            except (OSError, ValueError, KeyError) as error:
                logger.warning("clip cache file of series %d is unreadable, rebuilding it: %s", series_pk, error)
        clip = build_series_clip(session, series_pk, settings)
        _write_clip_file(path, clip)
        return clip


def frames_fingerprint(session: Session, series_pk: int) -> str:
    """Return a short hash of the frame grid of a series and the files behind it."""
    rows = session.execute(
        select(
            Frame.slice_index,
            Frame.phase_index,
            Frame.instance_pk,
            Frame.frame_number,
            ScannedFile.size_bytes,
            ScannedFile.mtime_ns,
        )
        .join(Instance, Frame.instance_pk == Instance.id)
        .join(ScannedFile, Instance.file_pk == ScannedFile.id)
        .where(Frame.series_pk == series_pk)
        .order_by(Frame.slice_index, Frame.phase_index)
    ).all()
    digest = hashlib.sha256(json.dumps([list(row) for row in rows]).encode())
    return digest.hexdigest()[:12]


def _write_clip_file(path: Path, clip: SeriesClip) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name and rename, so a reader never sees half a file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(
                stream,
                array=clip.array.astype(np.float16),
                kind=clip.kind,
                view=clip.view,
                view_types=np.array(clip.view_types),
            )
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_clip_file(path: Path, series_pk: int) -> SeriesClip:
    with np.load(path) as data:
        return SeriesClip(
            series_pk=series_pk,
            kind=str(data["kind"]),
            view=str(data["view"]),
            view_types=tuple(str(v) for v in data["view_types"]),
            array=data["array"].astype(np.float32),
        )


def build_study_clips(
    session: Session, study_pk: int, settings: ClipSettings, cache: ClipCache | None = None
) -> list[SeriesClip]:
    """Return the clips of a study's cine views and LGE stack; a series that fails to decode is logged and left out."""
    clips = []
    for series in select_study_series(session, study_pk):
        try:
            if cache is None:
                clips.append(build_series_clip(session, series.id, settings))
            else:
                clips.append(cache.load_or_build(session, series.id, settings))
        except PixelDataError as error:
            logger.warning("study %d: series %d has no clip: %s", study_pk, series.id, error)
    return clips
