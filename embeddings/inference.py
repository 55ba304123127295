"""Batched inference of the video–text model on clip tables, with bf16 autocast on GPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from embeddings.clips import VIEW_TYPES
from embeddings.data import ClipTable
from embeddings.model import VideoTextModel


def default_device() -> str:
    """Return "cuda" when a GPU is visible, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast_for(device: torch.device | str) -> contextlib.AbstractContextManager[None]:
    """Return bf16 autocast on CUDA and a no-op context on CPU."""
    if torch.device(device).type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def batch_tensors(table: ClipTable, indices: np.ndarray, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return clips (float32), view types and the present mask of the studies at ``indices`` on ``device``."""
    clips = torch.from_numpy(table.clips[indices]).to(device=device, dtype=torch.float32)
    present = torch.from_numpy(table.present[indices]).to(device)
    view_types = torch.arange(len(VIEW_TYPES), device=device).expand(len(indices), -1)
    return clips, view_types, present


def _batches(count: int, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, count, batch_size):
        yield np.arange(start, min(start + batch_size, count))


@torch.no_grad()
def encode_clip_table(
    model: VideoTextModel, table: ClipTable, batch_size: int = 16, with_views: bool = False
) -> tuple[np.ndarray, list[dict[int, np.ndarray]]]:
    """Embed every study of ``table``; returns unit study vectors (N, D) and, if asked, unit per-series vectors.

    A series' vector pools only the slots of that series, such as the three
    levels of a SAX stack or the one slot of a long-axis view. It goes
    through the same attention pooling and projection as the study vector,
    so it lives in the same space as text.
    """
    model.eval()
    device = next(model.video.parameters()).device
    studies: list[np.ndarray] = []
    views: list[dict[int, np.ndarray]] = []
    for indices in _batches(len(table), batch_size):
        clips, view_types, present = batch_tensors(table, indices, device)
        with autocast_for(device):
            features = model.video.slice_features(clips, view_types, present)
            study = model.video.pool_groups(features, present)
        studies.append(F.normalize(study.float(), dim=-1).cpu().numpy())
        if not with_views:
            continue
        for row, index in enumerate(indices):
            vectors = {}
            for series_pk, slots in table.series_slots[index].items():
                mask = torch.zeros(1, len(VIEW_TYPES), dtype=torch.bool, device=device)
                mask[0, slots] = True
                with autocast_for(device):
                    view = model.video.pool_groups(features[row : row + 1], mask)
                vectors[series_pk] = F.normalize(view.float(), dim=-1)[0].cpu().numpy()
            views.append(vectors)
    dimension = model.config.embed_dim
    return (np.concatenate(studies) if studies else np.zeros((0, dimension), dtype=np.float32)), views


@torch.no_grad()
def encode_texts(model: VideoTextModel, texts: list[str]) -> np.ndarray:
    """Embed texts as unit vectors (N, D), float32."""
    model.eval()
    if not texts:
        return np.zeros((0, model.config.embed_dim), dtype=np.float32)
    return model.encode_text(texts).float().cpu().numpy()
