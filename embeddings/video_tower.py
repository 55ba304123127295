"""Video tower: a small (2+1)D convolutional network per clip slice and attention fusion per study.

Each clip slice (one SAX or LGE level, or one long-axis view, ``frames`` ×
``size`` × ``size``) goes through the same network. Every block factorises a
3-D convolution into a spatial (1 × 3 × 3) and a temporal (3 × 1 × 1) one, as
in R(2+1)D (Tran et al., CVPR 2018), so each block mixes wall thickness and
wall motion with fewer weights and multiply-adds than a full 3 × 3 × 3
kernel. Measured speeds are in docs/benchmarks.md. A learned view-type
embedding (sax_basal … lge_apical) is added to each slice feature, and gated
attention pooling (Ilse et al., ICML 2018) over the slices that are present
gives the study feature, so a study with only a SAX stack (as real archives
often have) is handled like one with all views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embeddings.clips import VIEW_TYPES


class Conv2Plus1d(nn.Sequential):
    """A spatial then a temporal convolution, with batch norm and ReLU between them."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int]) -> None:
        middle = out_channels
        super().__init__(
            nn.Conv3d(in_channels, middle, (1, 3, 3), stride=(1, stride[1], stride[2]), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(middle),
            nn.ReLU(inplace=True),
            nn.Conv3d(middle, out_channels, (3, 1, 1), stride=(stride[0], 1, 1), padding=(1, 0, 0), bias=False),
        )


class ResidualBlock(nn.Module):
    """Two (2+1)D convolutions with a residual shortcut. Only the first convolution strides."""

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv1 = Conv2Plus1d(in_channels, out_channels, stride)
        self.norm1 = nn.BatchNorm3d(out_channels)
        self.conv2 = Conv2Plus1d(out_channels, out_channels, (1, 1, 1))
        self.norm2 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm3d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ClipEncoder(nn.Module):
    """Encode single-channel clips (N, 1, frames, size, size) into features (N, widths[-1])."""

    def __init__(self, widths: Sequence[int], strides: Sequence[Sequence[int]]) -> None:
        super().__init__()
        if len(widths) != len(strides) + 1:
            raise ValueError(f"need one stride per block after the stem: widths {widths}, strides {strides}")
        self.stem = nn.Sequential(
            nn.Conv3d(1, widths[0], (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(
            *(
                ResidualBlock(widths[i], widths[i + 1], tuple(strides[i]))  # type: ignore[arg-type]
                for i in range(len(strides))
            )
        )
        self.output_dim = widths[-1]

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.stem(clips))
        return features.mean(dim=(2, 3, 4))


class AttentionPool(nn.Module):
    """Gated attention pooling over a set of features, ignoring padded entries."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Pool ``features`` (B, S, dim) over S where ``present`` (B, S) is true. Each row needs one present entry."""
        logits = self.score(torch.tanh(self.value(features)) * torch.sigmoid(self.gate(features))).squeeze(-1)
        logits = logits.masked_fill(~present, torch.finfo(logits.dtype).min)
        weights = torch.softmax(logits, dim=1)
        return (weights.unsqueeze(-1) * features).sum(dim=1)


class VideoTower(nn.Module):
    """Encode the clip slices of a batch of studies into study and per-series features.

    Input: ``clips`` (B, S, frames, size, size), ``view_types`` (B, S) indices
    into :data:`embeddings.clips.VIEW_TYPES`, ``present`` (B, S) bool. The
    slot order does not matter because the view type is an input.
    """

    def __init__(
        self, widths: Sequence[int], strides: Sequence[Sequence[int]], output_dim: int, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = ClipEncoder(widths, strides)
        feature_dim = self.encoder.output_dim
        self.view_embedding = nn.Embedding(len(VIEW_TYPES), feature_dim)
        nn.init.normal_(self.view_embedding.weight, std=0.02)
        self.pool = AttentionPool(feature_dim, feature_dim // 2)
        self.proj = nn.Sequential(
            nn.LayerNorm(feature_dim), nn.Dropout(dropout), nn.Linear(feature_dim, output_dim)
        )

    def slice_features(self, clips: torch.Tensor, view_types: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Return per-slice features (B, S, feature_dim); only present slices are run."""
        batch, slots = present.shape
        features = clips.new_zeros((batch, slots, self.encoder.output_dim))
        flat = clips[present].unsqueeze(1)  # (N, 1, frames, size, size)
        if flat.shape[0]:
            encoded = self.encoder(flat).to(features.dtype)
            features[present] = encoded + self.view_embedding(view_types[present]).to(features.dtype)
        return features

    def forward(self, clips: torch.Tensor, view_types: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Return study features in the shared space (B, output_dim), not normalised."""
        return self.proj(self.pool(self.slice_features(clips, view_types, present), present))

    def pool_groups(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Project pooled features of slice groups (G, S, feature_dim) with masks (G, S), e.g. one series each."""
        return self.proj(self.pool(features, present))
