"""Tests of the CMR-CLIP video tower against independent reference computations."""

from __future__ import annotations

from dataclasses import replace

import pytest
import timm
import torch
import torch.nn.functional as F

from embeddings.cmrclip.config import PUBLISHED_CONFIG, VideoTowerConfig
from embeddings.cmrclip.model import CMRCLIP
from embeddings.cmrclip.video_tower import SpaceTimeTransformer, zero_time_attention

# Full image size (the position embedding is fixed at 14 × 14 patches), small width and depth.
SMALL = VideoTowerConfig(width=96, depth=2, heads=4, max_frames=8)


def randomise(tower: SpaceTimeTransformer, seed: int = 0, time_attention: bool = False) -> None:
    """Give every parameter random values, optionally leaving the time attention at its published init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in tower.named_parameters():
            if ".timeattn." in name and not time_attention:
                continue
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                parameter.add_(1.0)


def random_clip(frames: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(1, frames, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def attention(tokens: torch.Tensor, module: torch.nn.Module, heads: int, allowed: torch.Tensor) -> torch.Tensor:
    """Plain multi-head attention over all tokens with a boolean (query, key) mask."""
    length, width = tokens.shape
    head_dim = width // heads
    query, key, value = module.qkv(tokens).reshape(length, 3, heads, head_dim).permute(1, 2, 0, 3)
    scores = query @ key.transpose(-2, -1) / head_dim**0.5
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = scores.softmax(-1) @ value
    return module.proj(out.transpose(0, 1).reshape(length, width))


def divided_masks(frames: int, patches: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of (query, key) pairs that space and time attention allow, CLS at index 0."""
    frame = torch.cat([torch.tensor([-1]), torch.arange(frames).repeat_interleave(patches)])
    position = torch.cat([torch.tensor([-1]), torch.arange(patches).repeat(frames)])
    is_cls = frame < 0
    space = (frame[:, None] == frame[None, :]) | is_cls[None, :] | is_cls[:, None]
    time = (position[:, None] == position[None, :]) | is_cls[None, :] | is_cls[:, None]
    return space, time


def embed_tokens(tower: SpaceTimeTransformer, clip: torch.Tensor) -> torch.Tensor:
    """Patch, CLS and position embedding computed directly from the parameters, (tokens, width)."""
    frames = clip.shape[1]
    conv = tower.patch_embed.proj
    rows = []
    for index in range(frames):
        patches = F.conv2d(clip[0, index : index + 1], conv.weight, conv.bias, stride=16).flatten(2).transpose(1, 2)[0]
        rows.append(patches + tower.pos_embed[0, 1:] + tower.temporal_embed[0, index])
    cls = tower.cls_token[0] + tower.pos_embed[0, :1]
    return torch.cat([cls, *rows])


def masked_reference(tower: SpaceTimeTransformer, clip: torch.Tensor, with_time: bool) -> torch.Tensor:
    """The tower's function written as full attention with masks, token by token."""
    frames, patches, heads = clip.shape[1], tower.config.patches_per_frame, tower.config.heads
    space_mask, time_mask = divided_masks(frames, patches)
    tokens = embed_tokens(tower, clip)
    for block in tower.blocks:
        time_out = attention(block.norm3(tokens), block.timeattn, heads, time_mask) if with_time else 0.0
        tokens = tokens + attention(block.norm1(tokens + time_out), block.attn, heads, space_mask)
        tokens = tokens + block.mlp(block.norm2(tokens))
    return tower.norm(tokens)[0]


def frame_by_frame_reference(tower: SpaceTimeTransformer, clip: torch.Tensor) -> torch.Tensor:
    """Run each frame's patches through plain per-frame ViT attention; the CLS query attends to all frames."""
    frames, patches, heads = clip.shape[1], tower.config.patches_per_frame, tower.config.heads
    tokens = embed_tokens(tower, clip)
    width = tokens.shape[1]
    head_dim = width // heads
    for block in tower.blocks:
        normed = block.norm1(tokens)
        query, key, value = block.attn.qkv(normed).reshape(-1, 3, heads, head_dim).permute(1, 2, 0, 3)
        outputs = [F.softmax(query[:, :1] @ key.transpose(-2, -1) / head_dim**0.5, -1) @ value]
        for index in range(frames):
            keep = torch.cat([torch.tensor([0]), 1 + index * patches + torch.arange(patches)])
            frame_query = query[:, keep[1:]]
            weights = F.softmax(frame_query @ key[:, keep].transpose(-2, -1) / head_dim**0.5, -1)
            outputs.append(weights @ value[:, keep])
        merged = torch.cat(outputs, dim=1).transpose(0, 1).reshape(-1, width)
        tokens = tokens + block.attn.proj(merged)
        tokens = tokens + block.mlp(block.norm2(tokens))
    return tower.norm(tokens)[0]


