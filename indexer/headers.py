"""Read one file's DICOM header, without pixel data, into a picklable record.

This runs in the scan's worker processes, so it touches no database and
returns plain data. That is the attributes that grouping, assembly and later
stages read, under their DICOM keywords. Enhanced MR multi-frame objects also
get one entry per frame, taken from the functional group sequences.

pydicom reads each file up to its pixel data, keeping only the elements listed
here (``specific_tags``), and only those values are converted. Big-endian,
deflated and non-Latin-1 files need nothing special: they are pydicom's cases.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydicom import config as pydicom_config
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.values import convert_value

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


# The elements read from the top level of each file: the header attributes, the
# identifiers kept outside Instance.header, and the two functional group
# sequences. pydicom reads the items of a selected sequence whole, so the
# attributes of FRAME_GROUPS need no tags of their own here.
READ_KEYWORDS: tuple[str, ...] = (*HEADER_KEYWORDS, *REQUIRED_KEYWORDS, "PatientID")
FUNCTIONAL_GROUP_SEQUENCES: tuple[str, ...] = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")
# Nested attributes read from functional group items, and the sequences they sit in.
NESTED_KEYWORDS: tuple[str, ...] = tuple({source for attributes in FRAME_GROUPS.values() for source in attributes})
NESTED_SEQUENCES: tuple[str, ...] = tuple(FRAME_GROUPS)

# VRs whose raw value pydicom.values.convert_value turns into the final value on
# its own. PN is left out because the catalog stores no names.
DIRECT_CONVERSION_VRS = frozenset({
    "AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "SH", "SL", "SS", "ST", "TM", "UC",
    "UI", "UL", "UR", "US", "UT",
})

# Pixel Data, Float Pixel Data and Double Float Pixel Data, where pydicom's
# stop_before_pixels stops too.
PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


def _keywords_by_tag(keywords: Iterable[str]) -> dict[int, str]:
    by_tag: dict[int, str] = {}
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"unknown DICOM keyword {keyword!r}")
        by_tag[tag] = keyword
    return by_tag


TOP_LEVEL_TAGS = _keywords_by_tag((*READ_KEYWORDS, *FUNCTIONAL_GROUP_SEQUENCES))
NESTED_TAGS = _keywords_by_tag((*NESTED_KEYWORDS, *NESTED_SEQUENCES))
# The specific_tags argument of the read, in file order.
SPECIFIC_TAGS: list[int] = sorted(TOP_LEVEL_TAGS)


@dataclass
class ParsedHeader:
    """The values read from one file, before they become a :class:`HeaderRecord`.

    ``values`` maps keywords of ``TOP_LEVEL_TAGS`` to plain values, with each
    functional group sequence as a list of dicts. ``pixel_data_length`` is the
    value length of the pixel data element (0xFFFFFFFF when encapsulated) and
    None when the data set ended before one, which means a truncated file or
    an object without pixel data. ``pixel_data_offset`` is where that element
    starts in the file, and None also for a deflated data set, whose offsets
    refer to the inflated stream.
    """

    values: dict[str, Any]
    transfer_syntax_uid: str | None
    pixel_data_length: int | None
    pixel_data_offset: int | None


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
    ``error`` or ``non_dicom`` instead of pydicom's exceptions.
    ``size_bytes`` and ``mtime_ns`` are the values the walk saw, taken from
    ``os.stat`` when not given.
    """
    if size_bytes is None or mtime_ns is None:
        stat = os.stat(path)
        size_bytes, mtime_ns = stat.st_size, stat.st_mtime_ns
    record = HeaderRecord(path=path, size_bytes=size_bytes, mtime_ns=mtime_ns, status="dicom")

    try:
        parsed = parse_header(path)
    except InvalidDicomError:
        record.status, record.stage = "non_dicom", "read"
        record.reason = "no DICOM preamble and File Meta Information"
        return record
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError,
            struct.error, zlib.error) as error:
        # pydicom raises a range of types for truncated or malformed element streams and deflated data.
        record.status, record.stage = "error", "read"
        record.reason = f"cannot parse the DICOM header: {type(error).__name__}: {error}"
        return record

    try:
        _fill_record(record, parsed)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as error:
        record.status, record.stage = "error", "header"
        record.reason = f"invalid header value: {type(error).__name__}: {error}"
    return record


