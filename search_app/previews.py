"""Looping cine previews: one animated WebP per series, rendered at index time.

A preview shows one slice of a series (the middle slice, which for a
short-axis stack is mid-ventricular) through all its phases. Grey levels are
windowed from percentiles of that slice's own pixels over every phase, and
each frame lasts (cardiac cycle ÷ phases), so the loop plays in real time.
The cycle length comes from the RR interval, else the heart rate, else the
TriggerTime span, else 1 s. Files are cached under ``Settings.preview_dir``
with a name keyed by the series and the render settings, and the web app only
serves them: a results page never decodes DICOM.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from sqlalchemy.orm import Session

from cmr_search.settings import Settings
from indexer.catalog.models import Series
from indexer.pixels import read_series_pixels

logger = logging.getLogger(__name__)

# Browsers treat frame durations of 10 ms or less as 100 ms, so no frame is shorter than this.
MIN_FRAME_MS = 20
DEFAULT_CYCLE_MS = 1000.0


class SeriesKey(Protocol):
    """The Series attributes a preview's cache key reads: a Series row or a Core row of :data:`KEY_COLUMNS`."""

    id: int
    group_key: str
    series_instance_uids: list[Any]
    slices: int
    phases: int
    rows: int | None
    columns: int | None
    pixel_spacing_mm: list[Any] | None
    rr_interval_ms: float | None
    heart_rate_bpm: float | None
    temporal_resolution_ms: float | None


# Columns to select when only the cache key of a preview is needed.
KEY_COLUMNS = (
    Series.id,
    Series.group_key,
    Series.series_instance_uids,
    Series.slices,
    Series.phases,
    Series.rows,
    Series.columns,
    Series.pixel_spacing_mm,
    Series.rr_interval_ms,
    Series.heart_rate_bpm,
    Series.temporal_resolution_ms,
)


@dataclass(frozen=True)
class PreviewSettings:
    """Render settings of the previews; changing any field gives new cache keys.

    ``max_size_px`` bounds the longer side after correcting for non-square
    PixelSpacing; smaller images are not enlarged. Percentiles are in percent.
    ``quality`` is the lossy WebP quality (0–100).
    """

    max_size_px: int = 192
    low_percentile: float = 1.0
    high_percentile: float = 99.5
    quality: int = 80
    version: int = 1

    def key(self) -> str:
        """Return a short hash of every field."""
        return _settings_key(self)


DEFAULT_SETTINGS = PreviewSettings()


def preview_path(settings: Settings, series: SeriesKey, preview_settings: PreviewSettings | None = None) -> Path:
    """Return where the preview of ``series`` is cached.

    The name is ``<series pk>-<key>.webp``. The key hashes the render settings
    and the series' grid and geometry as catalogued, so a series that a rescan
    reassembled differently gets a new file.
    """
    signature = (
        (preview_settings or DEFAULT_SETTINGS).key(),
        series.id,
        series.group_key,
        tuple(series.series_instance_uids or ()),
        (series.slices, series.phases, series.rows, series.columns),
        tuple(series.pixel_spacing_mm or ()),
        (series.rr_interval_ms, series.heart_rate_bpm, series.temporal_resolution_ms),
    )
    return settings.preview_dir / f"{series.id}-{_signature_key(signature)}.webp"


def preview_url(series_pk: int) -> str:
    """Return the app URL that serves the preview of ``series_pk``."""
    return f"/previews/{series_pk}.webp"


def preview_slice(series: Series) -> int:
    """Return the catalog slice index a preview shows: the middle slice."""
    return series.slices // 2


def cycle_length_ms(series: Series, trigger_times_ms: np.ndarray | None = None) -> float:
    """Return the cardiac cycle length in ms that the loop of ``series`` lasts.

    Uses the RR interval, else 60000 / heart rate, else the TriggerTime span
    of one slice extended by one phase step, else 1000 ms.
    """
    if series.rr_interval_ms and series.rr_interval_ms > 0:
        return float(series.rr_interval_ms)
    if series.heart_rate_bpm and series.heart_rate_bpm > 0:
        return 60_000.0 / float(series.heart_rate_bpm)
    if trigger_times_ms is not None and series.phases > 1:
        times = np.asarray(trigger_times_ms, dtype=np.float64).reshape(-1, series.phases)[0]
        if np.all(np.isfinite(times)) and times[-1] > times[0]:
            step = (times[-1] - times[0]) / (series.phases - 1)
            return float(times[-1] - times[0] + step)
    return DEFAULT_CYCLE_MS