@torch.no_grad()
def test_zero_time_attention_equals_frame_by_frame() -> None:
    tower = SpaceTimeTransformer(SMALL).eval()
    randomise(tower, time_attention=False)
    clip = random_clip(frames=4)

    output = tower(clip)[0]

    assert torch.count_nonzero(tower.blocks[0].timeattn.qkv.weight) == 0
    assert torch.allclose(output, frame_by_frame_reference(tower, clip), atol=1e-5)


@torch.no_grad()
def test_published_init_zeroes_time_attention_output() -> None:
    tower = SpaceTimeTransformer(SMALL).eval()
    block = tower.blocks[0]
    tokens = torch.randn(1, 1 + 3 * SMALL.patches_per_frame, SMALL.width)

    output = block.timeattn(block.norm3(tokens), 3, "time")

    assert torch.equal(output, torch.zeros_like(output))
    assert torch.equal(block.timeattn.proj.weight, torch.ones_like(block.timeattn.proj.weight))
    assert torch.count_nonzero(tower.temporal_embed) == 0


@torch.no_grad()
@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_trained_time_attention_matches_masked_reference(backend: str) -> None:
    tower = SpaceTimeTransformer(replace(SMALL, attention_backend=backend)).eval()
    randomise(tower, time_attention=True)
    clip = random_clip(frames=3)

    output = tower(clip)[0]

    assert torch.allclose(output, masked_reference(tower, clip, with_time=True), atol=1e-5)
    assert not torch.allclose(output, masked_reference(tower, clip, with_time=False), atol=1e-3)


@torch.no_grad()
def test_backends_agree_on_eight_frames() -> None:
    sdpa = SpaceTimeTransformer(SMALL).eval()
    randomise(sdpa, time_attention=True)
    eager = SpaceTimeTransformer(replace(SMALL, attention_backend="eager")).eval()
    eager.load_state_dict(sdpa.state_dict())
    clip = random_clip(frames=8)

    assert torch.allclose(sdpa(clip), eager(clip), atol=1e-5)


@torch.no_grad()
def test_single_frame_equals_timm_vit() -> None:
    tower = SpaceTimeTransformer(SMALL).eval()
    randomise(tower, time_attention=False)
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=224, patch_size=16, embed_dim=SMALL.width, depth=SMALL.depth, num_heads=SMALL.heads, num_classes=0
    ).eval()
    shared = {key: value for key, value in tower.state_dict().items() if key in vit.state_dict()}
    missing, _ = vit.load_state_dict(shared, strict=False)
    tower.temporal_embed.zero_()  # timm's ViT has no temporal embedding
    clip = random_clip(frames=1)

    expected = vit.forward_features(clip[:, 0])[:, 0]

    assert missing == []
    assert torch.allclose(tower(clip), expected, atol=1e-5)


@torch.no_grad()
def test_first_frames_use_first_temporal_slots() -> None:
    tower = SpaceTimeTransformer(SMALL).eval()
    randomise(tower, time_attention=True)
    clip = random_clip(frames=2)
    before = tower(clip)

    # A random vector, because LayerNorm would cancel a shift by the same value in every channel.
    shift = torch.randn(SMALL.width, generator=torch.Generator().manual_seed(2))
    tower.temporal_embed[:, 2:] += shift
    unchanged = tower(clip)
    tower.temporal_embed[:, 1] += shift
    changed = tower(clip)

    assert torch.equal(before, unchanged)
    assert not torch.allclose(before, changed, atol=1e-3)


@torch.no_grad()
def test_frame_order_changes_output() -> None:
    tower = SpaceTimeTransformer(SMALL).eval()
    randomise(tower, time_attention=True)
    clip = random_clip(frames=3)

    assert not torch.allclose(tower(clip), tower(clip.flip(1)), atol=1e-4)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 9, 3, 224, 224), "1 to 8 frames"),
        ((1, 0, 3, 224, 224), "1 to 8 frames"),
        ((1, 2, 1, 224, 224), "must be"),
        ((1, 2, 3, 256, 256), "must be"),
        ((2, 3, 224, 224), "must be"),
    ],
)
def test_invalid_input_shape_raises(shape: tuple[int, ...], message: str) -> None:
    tower = SpaceTimeTransformer(SMALL)

    with pytest.raises(ValueError, match=message):
        tower(torch.zeros(shape))


@torch.no_grad()
def test_full_size_forward_gives_512_vector() -> None:
    model = CMRCLIP(PUBLISHED_CONFIG).eval()
    clip = random_clip(frames=2)

    embedding = model.encode_video(clip)

    assert embedding.shape == (1, 512)
    assert torch.isfinite(embedding).all()
    assert model.video_model.config.depth == 12


def test_zero_time_attention_helper_resets_trained_weights() -> None:
    tower = SpaceTimeTransformer(SMALL)
    randomise(tower, time_attention=True)

    zero_time_attention(tower.blocks[1].timeattn)

    assert torch.count_nonzero(tower.blocks[1].timeattn.qkv.bias) == 0
    assert torch.count_nonzero(tower.blocks[0].timeattn.qkv.bias) > 0
