"""Read one file's DICOM header, without pixel data, into a picklable record.

This runs in the scan's worker processes, so it touches no database and
returns plain data. That is the attributes that grouping, assembly and later
stages read, under their DICOM keywords. Enhanced MR multi-frame objects also
get one entry per frame, taken from the functional group sequences.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pydicom.valuerep import DSfloat, IS, PersonName

from indexer.fast_header import NotDicom, ParsedHeader, TagTable, UnsupportedEncoding, parse_file

# Attributes copied from the top level of every object into Instance.header.
HEADER_KEYWORDS: tuple[str, ...] = (
    "SOPClassUID", "Modality", "ImageType", "SeriesInstanceUID", "SeriesNumber", "InstanceNumber",
    "AcquisitionNumber", "SeriesDescription", "ProtocolName", "SequenceName", "ScanningSequence",
    "SequenceVariant", "StudyDescription", "StudyDate", "StudyTime", "SeriesTime", "AcquisitionTime",
    "ContentTime", "AccessionNumber", "PatientSex", "PatientAge", "PatientBirthDate", "Manufacturer",
    "ManufacturerModelName", "MagneticFieldStrength", "InstitutionName", "ImagePositionPatient",
    "ImageOrientationPatient", "SliceLocation", "TriggerTime", "NominalInterval", "HeartRate",
    "CardiacNumberOfImages", "RepetitionTime", "EchoTime", "InversionTime", "FlipAngle", "Rows", "Columns",
    "PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "NumberOfFrames", "RescaleSlope",
    "RescaleIntercept", "FrameOfReferenceUID", "BitsAllocated", "SamplesPerPixel", "PixelRepresentation",
    "PhotometricInterpretation", "NumberOfTemporalPositions", "TemporalPositionIdentifier", "WindowCenter",
    "WindowWidth", "StackID",
)

# Keywords that grouping needs: a file without them cannot be catalogued.
REQUIRED_KEYWORDS: tuple[str, ...] = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")

# Per-frame functional groups of Enhanced MR (PS3.3 C.7.6.16) and the
# attributes read from each, stored under the classic keyword they replace.
FRAME_GROUPS: dict[str, dict[str, str]] = {
    "PlanePositionSequence": {"ImagePositionPatient": "ImagePositionPatient"},
    "PlaneOrientationSequence": {"ImageOrientationPatient": "ImageOrientationPatient"},
    "CardiacSynchronizationSequence": {
        "NominalCardiacTriggerDelayTime": "TriggerTime",
        "RRIntervalTimeNominal": "NominalInterval",
    },
    "FrameContentSequence": {
        "StackID": "StackID",
        "InStackPositionNumber": "InStackPositionNumber",
        "TemporalPositionIndex": "TemporalPositionIndex",
        "FrameAcquisitionDateTime": "FrameAcquisitionDateTime",
    },
    "PixelMeasuresSequence": {
        "PixelSpacing": "PixelSpacing",
        "SliceThickness": "SliceThickness",
        "SpacingBetweenSlices": "SpacingBetweenSlices",
    },
    "MREchoSequence": {"EffectiveEchoTime": "EchoTime"},
    "MRModifierSequence": {"InversionTimes": "InversionTime"},
    "MRTimingAndRelatedParametersSequence": {"RepetitionTime": "RepetitionTime", "FlipAngle": "FlipAngle"},
    "PixelValueTransformationSequence": {"RescaleSlope": "RescaleSlope", "RescaleIntercept": "RescaleIntercept"},
}

# Attributes that can sit in the shared functional groups and apply to the whole object.
SHARED_TO_TOP_LEVEL: tuple[str, ...] = (
    "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices", "RepetitionTime",
    "FlipAngle", "EchoTime", "RescaleSlope", "RescaleIntercept", "NominalInterval",
)

# Transfer syntaxes whose pixel data is stored native, so its length is known from the header.
NATIVE_TRANSFER_SYNTAXES = frozenset({
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
})


# Everything the fast parser extracts: the header attributes, the identifiers
# kept outside Instance.header, and the functional group sequences.
TOP_LEVEL_KEYWORDS: tuple[str, ...] = (*HEADER_KEYWORDS, *REQUIRED_KEYWORDS, "PatientID", "SpecificCharacterSet")
TOP_LEVEL_SEQUENCES: tuple[str, ...] = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")
NESTED_SEQUENCES: tuple[str, ...] = tuple(FRAME_GROUPS)
NESTED_KEYWORDS: tuple[str, ...] = tuple({source for attributes in FRAME_GROUPS.values() for source in attributes})
TOP_LEVEL_TABLE = TagTable(TOP_LEVEL_KEYWORDS, TOP_LEVEL_SEQUENCES)
NESTED_TABLE = TagTable(NESTED_KEYWORDS, NESTED_SEQUENCES)


@dataclass
class HeaderRecord:
    """Scan result of one file.

    ``status`` is ``dicom`` (``header`` is filled), ``non_image`` (a DICOM
    object without PixelData, such as a structured report), ``non_dicom`` or
    ``error`` (``reason`` and ``stage`` give the cause). ``patient_id`` is kept out of
    ``header`` because the catalog stores it on Patient only.
    """

    path: str
    size_bytes: int
    mtime_ns: int
    status: str
    reason: str | None = None
    stage: str | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    study_instance_uid: str | None = None
    patient_id: str | None = None
    transfer_syntax_uid: str | None = None
    number_of_frames: int = 1
    header: dict[str, Any] = field(default_factory=dict)
    # ``header`` as JSON text. The scan's workers fill it and empty ``header``,
    # so the single writing process neither unpickles nor serialises the dict.
    header_json: str | None = None


def quiet_pydicom() -> None:
    """Stop pydicom from validating values while reading.

    Its warnings quote the invalid value, and archives carry UIDs with leading
    zeros (invalid under PS3.5 but readable); the logs must not repeat UIDs.
    """
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE


def read_header(path: str, size_bytes: int | None = None, mtime_ns: int | None = None) -> HeaderRecord:
    """Read the header of the file at ``path`` into a record.

    Unreadable, truncated and non-DICOM files give a record with status
    ``error`` or ``non_dicom`` instead of the parsers' exceptions.
    ``size_bytes`` and ``mtime_ns`` are the values the walk saw, taken from
    ``os.stat`` when not given. The fast parser reads the common encodings, and
    big-endian, deflated or unusual files go through pydicom.
    """
    if size_bytes is None or mtime_ns is None:
        stat = os.stat(path)
        size_bytes, mtime_ns = stat.st_size, stat.st_mtime_ns
    record = HeaderRecord(path=path, size_bytes=size_bytes, mtime_ns=mtime_ns, status="dicom")

    try:
        try:
            parsed = parse_file(path, TOP_LEVEL_TABLE, NESTED_TABLE)
        except UnsupportedEncoding:
            parsed = read_with_pydicom(path)
    except (NotDicom, InvalidDicomError):
        record.status, record.stage = "non_dicom", "read"
        record.reason = "no DICOM preamble and File Meta Information"
        return record
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError, struct.error) as error:
        # Both parsers raise a range of types for truncated or malformed element streams.
        record.status, record.stage = "error", "read"
        record.reason = f"cannot parse the DICOM header: {type(error).__name__}: {error}"
        return record

    try:
        _fill_record(record, parsed)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as error:
        record.status, record.stage = "error", "header"
        record.reason = f"invalid header value: {type(error).__name__}: {error}"
    return record


def read_with_pydicom(path: str) -> ParsedHeader:
    """Read the header with pydicom into the same plain form that the fast parser returns."""
    quiet_pydicom()
    with open(path, "rb") as stream:
        dataset = pydicom.dcmread(stream, stop_before_pixels=True)
        offset = stream.tell()
        size = os.fstat(stream.fileno()).st_size
    values = _dataset_values(dataset, TOP_LEVEL_KEYWORDS, TOP_LEVEL_SEQUENCES)
    meta = getattr(dataset, "file_meta", None)
    syntax = str(meta.TransferSyntaxUID) if meta is not None and meta.get("TransferSyntaxUID") else None
    return ParsedHeader(values, syntax, offset if offset < size else None)


def _dataset_values(dataset: Dataset, keywords: Iterable[str], sequences: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for keyword in keywords:
        if keyword in dataset:
            value = _plain(dataset.get(keyword))
            if value is not None:
                values[keyword] = value
    for keyword in sequences:
        if keyword in dataset:
            values[keyword] = [_dataset_values(item, NESTED_KEYWORDS, NESTED_SEQUENCES) for item in dataset.get(keyword)]
    return values


def _fill_record(record: HeaderRecord, parsed: ParsedHeader) -> None:
    values = parsed.values
    ends_before_pixels = parsed.pixel_data_offset is None
    missing = [keyword for keyword in REQUIRED_KEYWORDS if not values.get(keyword)]
    if missing and ends_before_pixels:
        record.status, record.stage = "error", "read"
        record.reason = (
            f"truncated file: it ends after {record.size_bytes} bytes without PixelData "
            f"and without {', '.join(missing)}"
        )
        return
    if missing:
        record.status, record.stage = "error", "header"
        record.reason = f"missing required tag {', '.join(missing)}"
        return

    record.sop_instance_uid = str(values["SOPInstanceUID"])
    record.study_instance_uid = str(values["StudyInstanceUID"])
    record.sop_class_uid = str(values.get("SOPClassUID") or "") or None
    record.patient_id = str(values.get("PatientID") or "") or None
    record.transfer_syntax_uid = parsed.transfer_syntax_uid

    header = {keyword: values[keyword] for keyword in HEADER_KEYWORDS if values.get(keyword) not in (None, "", [])}
    frames = _read_functional_groups(values, header)
    if frames:
        header["frames"] = frames
    record.number_of_frames = len(frames) if frames else 1
    record.header = header

    if ends_before_pixels:
        # Structured reports, presentation states and the like: valid DICOM, but no image to catalogue.
        record.status, record.stage = "non_image", "header"
        record.reason = f"no PixelData (SOPClassUID {record.sop_class_uid})"
        return
    problem = _pixel_data_problem(record, header, parsed.pixel_data_offset)  # type: ignore[arg-type]
    if problem:
        record.status, record.stage, record.reason = "error", "decode", problem


def _read_functional_groups(values: dict[str, Any], header: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one dict per frame from the functional groups, or [] for a single-frame object.

    Shared attributes are also lifted into ``header`` so that single-frame and
    multi-frame series read the same keys.
    """
    number_of_frames = int(values.get("NumberOfFrames") or 0)
    per_frame = values.get("PerFrameFunctionalGroupsSequence")
    shared_items = values.get("SharedFunctionalGroupsSequence")
    if number_of_frames < 1 or per_frame is None or len(per_frame) != number_of_frames:
        # Classic objects sometimes carry an empty PerFrameFunctionalGroupsSequence; ignore it.
        return []

    shared = _read_group_item(shared_items[0]) if shared_items else {}
    for keyword in SHARED_TO_TOP_LEVEL:
        if keyword in shared and keyword not in header:
            header[keyword] = shared[keyword]

    frames = []
    for number, item in enumerate(per_frame, start=1):
        frame = dict(shared)
        frame.update(_read_group_item(item))
        frame["FrameNumber"] = number
        frames.append(frame)
    return frames


