"""The CMR-CLIP video tower: a ViT-B/16 with divided space-time attention.

A study "video" of F frames becomes 1 + F × 196 tokens: one CLS token, then
the 196 patch tokens of frame 0, of frame 1 and so on (frame-major). Each
block first attends across frames at each spatial position (time attention),
feeds that result only into the input of the attention across the patches of
each frame (space attention), and adds only the space result to the residual
stream. In both steps the CLS query attends to every token of the clip, and
every patch group also attends to the CLS key and value. This is the block order of
"Frozen in Time" (Bain et al., ICCV 2021), which CMR-CLIP was trained with.

Attention never forms a (tokens × tokens) matrix. The largest score tensor of
a 64-frame clip is 64 frames × 12 heads × 196 × 197 floats (119 MB in fp32),
where full attention over its 12,545 tokens would need 12 × 12,545² floats
(7.6 GB) in every block.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from embeddings.cmrclip.config import AttentionBackend, VideoTowerConfig

Axis = Literal["space", "time"]


def scaled_dot_product(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, backend: AttentionBackend) -> torch.Tensor:
    """Compute softmax(QKᵀ/√d)V over the last two dimensions, by the selected backend."""
    if backend == "sdpa":
        return F.scaled_dot_product_attention(query, key, value)
    scores = (query * query.shape[-1] ** -0.5) @ key.transpose(-2, -1)
    return scores.softmax(dim=-1) @ value


class DividedAttention(nn.Module):
    """Multi-head attention restricted to one frame (space) or one patch position (time).

    The parameter names ``qkv`` and ``proj`` and the (query | key | value) ×
    (head, head dim) layout of the ``qkv`` output match timm's ViT, so the
    published weights load unchanged.
    """

    def __init__(self, width: int, heads: int, qkv_bias: bool, backend: AttentionBackend) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.backend: AttentionBackend = backend
        self.qkv = nn.Linear(width, 3 * width, bias=qkv_bias)
        self.proj = nn.Linear(width, width)

    def forward(self, tokens: torch.Tensor, frames: int, axis: Axis) -> torch.Tensor:
        """Attend within groups along ``axis``; ``tokens`` is (batch, 1 + frames × patches, width)."""
        batch, length, width = tokens.shape
        head_dim = width // self.heads
        patches = (length - 1) // frames

        qkv = self.qkv(tokens).reshape(batch, length, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # each (batch, heads, length, head_dim)

        # The CLS query attends to the whole clip.
        cls_out = scaled_dot_product(query[:, :, :1], key, value, self.backend)

        # Patch queries attend to their own group plus the CLS key and value.
        groups = frames if axis == "space" else patches
        cls_key = key[:, :, :1].repeat_interleave(groups, dim=0)
        cls_value = value[:, :, :1].repeat_interleave(groups, dim=0)
        group_key = torch.cat([cls_key, _group(key, frames, patches, axis)], dim=2)
        group_value = torch.cat([cls_value, _group(value, frames, patches, axis)], dim=2)
        group_out = scaled_dot_product(_group(query, frames, patches, axis), group_key, group_value, self.backend)

        patch_out = _ungroup(group_out, batch, frames, patches, axis)
        out = torch.cat([cls_out, patch_out], dim=2)  # (batch, heads, length, head_dim)
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))


def _group(tensor: torch.Tensor, frames: int, patches: int, axis: Axis) -> torch.Tensor:
    """Reshape the patch tokens of (batch, heads, 1 + F·N, d) into (batch · groups, heads, group length, d)."""
    batch, heads, _, head_dim = tensor.shape
    grid = tensor[:, :, 1:].reshape(batch, heads, frames, patches, head_dim)
    if axis == "space":
        return grid.permute(0, 2, 1, 3, 4).reshape(batch * frames, heads, patches, head_dim)
    return grid.permute(0, 3, 1, 2, 4).reshape(batch * patches, heads, frames, head_dim)


def _ungroup(tensor: torch.Tensor, batch: int, frames: int, patches: int, axis: Axis) -> torch.Tensor:
    """Undo :func:`_group` for the patch queries' outputs: returns (batch, heads, F·N, d)."""
    _, heads, _, head_dim = tensor.shape
    if axis == "space":
        grid = tensor.reshape(batch, frames, heads, patches, head_dim).permute(0, 2, 1, 3, 4)
    else:
        grid = tensor.reshape(batch, patches, heads, frames, head_dim).permute(0, 2, 3, 1, 4)
    return grid.reshape(batch, heads, frames * patches, head_dim)