def parse_header(path: str) -> ParsedHeader:
    """Read the elements of ``TOP_LEVEL_TAGS`` from the Part 10 file at ``path``, up to its pixel data.

    This is what ``pydicom.dcmread(path, stop_before_pixels=True,
    specific_tags=SPECIFIC_TAGS)`` does. pydicom skips every other top-level
    element by its length and reads the File Meta Information whole. The call
    goes through ``pydicom.filereader.read_partial``, which ``dcmread`` calls
    too, because its ``stop_when`` callback also reports whether the data set
    has pixel data and of what length.

    Raises:
        InvalidDicomError: no 128-byte preamble and ``DICM`` prefix.
        OSError: the file cannot be read.
        struct.error, zlib.error, ValueError: the element stream or the
            deflated data set is malformed or truncated.
    """
    quiet_pydicom()
    pixel_data_lengths: list[int] = []

    def stop_at_pixel_data(tag: int, vr: str | None, length: int) -> bool:
        if tag in PIXEL_DATA_TAGS:
            pixel_data_lengths.append(length)
            return True
        return False

    with open(path, "rb") as stream:
        dataset = read_partial(stream, stop_when=stop_at_pixel_data, specific_tags=SPECIFIC_TAGS)  # type: ignore[arg-type]
        # When reading stopped at the pixel data, pydicom rewound to the start of its element.
        position = stream.tell()

    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    syntax = str(syntax) if syntax else None
    length = pixel_data_lengths[0] if pixel_data_lengths else None
    offset = position if length is not None and syntax != DeflatedExplicitVRLittleEndian else None
    encodings = convert_encodings(dataset.get("SpecificCharacterSet"))
    return ParsedHeader(_plain_values(dataset, TOP_LEVEL_TAGS, encodings), syntax, length, offset)


def _plain_values(dataset: Dataset, keywords_by_tag: dict[int, str], encodings: list[str]) -> dict[str, Any]:
    """Convert the elements of ``dataset`` listed in ``keywords_by_tag`` to plain data, by keyword.

    Sequence items are converted with ``NESTED_TAGS``, at any depth. Elements
    still raw go straight through ``pydicom.values.convert_value``, which is
    what ``dataset[tag]`` calls too, without building a DataElement for each.
    ``encodings`` are the Python codecs of SpecificCharacterSet.
    """
    values: dict[str, Any] = {}
    # items() gives the elements as read, RawDataElement or DataElement, without converting them.
    for tag, element in list(dataset.items()):
        keyword = keywords_by_tag.get(tag)
        if keyword is None:
            continue
        # Raw elements read under Implicit VR carry no VR.
        vr = element.VR or dictionary_VR(tag)
        if vr == "SQ":
            values[keyword] = [_plain_values(item, NESTED_TAGS, encodings) for item in dataset[tag].value]
            continue
        if isinstance(element, RawDataElement) and vr in DIRECT_CONVERSION_VRS:
            value = _plain(convert_value(vr, element, encodings))
        else:
            # UN, ambiguous VRs such as "US or SS", and elements pydicom already converted.
            value = _plain(dataset[tag].value)
        if value is not None:
            values[keyword] = value
    return values


def _fill_record(record: HeaderRecord, parsed: ParsedHeader) -> None:
    values = parsed.values
    ends_before_pixels = parsed.pixel_data_length is None
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
    problem = _pixel_data_problem(record, header, parsed)
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


def _pixel_data_problem(record: HeaderRecord, header: dict[str, Any], parsed: ParsedHeader) -> str | None:
    """Return why the pixel data cannot be decoded, or None when it looks decodable.

    For native transfer syntaxes the length follows from Rows, Columns,
    BitsAllocated, SamplesPerPixel and NumberOfFrames, so a truncated file is
    caught here without reading it. The bytes present are the element's value
    length, capped by the bytes left in the file (not known for a deflated data
    set, whose inflation fails on a truncated file). For compressed syntaxes
    only the availability of a decoder is checked.
    """
    syntax = record.transfer_syntax_uid
    if syntax is None or parsed.pixel_data_length is None:
        return None
    if syntax in NATIVE_TRANSFER_SYNTAXES:
        rows, columns = header.get("Rows"), header.get("Columns")
        if not rows or not columns:
            return "missing required tag Rows or Columns"
        bits = int(header.get("BitsAllocated") or 16)
        samples = int(header.get("SamplesPerPixel") or 1)
        expected = rows * columns * samples * record.number_of_frames * bits // 8
        available = parsed.pixel_data_length
        if parsed.pixel_data_offset is not None:
            # Tag and 4-byte length, plus VR and 2 reserved bytes under explicit VR.
            element_header_bytes = 8 if syntax == ImplicitVRLittleEndian else 12
            available = min(available, record.size_bytes - parsed.pixel_data_offset - element_header_bytes)
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
    """Convert a pydicom value into JSON-serialisable Python data.

    Text is stripped, DS becomes float and IS int, and values that the
    catalog does not store (PersonName, bytes, datasets, tags) become None.
    """
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int) and not isinstance(value, BaseTag):
        return int(value)
    if isinstance(value, (MultiValue, list, tuple)):
        return [_plain(item) for item in value]
    return None
