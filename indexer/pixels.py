"""Pixel data of a catalogued series, decoded in the catalog's slice × phase order.

This is the only place after the scan that opens DICOM files. Clips, previews
and model inputs all read pixels through :func:`read_series_pixels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.catalog.models import Frame, Instance, ScannedFile, Series
from indexer.errors import record_decode_error
from indexer.headers import quiet_pydicom


class PixelDataError(RuntimeError):
    """Pixel data of a series could not be decoded or is incomplete."""


@dataclass(frozen=True)
class SeriesPixels:
    """Decoded frames of one series.

    ``array`` has shape (slices, phases, Rows, Columns), float32, with
    RescaleSlope and RescaleIntercept applied. ``slice_indices`` are the catalog
    slice indices that were read, in the order of the first axis.
    """

    array: np.ndarray
    slice_indices: list[int]
    pixel_spacing_mm: tuple[float, float] | None
    trigger_times_ms: np.ndarray


def read_series_pixels(session: Session, series_pk: int, slice_indices: Sequence[int] | None = None) -> SeriesPixels:
    """Decode the frames of series ``series_pk``, optionally only some slices.

    A file whose pixel data cannot be decoded also gets a scan_errors row
    with stage ``decode`` (see :func:`indexer.errors.record_decode_error`),
    committed on its own so that it stays when the caller rolls back.

    Raises:
        PixelDataError: a frame of the grid is missing, or a file cannot be
            decoded; the message names the instance's catalog id and the
            TransferSyntaxUID.
    """
    quiet_pydicom()
    series = session.get(Series, series_pk)
    if series is None:
        raise PixelDataError(f"series {series_pk} is not in the catalog")
    wanted = list(range(series.slices)) if slice_indices is None else list(slice_indices)

    rows = session.execute(
        select(Frame, Instance, ScannedFile.path)
        .join(Instance, Frame.instance_pk == Instance.id)
        .join(ScannedFile, Instance.file_pk == ScannedFile.id)
        .where(Frame.series_pk == series_pk, Frame.slice_index.in_(wanted))
    ).all()
    by_position = {(frame.slice_index, frame.phase_index): (frame, instance, path) for frame, instance, path in rows}

    array: np.ndarray | None = None
    trigger_times = np.full((len(wanted), series.phases), np.nan, dtype=np.float32)
    datasets: dict[str, pydicom.Dataset] = {}
    for out_slice, slice_index in enumerate(wanted):
        for phase in range(series.phases):
            entry = by_position.get((slice_index, phase))
            if entry is None:
                raise PixelDataError(f"series {series_pk} has no frame at slice {slice_index}, phase {phase}")
            frame, instance, path = entry
            image = _decode_frame(session, datasets, path, instance, frame.frame_number)
            if array is None:
                array = np.zeros((len(wanted), series.phases, *image.shape), dtype=np.float32)
            if image.shape != array.shape[2:]:
                raise PixelDataError(
                    f"series {series_pk}: instance {instance.id} has {image.shape} pixels, expected {array.shape[2:]}"
                )
            array[out_slice, phase] = image
            if frame.trigger_time_ms is not None:
                trigger_times[out_slice, phase] = frame.trigger_time_ms

    if array is None:
        raise PixelDataError(f"series {series_pk} has no frames")
    spacing = tuple(float(v) for v in series.pixel_spacing_mm) if series.pixel_spacing_mm else None
    return SeriesPixels(array, wanted, spacing, trigger_times)  # type: ignore[arg-type]


def _decode_frame(
    session: Session, cache: dict[str, pydicom.Dataset], path: str, instance: Instance, frame_number: int
) -> np.ndarray:
    dataset = cache.get(path)
    if dataset is None:
        try:
            dataset = pydicom.dcmread(path)
        except (OSError, pydicom.errors.InvalidDicomError) as error:
            raise PixelDataError(f"instance {instance.id}: cannot read file: {error}") from error
        cache.clear()  # keep one multi-frame object in memory, not the whole series
        cache[path] = dataset
    try:
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises several types from its decoder plugins
        reason = (
            f"pixel data with TransferSyntaxUID {dataset.file_meta.get('TransferSyntaxUID', 'unknown')} "
            f"cannot be decoded: {type(error).__name__}: {error}"
        )
        record_decode_error(session, instance.id, reason)
        raise PixelDataError(f"instance {instance.id}: {reason}") from error
    if pixels.ndim == 3:
        pixels = pixels[frame_number - 1]
    slope = float(instance.header.get("RescaleSlope") or 1.0)
    intercept = float(instance.header.get("RescaleIntercept") or 0.0)
    return pixels.astype(np.float32) * slope + intercept