def _read_group_item(item: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for sequence_keyword, attributes in FRAME_GROUPS.items():
        sequence = item.get(sequence_keyword)
        if not sequence:
            continue
        for source, target in attributes.items():
            value = sequence[0].get(source)
            if value not in (None, "", []):
                values[target] = value
    return values


def _pixel_data_problem(record: HeaderRecord, header: dict[str, Any], pixel_data_offset: int) -> str | None:
    """Return why the pixel data cannot be decoded, or None when it looks decodable.

    For native transfer syntaxes the length follows from Rows, Columns,
    BitsAllocated, SamplesPerPixel and NumberOfFrames, so a truncated file is
    caught here without reading it. For compressed ones only the availability
    of a decoder is checked.
    """
    syntax = record.transfer_syntax_uid
    if syntax is None:
        return None
    if syntax in NATIVE_TRANSFER_SYNTAXES:
        rows, columns = header.get("Rows"), header.get("Columns")
        if not rows or not columns:
            return "missing required tag Rows or Columns"
        bits = int(header.get("BitsAllocated") or 16)
        samples = int(header.get("SamplesPerPixel") or 1)
        expected = rows * columns * samples * record.number_of_frames * bits // 8
        # Tag and 4-byte length, plus VR and 2 reserved bytes under explicit VR.
        element_header_bytes = 8 if syntax == "1.2.840.10008.1.2" else 12
        available = record.size_bytes - pixel_data_offset - element_header_bytes
        if available < expected:
            return f"truncated file: PixelData has {max(available, 0)} of {expected} bytes"
        return None
    try:
        from pydicom.pixels import get_decoder

        if not get_decoder(UID(syntax)).is_available:
            return f"no decoder is installed for TransferSyntaxUID {syntax}"
    except NotImplementedError:
        return f"pydicom has no decoder for TransferSyntaxUID {syntax}"
    return None


def _plain(value: Any) -> Any:
    """Convert a pydicom value into JSON-serialisable Python data."""
    if value is None:
        return None
    if isinstance(value, PersonName):
        return None
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, DSfloat):
        return float(value)
    if isinstance(value, IS):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, bytes):
        return None
    if isinstance(value, Dataset) or hasattr(value, "value_tag"):
        return None
    return str(value).strip()
