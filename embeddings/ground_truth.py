"""Finding labels per study from a ground-truth file (the phantom writes one beside its DICOM folders).

Accepted forms: JSON Lines, a JSON list of objects, or CSV. Each record names
its study by StudyInstanceUID or AccessionNumber (in DICOM keyword or
snake_case spelling) and gives the finding labels either at the top level
or in a nested ``labels`` object.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.data import StudyRecord

UID_KEYS = ("study_instance_uid", "StudyInstanceUID")
ACCESSION_KEYS = ("accession_number", "AccessionNumber")
TRUE_STRINGS = {"1", "true", "yes", "y", "t"}
FALSE_STRINGS = {"0", "false", "no", "n", "f", ""}


class GroundTruthError(ValueError):
    """A ground-truth file cannot be read or matches no catalogued study."""


def _records(path: Path) -> Iterable[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        yield from csv.DictReader(text.splitlines())
        return
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from json.loads(stripped)
        return
    for line_number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as error:
                raise GroundTruthError(f"{path}: line {line_number} is not valid JSON: {error}") from error


def _as_bool(value: Any, finding: str, path: Path) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_STRINGS:
        return True
    if text in FALSE_STRINGS:
        return False
    raise GroundTruthError(f"{path}: label {finding} has value {value!r}; expected true/false or 1/0")


def read_ground_truth(path: Path, findings: Sequence[str]) -> tuple[dict[str, dict[str, bool]], dict[str, dict[str, bool]]]:
    """Return labels keyed by StudyInstanceUID and by AccessionNumber; each maps finding → bool.

    Findings absent from a record are left out of its label dict.
    """
    by_uid: dict[str, dict[str, bool]] = {}
    by_accession: dict[str, dict[str, bool]] = {}
    for record in _records(path):
        source = record.get("labels") if isinstance(record.get("labels"), dict) else record
        labels = {name: _as_bool(source[name], name, path) for name in findings if name in source}
        uid = next((record[k] for k in UID_KEYS if record.get(k)), None)
        accession = next((record[k] for k in ACCESSION_KEYS if record.get(k)), None)
        if uid:
            by_uid[str(uid)] = labels
        if accession:
            by_accession[str(accession)] = labels
    if not by_uid and not by_accession:
        raise GroundTruthError(f"{path}: no record has a StudyInstanceUID or AccessionNumber")
    return by_uid, by_accession


def label_matrix(
    records: Sequence[StudyRecord], path: Path, findings: Sequence[str]
) -> dict[str, np.ndarray]:
    """Return finding → labels (len(records),) as float arrays, NaN where a study has no label.

    Raises:
        GroundTruthError: no study of ``records`` is in the file.
    """
    by_uid, by_accession = read_ground_truth(path, findings)
    matrix = {name: np.full(len(records), np.nan) for name in findings}
    matched = 0
    for index, record in enumerate(records):
        labels = by_uid.get(record.study_instance_uid)
        if labels is None and record.accession_number:
            labels = by_accession.get(record.accession_number)
        if labels is None:
            continue
        matched += 1
        for name, value in labels.items():
            matrix[name][index] = float(value)
    if matched == 0:
        raise GroundTruthError(f"{path}: none of the {len(records)} catalogued studies is in the ground truth")
    return matrix
