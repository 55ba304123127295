"""The project's video–text model behind the :class:`embeddings.encoder.StudyEncoder` interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from embeddings.clips import VIEW_TYPES, ClipCache, ClipSettings
from embeddings.data import load_clip_table
from embeddings.encoder import FindingPrompts, StudyVectors
from embeddings.inference import encode_clip_table, encode_texts
from embeddings.model import VideoTextModel
from embeddings.zeroshot import FindingThresholds, load_finding_prompts


# About 75 MB of float16 clips per chunk at the default clip settings (64 studies × 9 slots × 16 × 64 × 64 × 2 bytes).
STUDIES_PER_CHUNK = 64


class VideoTextStudyEncoder:
    """A :class:`StudyEncoder` for a :class:`VideoTextModel` checkpoint.

    ``clip_cache`` (settable after construction) makes re-encoding a study
    read float16 clips from disk instead of decoding DICOM again.
    """

    def __init__(
        self,
        model: VideoTextModel,
        model_id: str,
        trained_on_synthetic_data: bool,
        clip_cache: ClipCache | None = None,
        batch_size: int = 16,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.dimension = model.config.embed_dim
        self.trained_on_synthetic_data = trained_on_synthetic_data
        self.clip_cache = clip_cache
        self.batch_size = batch_size
        self.metadata = metadata or {}  # what the checkpoint recorded: training options, epoch, validation metrics
        # Zero-shot thresholds fitted on validation for this model id, if any (see embeddings.zeroshot).
        self.thresholds: FindingThresholds | None = None

    @property
    def clip_settings(self) -> ClipSettings:
        """The clip settings this model was trained with."""
        return self.model.config.clip

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (queries or reports) as (len(texts), dimension) float32 unit vectors."""
        return encode_texts(self.model, list(texts)).astype(np.float32)

    def encode_studies(self, session: Session, study_pks: Sequence[int]) -> list[StudyVectors]:
        """Embed the cine studies ``study_pks``; studies with no usable cine are left out.

        ``segments`` marks each view type slot ("sax_basal" … "lge_apical") as
        "real" or "filled". A missing view is left out of the attention
        pooling, so "filled" means absent, not imputed. Studies are encoded
        in chunks of ``STUDIES_PER_CHUNK`` to bound the memory of the clips.
        """
        results: list[StudyVectors] = []
        for start in range(0, len(study_pks), STUDIES_PER_CHUNK):
            results += self._encode_chunk(session, list(study_pks[start : start + STUDIES_PER_CHUNK]))
        return results

    def _encode_chunk(self, session: Session, study_pks: list[int]) -> list[StudyVectors]:
        table = load_clip_table(session, study_pks, self.model.config.clip, self.clip_cache)
        study_vectors, view_vectors = encode_clip_table(self.model, table, self.batch_size, with_views=True)
        results = []
        for index, study_pk in enumerate(table.study_pks):
            segments = {
                view_type: "real" if table.present[index, slot] else "filled" for slot, view_type in enumerate(VIEW_TYPES)
            }
            results.append(
                StudyVectors(
                    study_pk=study_pk,
                    study=study_vectors[index].astype(np.float32),
                    views={pk: vector.astype(np.float32) for pk, vector in view_vectors[index].items()},
                    segments=segments,
                )
            )
        return results

    def finding_prompts(self) -> Sequence[FindingPrompts]:
        """Zero-shot findings that this model scores, with their prompt ensembles."""
        return load_finding_prompts()
