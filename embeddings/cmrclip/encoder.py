"""CMR-CLIP behind the :class:`embeddings.encoder.StudyEncoder` interface.

Each study becomes one 512-d unit vector from the 64-frame video of
:mod:`.study_input`. CMR-CLIP has no per-view vectors, so ``StudyVectors.views``
stays empty, and ``StudyVectors.segments`` records which of the six input
segments were real and which were filled. Queries go through the matching
text tower (lowercasing tokenizer, masked mean pooling). Both sides are
L2-normalised, so an inner-product index returns the model's cosine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sqlalchemy.orm import Session

from embeddings.cmrclip.checkpoint import load_checkpoint
from embeddings.cmrclip.config import PUBLISHED_CONFIG, CMRCLIPConfig
from embeddings.cmrclip.model import CMRCLIP
from embeddings.cmrclip.prompts import CMRCLIP_FINDINGS
from embeddings.cmrclip.study_input import StudyInputError, StudyVideo, build_study_video
from embeddings.cmrclip.tokenizer import CMRCLIPTokenizer, load_tokenizer
from embeddings.encoder import FindingPrompts, StudyVectors
from embeddings.inference import autocast_for, default_device
from embeddings.zeroshot import FindingThresholds, load_thresholds
from indexer.pixels import PixelDataError

logger = logging.getLogger(__name__)

MODEL_NAME = "cmrclip"
THRESHOLDS_FILE = "cmrclip-thresholds.json"  # beside the weights, tagged with the model id
TEXT_BATCH_SIZE = 32
NORM_FLOOR = 1e-8  # the published similarity floors each vector norm here


def thresholds_path(weights: Path) -> Path:
    """Return where site thresholds for the weights file ``weights`` are kept."""
    return weights.parent / THRESHOLDS_FILE


def load_cmrclip_encoder(weights: Path | None, tokenizer: Path | None, device: str | None = None) -> CMRCLIPEncoder:
    """Return the CMR-CLIP encoder for ``embeddings.factory.load_encoder("cmrclip", ...)``.

    Raises:
        ValueError: ``weights`` or ``tokenizer`` is not given.
        embeddings.cmrclip.checkpoint.CheckpointError: the weights do not load strictly.
        embeddings.cmrclip.tokenizer.TokenizerError: the tokenizer folder is unusable.
    """
    if weights is None or tokenizer is None:
        raise ValueError(
            "the cmrclip model needs --weights (the published pytorch_model.bin) and --tokenizer "
            "(a folder with the Bio_ClinicalBERT vocab.txt)"
        )
    return CMRCLIPEncoder.from_files(weights, tokenizer, device=device)


def model_id_for(digest: str) -> str:
    """Return the model id of CMR-CLIP weights with SHA-256 ``digest``."""
    return f"{MODEL_NAME}-vitb16-{digest[:16]}"


class CMRCLIPEncoder:
    """A :class:`StudyEncoder` for the published CMR-CLIP weights.

    ``study_batch_size`` studies go through the video tower together. The
    default is 1 on CPU, where one 64-frame study takes 15 s or more on two
    cores and about 0.7 GB beside the weights. On a GPU it is 8, and the
    video tower runs under bf16 autocast. ``thresholds`` are decision thresholds fitted on the
    site's labelled studies (see :mod:`.prompts`). Without them only scores
    exist, never a yes/no.
    """

    dimension: int
    trained_on_synthetic_data = False

    def __init__(
        self,
        model: CMRCLIP,
        digest: str,
        tokenizer: CMRCLIPTokenizer,
        device: str | None = None,
        study_batch_size: int | None = None,
        thresholds: FindingThresholds | None = None,
    ) -> None:
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self.model_id = model_id_for(digest)
        self.dimension = model.config.embed_dim
        self.tokenizer = tokenizer
        self.study_batch_size = study_batch_size or (8 if self.device.type == "cuda" else 1)
        self.thresholds = thresholds

    @classmethod
    def from_files(
        cls,
        weights: Path | str,
        tokenizer_dir: Path | str,
        device: str | None = None,
        config: CMRCLIPConfig = PUBLISHED_CONFIG,
    ) -> CMRCLIPEncoder:
        """Load the checkpoint ``weights`` strictly, the vocabulary in ``tokenizer_dir`` and any site thresholds.

        Thresholds are read from ``cmrclip-thresholds.json`` beside the
        weights when that file was fitted for these weights.
        """
        tokenizer = load_tokenizer(tokenizer_dir, config.text)
        loaded = load_checkpoint(weights, config)
        encoder = cls(loaded.model, loaded.digest, tokenizer, device=device)
        encoder.thresholds = load_thresholds(thresholds_path(Path(weights)), encoder.model_id)
        logger.info("loaded CMR-CLIP %s on %s", encoder.model_id, encoder.device)
        return encoder

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (queries or reports) as (len(texts), 512) float32 unit vectors."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = []
        for start in range(0, len(texts), TEXT_BATCH_SIZE):
            batch = self.tokenizer(texts[start : start + TEXT_BATCH_SIZE])
            embedded = self.model.encode_text(batch.input_ids.to(self.device), batch.attention_mask.to(self.device))
            vectors.append(F.normalize(embedded.float(), dim=-1, eps=NORM_FLOOR).cpu().numpy())
        return np.concatenate(vectors).astype(np.float32)

    @torch.inference_mode()
    def encode_videos(self, videos: Sequence[StudyVideo]) -> np.ndarray:
        """Embed built study videos as (len(videos), 512) float32 unit vectors."""
        frames = torch.stack([video.frames for video in videos]).to(self.device)
        with autocast_for(self.device):
            embedded = self.model.encode_video(frames)
        return F.normalize(embedded.float(), dim=-1, eps=NORM_FLOOR).cpu().numpy().astype(np.float32)

    def encode_studies(self, session: Session, study_pks: Sequence[int]) -> list[StudyVectors]:
        """Embed the studies ``study_pks``; studies with no usable cine are left out and logged."""
        results: list[StudyVectors] = []
        for batch in self._video_batches(session, study_pks):
            started = time.perf_counter()
            vectors = self.encode_videos([video for _, video in batch])
            elapsed = time.perf_counter() - started
            logger.info("encoded %d studies with CMR-CLIP in %.1f s", len(batch), elapsed)
            for (study_pk, video), vector in zip(batch, vectors, strict=True):
                results.append(StudyVectors(study_pk=study_pk, study=vector, views={}, segments=dict(video.segments)))
        return results

    def finding_prompts(self) -> Sequence[FindingPrompts]:
        """Return CMR-CLIP's seven published findings; they have no negative prompts."""
        return CMRCLIP_FINDINGS

    def finding_probability(self, finding: str, score: float) -> float | None:
        """Return the site-calibrated probability of ``finding``, or None without a fitted threshold."""
        if self.thresholds is None or finding not in self.thresholds.findings:
            return None
        return float(self.thresholds.findings[finding].probability(np.asarray([score]))[0])

    def _video_batches(self, session: Session, study_pks: Sequence[int]) -> Iterator[list[tuple[int, StudyVideo]]]:
        batch: list[tuple[int, StudyVideo]] = []
        for study_pk in study_pks:
            try:
                video = build_study_video(session, study_pk, self.model.config.frames_per_study)
            except StudyInputError as error:
                logger.info("study %d left out of CMR-CLIP: %s", study_pk, error)
                continue
            except PixelDataError as error:
                logger.warning("study %d left out of CMR-CLIP, its pixels failed to decode: %s", study_pk, error)
                continue
            batch.append((study_pk, video))
            if len(batch) == self.study_batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
