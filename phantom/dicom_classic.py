"""MR Image Storage: one single-frame file per slice and phase."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from phantom.acquisition import series_description
from phantom.dicom_common import MR_IMAGE_STORAGE, StudyIdentity, file_meta, format_ds, patient_study_modules, set_pixel_data, window
from phantom.dicom_encoding import encode_elements, write_part10
from phantom.series import RenderedSeries
from phantom.study import StudyPlan
from phantom.uids import derive_uid


@dataclass(frozen=True)
class SeriesIds:
    """Number, UID and folder of one series within its study."""

    number: int
    uid: str
    folder: Path
    file_pattern: str  # str.format pattern taking the InstanceNumber


def mr_series_module(plan: StudyPlan, rendered: RenderedSeries, ids: SeriesIds) -> Dataset:
    """General Series and MR Image attributes that all frames of a series share."""
    acquisition = plan.acquisition
    style = acquisition.style
    layout = rendered.layout
    lge = layout.kind == "lge"
    ds = Dataset()
    ds.Modality = "MR"
    ds.SeriesInstanceUID = ids.uid
    ds.SeriesNumber = ids.number
    ds.SeriesDescription = series_description(acquisition, layout.view, layout.kind, layout.stack_position)
    ds.ProtocolName = ds.SeriesDescription or f"{layout.kind}_{layout.view}"
    when = acquisition.study_datetime
    ds.SeriesDate = when.strftime("%Y%m%d")
    ds.SeriesTime = when.strftime("%H%M%S")
    scanning, variant = style.lge_scanning_sequence if lge else style.cine_scanning_sequence
    ds.ScanningSequence = scanning.split("\\")
    ds.SequenceVariant = variant.split("\\")
    ds.ScanOptions = ["IR", "CG"] if lge else ["CG"]
    ds.MRAcquisitionType = "2D"
    template = style.lge_sequence_name if lge else style.cine_sequence_name
    ds.SequenceName = template.format(phases=acquisition.phases)
    ds.SliceThickness = format_ds(acquisition.slice_thickness_mm)
    if layout.view == "sax":
        ds.SpacingBetweenSlices = format_ds(plan.sax.spacing_mm)
    ds.RepetitionTime = format_ds(acquisition.repetition_time_ms * (2.0 if lge else 1.0))
    ds.EchoTime = format_ds(acquisition.echo_time_ms * (2.0 if lge else 1.0))
    ds.FlipAngle = format_ds(round(acquisition.flip_angle_deg * (0.35 if lge else 1.0)))
    if lge:
        ds.InversionTime = format_ds(acquisition.inversion_time_ms)
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = format_ds(round(42.577478 * acquisition.field_strength_t, 6))
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = format_ds(acquisition.field_strength_t)
    ds.HeartRate = str(int(round(acquisition.heart_rate_bpm)))
    ds.NominalInterval = str(int(round(acquisition.rr_interval_ms)))
    ds.CardiacNumberOfImages = len(layout.phase_fractions)
    ds.TriggerWindow = "0"
    ds.ReceiveCoilName = "Body18" if style.manufacturer.startswith("SIEMENS") else "Cardiac"
    ds.AcquisitionMatrix = [0, acquisition.columns, acquisition.rows, 0]
    ds.InPlanePhaseEncodingDirection = "COL"
    ds.PatientPosition = acquisition.patient_position
    ds.ImageType = list(style.lge_image_type if lge else style.cine_image_type)
    ds.PixelSpacing = [format_ds(acquisition.pixel_spacing_mm), format_ds(acquisition.pixel_spacing_mm)]
    ds.AcquisitionNumber = 1
    ds.WindowCenter, ds.WindowWidth = window(rendered.pixels)
    return ds


def trigger_offset_ms(plan: StudyPlan, ids: SeriesIds, slice_index: int) -> float:
    """Per-slice TriggerTime offset of 0-1.5 ms, as when each slice has its own breath-hold.

    Derived from a hash, not a random stream, so it changes no other value.
    """
    digest = hashlib.sha256(f"{plan.seed}/{plan.index}/{ids.number}/{slice_index}".encode()).digest()
    return 1.5 * int.from_bytes(digest[:4], "big") / 2**32


def write_classic_series(plan: StudyPlan, identity: StudyIdentity, rendered: RenderedSeries, ids: SeriesIds, compressed: bool) -> list[Path]:
    """Write one file per (slice, phase), InstanceNumber running slice by slice."""
    shared = patient_study_modules(plan, identity)
    shared.update(mr_series_module(plan, rendered, ids))
    shared.SOPClassUID = MR_IMAGE_STORAGE
    shared.ContentDate = shared.SeriesDate
    shared.ContentTime = shared.SeriesTime
    shared_chunks = encode_elements(shared)
    layout = rendered.layout
    rr = plan.acquisition.rr_interval_ms
    ids.folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for slice_index, plane in enumerate(layout.planes):
        geometry = Dataset()
        geometry.ImagePositionPatient = [format_ds(round(float(v), 4)) for v in plane.position]
        geometry.ImageOrientationPatient = [format_ds(round(float(v), 6)) for v in (*plane.row_direction, *plane.column_direction)]
        geometry.SliceLocation = format_ds(round(float(plane.position @ plane.normal), 4))
        geometry_chunks = encode_elements(geometry)
        for phase_index, fraction in enumerate(layout.phase_fractions):
            instance = slice_index * len(layout.phase_fractions) + phase_index + 1
            sop_uid = derive_uid(plan.seed, plan.index, "series", ids.number, "instance", instance)
            frame = Dataset()
            frame.SOPInstanceUID = sop_uid
            frame.InstanceNumber = instance
            frame.TriggerTime = format_ds(round(fraction * rr + trigger_offset_ms(plan, ids, slice_index), 2))
            set_pixel_data(frame, [rendered.pixels[slice_index, phase_index]], compressed)
            path = ids.folder / ids.file_pattern.format(instance)
            write_part10(path, file_meta(MR_IMAGE_STORAGE, sop_uid, compressed), shared_chunks, geometry_chunks, encode_elements(frame))
            paths.append(path)
    return paths


def pixel_count(rendered: RenderedSeries) -> int:
    """Number of stored pixels in a series."""
    return int(np.prod(rendered.pixels.shape))
