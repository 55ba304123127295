"""Header modules shared by classic and enhanced MR files, and pixel encoding.

Only synthetic identities are written: PatientName "PHANTOM^<nnnn>", a
PatientID and AccessionNumber derived from the seed and study index, and
dates drawn by the acquisition sampler.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
from openjpeg.utils import encode_array
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, JPEG2000Lossless, UID

from phantom.study import StudyPlan
from phantom.uids import derive_uid

BITS_STORED = 12

# The OpenJPEG binding logs every encoded tile at INFO level.
logging.getLogger("openjpeg").setLevel(logging.WARNING)
MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4.1")


@dataclass(frozen=True)
class StudyIdentity:
    """Synthetic identifiers of one study."""

    patient_name: str
    patient_id: str
    accession_number: str
    study_instance_uid: str
    frame_of_reference_uid: str
    study_id: str


def study_identity(plan: StudyPlan) -> StudyIdentity:
    """Identifiers of study ``plan.index`` in the archive made with ``plan.seed``."""
    number = plan.index + 1
    return StudyIdentity(
        patient_name=f"PHANTOM^{number:04d}",
        patient_id=f"PH{plan.seed % 100000:05d}{number:05d}",
        accession_number=f"A{plan.seed % 100000:05d}{number:05d}",
        study_instance_uid=derive_uid(plan.seed, plan.index, "study"),
        frame_of_reference_uid=derive_uid(plan.seed, plan.index, "frame-of-reference"),
        study_id=f"{number}",
    )


def format_ds(value: float) -> str:
    """Format a decimal string (DS) value in at most 16 characters."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


def patient_study_modules(plan: StudyPlan, identity: StudyIdentity) -> Dataset:
    """Patient, General Study, Patient Study and General Equipment attributes."""
    pathology = plan.pathology
    acquisition = plan.acquisition
    when = acquisition.study_datetime
    birth = dt.date(when.year - pathology.age_years, 1 + plan.index % 12, 1 + plan.index % 28)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = birth.strftime("%Y%m%d")
    ds.PatientSex = pathology.sex
    ds.PatientAge = f"{pathology.age_years:03d}Y"
    ds.PatientSize = format_ds(round(pathology.height_m, 2))
    ds.PatientWeight = format_ds(round(pathology.weight_kg, 1))
    ds.StudyInstanceUID = identity.study_instance_uid
    ds.StudyDate = when.strftime("%Y%m%d")
    ds.StudyTime = when.strftime("%H%M%S")
    ds.AccessionNumber = identity.accession_number
    ds.StudyID = identity.study_id
    ds.StudyDescription = acquisition.study_description
    ds.ReferringPhysicianName = ""
    ds.Manufacturer = acquisition.style.manufacturer
    ds.ManufacturerModelName = acquisition.model_name
    ds.SoftwareVersions = acquisition.software_version
    ds.InstitutionName = "Phantom Heart Centre"
    ds.StationName = f"{acquisition.style.station_prefix}{plan.seed % 7 + 1:02d}"
    ds.DeviceSerialNumber = f"{plan.seed % 90000 + 10000}"
    ds.MagneticFieldStrength = format_ds(acquisition.field_strength_t)
    ds.FrameOfReferenceUID = identity.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.BodyPartExamined = "HEART"
    ds.PatientPosition = acquisition.patient_position
    return ds


def file_meta(sop_class_uid: str, sop_instance_uid: str, compressed: bool) -> FileMetaDataset:
    """File meta information of one Part 10 file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = JPEG2000Lossless if compressed else ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "CMR_PHANTOM_1"
    return meta


def set_pixel_data(ds: Dataset, frames: list[np.ndarray], compressed: bool) -> None:
    """Store uint16 ``frames`` as PixelData, JPEG 2000 lossless or native little endian."""
    rows, columns = frames[0].shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    if compressed:
        encoded = [encode_array(np.ascontiguousarray(frame), bits_stored=BITS_STORED, photometric_interpretation=2, use_mct=False) for frame in frames]
        ds.PixelData = encapsulate(encoded)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.LossyImageCompression = "00"
    else:
        ds.PixelData = np.ascontiguousarray(np.stack(frames)).astype("<u2").tobytes()
        ds["PixelData"].VR = "OW"


def window(frames: np.ndarray) -> tuple[str, str]:
    """WindowCenter and WindowWidth that show blood just below white."""
    low, high = np.percentile(frames[..., ::4, ::4], [1.0, 99.7])
    return format_ds(round(float(low + high) / 2)), format_ds(round(float(high - low)))