def frame_durations_ms(cycle_ms: float, phases: int) -> list[int]:
    """Split ``cycle_ms`` into ``phases`` whole-millisecond durations that add up to the cycle.

    Each duration is at least :data:`MIN_FRAME_MS`, so very fast acquisitions
    play slightly slower than real time.
    """
    if phases <= 1:
        return [max(int(round(cycle_ms)), MIN_FRAME_MS)]
    boundaries = [round(cycle_ms * step / phases) for step in range(phases + 1)]
    return [max(end - start, MIN_FRAME_MS) for start, end in zip(boundaries, boundaries[1:])]


def window_to_uint8(frames: np.ndarray, low_percentile: float, high_percentile: float) -> np.ndarray:
    """Map ``frames`` to 0–255, clipping at the given percentiles of all their pixels."""
    low, high = np.percentile(frames, [low_percentile, high_percentile])
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return np.zeros(frames.shape, dtype=np.uint8)
    scaled = (frames - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


def display_size(rows: int, columns: int, spacing_mm: tuple[float, float] | None, max_size_px: int) -> tuple[int, int]:
    """Return (width, height) in pixels with square display pixels and the longer side ≤ ``max_size_px``.

    ``spacing_mm`` is PixelSpacing: (row spacing, column spacing) in mm.
    """
    height_mm, width_mm = float(rows), float(columns)
    if spacing_mm and spacing_mm[0] > 0 and spacing_mm[1] > 0:
        height_mm, width_mm = rows * spacing_mm[0], columns * spacing_mm[1]
    native_longest = max(rows, columns)
    scale = min(max_size_px, native_longest) / max(height_mm, width_mm)
    return max(1, round(width_mm * scale)), max(1, round(height_mm * scale))


def render_preview(session: Session, settings: Settings, series: Series, preview_settings: PreviewSettings | None = None) -> Path:
    """Render the preview of ``series`` if it is not cached, and return its path.

    Raises:
        indexer.pixels.PixelDataError: the slice cannot be decoded.
    """
    preview_settings = preview_settings or PreviewSettings()
    target = preview_path(settings, series, preview_settings)
    if target.exists():
        return target

    pixels = read_series_pixels(session, series.id, [preview_slice(series)])
    frames = window_to_uint8(pixels.array[0], preview_settings.low_percentile, preview_settings.high_percentile)
    size = display_size(frames.shape[1], frames.shape[2], pixels.pixel_spacing_mm, preview_settings.max_size_px)
    images = [Image.fromarray(frame, mode="L").resize(size, Image.Resampling.LANCZOS) for frame in frames]
    durations = frame_durations_ms(cycle_length_ms(series, pixels.trigger_times_ms), len(images))

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        images[0].save(
            temporary,
            format="WEBP",
            save_all=len(images) > 1,
            append_images=images[1:],
            duration=durations if len(images) > 1 else durations[0],
            loop=0,
            quality=preview_settings.quality,
            method=4,
        )
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    _remove_stale(target)
    return target


def _remove_stale(current: Path) -> None:
    """Delete older previews of the same series (other keys)."""
    series_prefix = current.name.split("-", 1)[0]
    for old in current.parent.glob(f"{series_prefix}-*.webp"):
        if old != current:
            old.unlink(missing_ok=True)


@functools.lru_cache(maxsize=65_536)
def _signature_key(signature: tuple[Any, ...]) -> str:
    # Result pages ask for the same previews again and again; hashing once per series is enough.
    return _digest(signature)


@functools.lru_cache(maxsize=16)
def _settings_key(preview_settings: PreviewSettings) -> str:
    return _digest(dataclasses.asdict(preview_settings))


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
