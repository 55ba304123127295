"""Training and evaluation data from the catalog: studies, impressions, splits and clip tables.

A study's clips go into fixed slots, one per view type of
:data:`embeddings.clips.VIEW_TYPES`, so a batch is a plain tensor
(studies, slots, frames, size, size) with a mask of the slots that are
present.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from embeddings.clips import VIEW_TYPES, ClipCache, ClipSettings, SeriesClip, build_study_clips
from indexer.catalog.models import Patient, Study

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_SPLIT_FRACTIONS: tuple[float, float] = (0.7, 0.15)  # train, validation; the rest is test


@dataclass(frozen=True)
class StudyRecord:
    """One catalogued study with the fields training and evaluation read."""

    study_pk: int
    patient_pk: int
    split: str
    impression: str | None
    study_instance_uid: str
    accession_number: str | None


def split_for_patient(patient_id: str, seed: int, fractions: tuple[float, float] = DEFAULT_SPLIT_FRACTIONS) -> str:
    """Return the split of a patient: a hash of the seed and PatientID, so every study of a patient lands together.

    The split does not depend on which other patients are in the catalog,
    so adding studies never moves a patient from test to train.
    """
    digest = hashlib.sha256(f"{seed}:{patient_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < fractions[0]:
        return "train"
    if position < fractions[0] + fractions[1]:
        return "validation"
    return "test"


def load_study_records(
    session: Session,
    seed: int,
    require_impression: bool = False,
    fractions: tuple[float, float] = DEFAULT_SPLIT_FRACTIONS,
) -> list[StudyRecord]:
    """Return every catalogued study with its split, in primary-key order.

    The impression falls back to the full report text when a report has no
    impression section.
    """
    rows = session.execute(
        select(Study.id, Study.patient_pk, Patient.patient_id, Study.impression, Study.report_text,
               Study.study_instance_uid, Study.accession_number)
        .join(Patient, Study.patient_pk == Patient.id)
        .order_by(Study.id)
    ).all()
    records = []
    for study_pk, patient_pk, patient_id, impression, report_text, study_uid, accession in rows:
        text = (impression or report_text or "").strip() or None
        if require_impression and text is None:
            continue
        records.append(
            StudyRecord(study_pk, patient_pk, split_for_patient(patient_id, seed, fractions), text, study_uid, accession)
        )
    return records


@dataclass
class ClipTable:
    """Clips of many studies in view-type slots.

    ``clips`` is (studies, slots, frames, size, size) float16, ``present``
    (studies, slots) bool. ``series_slots[i]`` maps each series of study i
    to the slots its slices fill, for per-view vectors.
    """

    study_pks: list[int]
    clips: np.ndarray
    present: np.ndarray
    series_slots: list[dict[int, list[int]]]

    def __len__(self) -> int:
        return len(self.study_pks)

    def subset(self, indices: Sequence[int]) -> ClipTable:
        """Return the studies at ``indices``, in that order."""
        index = np.asarray(indices, dtype=int)
        return ClipTable(
            [self.study_pks[i] for i in index],
            self.clips[index],
            self.present[index],
            [self.series_slots[i] for i in index],
        )


def slot_clips(clips: Sequence[SeriesClip], settings: ClipSettings) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
    """Place a study's series clips into view-type slots; returns clips, present mask and series → slots."""
    array = np.zeros((len(VIEW_TYPES), settings.frames, settings.size, settings.size), dtype=np.float16)
    present = np.zeros(len(VIEW_TYPES), dtype=bool)
    series_slots: dict[int, list[int]] = {}
    for clip in clips:
        for row, view_type in enumerate(clip.view_types):
            slot = VIEW_TYPES.index(view_type)
            array[slot] = clip.array[row]
            present[slot] = True
            series_slots.setdefault(clip.series_pk, []).append(slot)
    return array, present, series_slots


def load_clip_table(
    session: Session,
    study_pks: Sequence[int],
    settings: ClipSettings,
    cache: ClipCache | None,
    on_study: Callable[[], None] | None = None,
) -> ClipTable:
    """Build the clip table of ``study_pks``; studies with no usable cine are left out and counted in the log."""
    kept, arrays, masks, slots = [], [], [], []
    for study_pk in study_pks:
        clips = build_study_clips(session, study_pk, settings, cache)
        if on_study is not None:
            on_study()
        if not clips:
            continue
        array, present, series_slots = slot_clips(clips, settings)
        kept.append(study_pk)
        arrays.append(array)
        masks.append(present)
        slots.append(series_slots)
    if len(kept) < len(study_pks):
        logger.info("%d of %d studies have no usable cine series and are left out", len(study_pks) - len(kept), len(study_pks))
    shape = (0, len(VIEW_TYPES), settings.frames, settings.size, settings.size)
    return ClipTable(
        kept,
        np.stack(arrays) if arrays else np.zeros(shape, dtype=np.float16),
        np.stack(masks) if masks else np.zeros((0, len(VIEW_TYPES)), dtype=bool),
        slots,
    )
