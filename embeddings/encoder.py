"""The interface between a model and the rest of cmr-search.

Indexing, zero-shot scoring and search see a model only through
:class:`StudyEncoder`. The project's default model and the published CMR-CLIP
model both implement it, and each is identified by a ``model_id`` that
includes a hash of its weights, so that an index built by one model is never
queried with another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session


@dataclass
class StudyVectors:
    """The vectors of one study from one model, all float32 and L2-normalised."""

    study_pk: int
    study: np.ndarray
    views: dict[int, np.ndarray] = field(default_factory=dict)  # series primary key → per-view vector
    segments: dict[str, str] = field(default_factory=dict)  # input segment → "real" or "filled"


@dataclass(frozen=True)
class FindingPrompts:
    """Prompt ensembles that score one finding zero-shot."""

    name: str
    label: str
    positive: tuple[str, ...]
    negative: tuple[str, ...] = ()


class StudyEncoder(Protocol):
    model_id: str
    dimension: int
    trained_on_synthetic_data: bool

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (queries or reports) as (len(texts), dimension) unit vectors."""
        ...

    def encode_studies(self, session: Session, study_pks: Sequence[int]) -> list[StudyVectors]:
        """Embed the cine studies ``study_pks``; studies with no usable cine are left out."""
        ...

    def finding_prompts(self) -> Sequence[FindingPrompts]:
        """Zero-shot findings that this model scores, with their prompts."""
        ...
