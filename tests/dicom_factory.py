"""Build small synthetic cardiac MR DICOM files with pydicom for the indexer tests.

The real archive has one layout only, so these builders cover what it lacks.
That is one series per slice, Enhanced MR multi-frame objects, long-axis
views, InstanceNumber running against time, missing SliceLocation, and corrupt
or non-DICOM files. Pixel data can also be JPEG baseline, JPEG-LS, JPEG 2000
or RLE. Images are tiny (16 × 16 by default) and the first pixel encodes
(slice, phase) so tests can check order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    MRImageStorage,
    generate_uid,
)

ENHANCED_MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")

# A double-oblique short-axis orientation (row and column cosines), taken from a real scanner.
SAX_ORIENTATION = (-0.104592, 0.346381, -0.932245, -0.733192, -0.660188, -0.163037)


def orthonormal(orientation: Sequence[float]) -> tuple[float, ...]:
    """Return ``orientation`` with unit, mutually orthogonal row and column cosines."""
    row = np.asarray(orientation[:3], dtype=float)
    row /= np.linalg.norm(row)
    column = np.asarray(orientation[3:], dtype=float)
    column -= row * np.dot(row, column)
    column /= np.linalg.norm(column)
    return tuple(float(v) for v in (*row, *column))


def long_axis_orientation(sax_orientation: Sequence[float] = SAX_ORIENTATION, angle_deg: float = 0.0) -> tuple[float, ...]:
    """Return a plane containing the short-axis normal, rotated by ``angle_deg`` about it."""
    sax = orthonormal(sax_orientation)
    row, column = np.asarray(sax[:3]), np.asarray(sax[3:])
    normal = np.cross(row, column)
    angle = np.radians(angle_deg)
    in_plane = np.cos(angle) * row + np.sin(angle) * column
    return orthonormal((*in_plane, *normal))


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Row cosines × column cosines."""
    return np.cross(orientation[:3], orientation[3:])


def pixel_value(slice_index: int, phase_index: int) -> int:
    """The value every pixel of (slice, phase) holds, so decoded order can be checked."""
    return 100 * (slice_index + 1) + phase_index


@dataclass
class CineSpec:
    """What to write for one synthetic cine (or other multi-phase) acquisition."""

    study_uid: str
    patient_id: str = "TEST0001"
    series_uid: str | None = None
    series_number: int = 10
    description: str = "cine_sax"
    slices: int = 4
    phases: int = 6
    orientation: tuple[float, ...] = SAX_ORIENTATION
    origin: tuple[float, float, float] = (10.0, -20.0, 30.0)
    spacing_mm: float = 8.0
    rows: int = 16
    columns: int = 16
    trigger_step_ms: float = 40.0
    slice_jitter_ms: float = 0.5
    cardiac_number_of_images: int | None = None
    per_slice_series: bool = False
    instance_number_against_time: bool = False
    slice_location: bool = True
    transfer_syntax: UID = ExplicitVRLittleEndian
    texture: bool = False
    skip: Collection[tuple[int, int]] = field(default_factory=set)
    shuffle_files: bool = True
    manufacturer: str = "SIEMENS"
    accession_number: str = "ACC0001"

    def position(self, slice_index: int) -> np.ndarray:
        """ImagePositionPatient of slice ``slice_index``: the origin moved along the normal."""
        return np.asarray(self.origin) + slice_index * self.spacing_mm * slice_normal(orthonormal(self.orientation))

    def trigger_time(self, slice_index: int, phase_index: int) -> float:
        """TriggerTime in ms, with a per-slice offset as separate breath-holds give."""
        return phase_index * self.trigger_step_ms + 10.0 + self.slice_jitter_ms * (slice_index % 3)


