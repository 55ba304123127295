"""Fast Part 10 writing for series of many single-frame files.

``Dataset.save_as`` re-encodes every element of every file. Frames of one
series share all but a dozen elements, so the shared elements are encoded
once and each file only encodes what differs, then joins the byte chunks
in tag order. Only Explicit VR Little Endian datasets (native or
encapsulated pixel data) are supported, which is all the phantom writes.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info

PREAMBLE = b"\x00" * 128 + b"DICM"


def _buffer() -> DicomBytesIO:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    return buffer


def encode_elements(ds: Dataset) -> dict[int, bytes]:
    """Encode each top-level element of ``ds`` (explicit VR little endian), keyed by tag."""
    chunks: dict[int, bytes] = {}
    for element in ds:
        buffer = _buffer()
        write_data_element(buffer, element)
        chunks[int(element.tag)] = buffer.getvalue()
    return chunks


def write_part10(path: Path, meta: FileMetaDataset, *chunk_sets: dict[int, bytes]) -> None:
    """Write a Part 10 file: preamble, file meta, then the union of ``chunk_sets`` in tag order.

    Later chunk sets override earlier ones for the same tag.
    """
    merged: dict[int, bytes] = {}
    for chunks in chunk_sets:
        merged.update(chunks)
    header = _buffer()
    header.write(PREAMBLE)
    write_file_meta_info(header, meta, enforce_standard=True)
    with path.open("wb") as handle:
        handle.write(header.getvalue())
        for tag in sorted(merged):
            handle.write(merged[tag])