class Mlp(nn.Module):
    """Linear → exact GELU → Linear, named ``fc1``/``fc2`` as in timm."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(tokens)))


class SpaceTimeBlock(nn.Module):
    """One transformer block with time attention feeding space attention."""

    def __init__(self, config: VideoTowerConfig) -> None:
        super().__init__()
        width, eps = config.width, config.layer_norm_eps
        # Attribute order fixes the state-dict order of the published checkpoint.
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.attn = DividedAttention(width, config.heads, config.qkv_bias, config.attention_backend)
        self.timeattn = DividedAttention(width, config.heads, config.qkv_bias, config.attention_backend)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, config.mlp_width)
        self.norm3 = nn.LayerNorm(width, eps=eps)

    def forward(self, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        time_out = self.timeattn(self.norm3(tokens), frames, "time")
        space_out = self.attn(self.norm1(tokens + time_out), frames, "space")
        tokens = tokens + space_out
        return tokens + self.mlp(self.norm2(tokens))


class PatchEmbed(nn.Module):
    """Per-frame 16 × 16 patch projection, tokens concatenated frame after frame."""

    def __init__(self, config: VideoTowerConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.width, kernel_size=config.patch_size, stride=config.patch_size)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        batch, frames = video.shape[:2]
        patches = self.proj(video.flatten(0, 1)).flatten(2).transpose(1, 2)  # (batch · frames, N, width)
        return patches.reshape(batch, frames * patches.shape[1], patches.shape[2])


class SpaceTimeTransformer(nn.Module):
    """Video tower: (batch, frames, 3, 224, 224) normalised pixels → (batch, 768) CLS features."""

    def __init__(self, config: VideoTowerConfig) -> None:
        super().__init__()
        self.config = config
        patches = config.patches_per_frame
        # Attribute order fixes the state-dict order of the published checkpoint.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, config.width))
        self.temporal_embed = nn.Parameter(torch.zeros(1, config.max_frames, config.width))
        self.patch_embed = PatchEmbed(config)
        self.blocks = nn.ModuleList(SpaceTimeBlock(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as the published code did before training.

        Linear weights, the CLS token and the spatial position embedding get a
        truncated normal (std 0.02), biases zero, and the patch convolution
        keeps PyTorch's default. The temporal embedding starts at zero. Every
        time attention starts with zero ``qkv`` weight and bias, ``proj``
        weight all ones and zero bias. It then outputs exactly zero, so the
        untrained tower is a per-frame ViT plus a CLS token over all frames.
        """
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.zeros_(self.temporal_embed)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            zero_time_attention(block.timeattn)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Return the CLS token after the final LayerNorm, (batch, width)."""
        frames = self._check_input(video)
        patches = self.config.patches_per_frame

        tokens = self.patch_embed(video)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)

        # Spatial embedding tiled over frames plus the first `frames` temporal slots.
        spatial = self.pos_embed[:, 1:].repeat(1, frames, 1)
        temporal = self.temporal_embed[:, :frames].repeat_interleave(patches, dim=1)
        position = torch.cat([self.pos_embed[:, :1], spatial + temporal], dim=1)
        tokens = tokens + position

        for block in self.blocks:
            tokens = block(tokens, frames)
        return self.norm(tokens)[:, 0]

    def _check_input(self, video: torch.Tensor) -> int:
        config = self.config
        expected = (config.in_channels, config.image_size, config.image_size)
        if video.ndim != 5 or tuple(video.shape[2:]) != expected:
            raise ValueError(
                f"video tower input must be (batch, frames, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(video.shape)}"
            )
        frames = video.shape[1]
        if not 1 <= frames <= config.max_frames:
            raise ValueError(f"video tower takes 1 to {config.max_frames} frames, got {frames}")
        return frames


def zero_time_attention(attention: DividedAttention) -> None:
    """Set a time attention to the published initial values, which make it output zero."""
    with torch.no_grad():
        attention.qkv.weight.zero_()
        if attention.qkv.bias is not None:
            attention.qkv.bias.zero_()
        attention.proj.weight.fill_(1.0)
        attention.proj.bias.zero_()