def base_dataset(spec: CineSpec, sop_class: UID, series_uid: str, series_number: int) -> Dataset:
    """A dataset with the patient, study, series and equipment attributes filled."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.Modality = "MR"
    ds.PatientID = spec.patient_id
    ds.PatientName = spec.patient_id
    ds.PatientSex = "F"
    ds.PatientAge = "054Y"
    ds.StudyInstanceUID = spec.study_uid
    ds.StudyDate = "20240131"
    ds.StudyTime = "101500"
    ds.AccessionNumber = spec.accession_number
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = spec.description
    ds.Manufacturer = spec.manufacturer
    ds.ManufacturerModelName = "TestScanner"
    ds.MagneticFieldStrength = 3
    ds.InstitutionName = "Test Hospital"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.PixelSpacing = [1.5, 1.5]
    ds.SliceThickness = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.HeartRate = 60
    ds.NominalInterval = 1000
    if spec.cardiac_number_of_images is not None:
        ds.CardiacNumberOfImages = spec.cardiac_number_of_images
    else:
        ds.CardiacNumberOfImages = spec.phases
    return ds


def expected_image(spec: CineSpec, slice_index: int, phase_index: int) -> np.ndarray:
    """The stored pixels of (slice, phase): ``pixel_value`` everywhere, plus a texture when ``spec.texture`` is set.

    The texture, ((7·column + 13·row) mod 32), is 0 at the first pixel, so
    ``pixel_value`` can still be read there. It gives a codec edges to encode.
    """
    image = np.full((spec.rows, spec.columns), pixel_value(slice_index, phase_index), dtype=np.uint16)
    if spec.texture:
        rows, columns = np.indices(image.shape)
        image += ((7 * columns + 13 * rows) % 32).astype(np.uint16)
    return image


def _set_pixels(ds: Dataset, pixels: np.ndarray, transfer_syntax: UID) -> None:
    if transfer_syntax == JPEGBaseline8Bit:
        _set_jpeg_baseline_pixels(ds, pixels)
        return
    ds.PixelData = pixels.tobytes()
    if transfer_syntax != ExplicitVRLittleEndian:
        # pydicom's encoders: pylibjpeg-openjpeg for JPEG 2000, pyjpegls for JPEG-LS, its own for RLE.
        ds.compress(transfer_syntax, pixels)


def _set_jpeg_baseline_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Store ``pixels`` as 8-bit JPEG baseline (ISO 10918-1 process 1), one Pillow-encoded frame each.

    pydicom has no JPEG baseline encoder. At quality 100 every quantisation
    step is 1, so uniform images decode to their exact values and textured
    ones to within a few grey levels.
    """
    if pixels.max() > 255:
        raise ValueError(f"JPEG baseline holds 8-bit samples; pixel value {pixels.max()} does not fit, use fewer slices")
    frames = pixels.reshape(-1, *pixels.shape[-2:]).astype(np.uint8)
    encoded = []
    for frame in frames:
        buffer = BytesIO()
        Image.fromarray(frame, mode="L").save(buffer, format="JPEG", quality=100)
        encoded.append(buffer.getvalue())
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit


def write_cine(folder: Path, spec: CineSpec) -> list[Path]:
    """Write one single-frame MR Image Storage file per (slice, phase); return the paths.

    With ``per_slice_series`` every slice gets its own SeriesInstanceUID and
    SeriesNumber, as some vendors write short-axis stacks. File names are
    random UIDs when ``shuffle_files`` is set, so no test can rely on them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = spec.series_uid or generate_uid()
    paths = []
    for slice_index in range(spec.slices):
        if spec.per_slice_series:
            uid, number = generate_uid(), spec.series_number + slice_index
        else:
            uid, number = series_uid, spec.series_number
        for phase_index in range(spec.phases):
            if (slice_index, phase_index) in spec.skip:
                continue
            ds = base_dataset(spec, MRImageStorage, uid, number)
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ordinal = slice_index * spec.phases + phase_index
            total = spec.slices * spec.phases
            ds.InstanceNumber = (total - ordinal) if spec.instance_number_against_time else ordinal + 1
            ds.ImageOrientationPatient = list(orthonormal(spec.orientation))
            ds.ImagePositionPatient = [round(float(v), 4) for v in spec.position(slice_index)]
            if spec.slice_location:
                ds.SliceLocation = round(float(np.dot(spec.position(slice_index), slice_normal(orthonormal(spec.orientation)))), 4)
            ds.TriggerTime = round(spec.trigger_time(slice_index, phase_index), 3)
            ds.AcquisitionTime = f"1020{slice_index:02d}.000000"
            _set_pixels(ds, expected_image(spec, slice_index, phase_index), spec.transfer_syntax)
            name = f"{generate_uid()}.dcm" if spec.shuffle_files else f"s{slice_index:02d}_p{phase_index:02d}.dcm"
            path = folder / name
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def write_enhanced_cine(path: Path, spec: CineSpec, frame_order: Sequence[tuple[int, int]] | None = None) -> Path:
    """Write the cine as one Enhanced MR Image Storage object; return its path.

    Frames are stored in ``frame_order`` (default: phase-major, the reverse of
    the catalog order) so assembly must use the functional groups, not the
    frame number. Orientation and pixel measures sit in the shared groups;
    position, trigger delay and frame content in the per-frame groups.
    """
    series_uid = spec.series_uid or generate_uid()
    ds = base_dataset(spec, ENHANCED_MR_IMAGE_STORAGE, series_uid, spec.series_number)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = 1
    del ds.PixelSpacing
    del ds.SliceThickness

    order = list(frame_order) if frame_order is not None else [
        (s, p) for p in range(spec.phases) for s in range(spec.slices)
    ]
    order = [cell for cell in order if cell not in spec.skip]
    ds.NumberOfFrames = len(order)

    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = list(orthonormal(spec.orientation))
    measures = Dataset()
    measures.PixelSpacing = [1.5, 1.5]
    measures.SliceThickness = 8
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for slice_index, phase_index in order:
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [round(float(v), 4) for v in spec.position(slice_index)]
        cardiac = Dataset()
        cardiac.NominalCardiacTriggerDelayTime = spec.trigger_time(slice_index, phase_index)
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = slice_index + 1
        content.TemporalPositionIndex = phase_index + 1
        item.PlanePositionSequence = DicomSequence([position])
        item.CardiacSynchronizationSequence = DicomSequence([cardiac])
        item.FrameContentSequence = DicomSequence([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)

    pixels = np.stack([expected_image(spec, s, p) for s, p in order])
    _set_pixels(ds, pixels, spec.transfer_syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_bad_files(folder: Path, study_uid: str) -> dict[str, Path]:
    """Write files the scan must record as errors or non-DICOM, keyed by what is wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = CineSpec(study_uid=study_uid, slices=1, phases=1)
    good = write_cine(folder / "tmp", spec)[0]
    data = good.read_bytes()
    good.unlink()
    (folder / "tmp").rmdir()

    files = {
        "non_dicom_text": folder / "notes.txt",
        "non_dicom_empty": folder / "empty.dcm",
        "truncated_header": folder / "truncated_header.dcm",
        "truncated_pixels": folder / "truncated_pixels.dcm",
        "missing_uid": folder / "missing_uid.dcm",
        "no_pixel_data": folder / "no_pixel_data.dcm",
    }
    files["non_dicom_text"].write_text("Impression: not an image.\n")
    files["non_dicom_empty"].write_bytes(b"")
    files["truncated_header"].write_bytes(data[:300])
    files["truncated_pixels"].write_bytes(data[: len(data) - 100])

    ds = base_dataset(spec, MRImageStorage, generate_uid(), 99)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    del ds.StudyInstanceUID
    ds.PixelData = expected_image(spec, 0, 0).tobytes()
    ds.save_as(files["missing_uid"], enforce_file_format=True)

    ds = base_dataset(spec, MRImageStorage, generate_uid(), 98)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(files["no_pixel_data"], enforce_file_format=True)
    return files


def new_study_uid() -> str:
    """A fresh StudyInstanceUID."""
    return generate_uid()

