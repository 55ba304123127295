"""Random clip augmentation for training: geometry, contrast and noise.

Real archives differ in patient position, in-plane rotation, field of view,
contrast and noise, so training shows the model each clip slice rotated, mirrored,
scaled, shifted, gamma-adjusted and noised. Every frame of a slice gets the
same transform, so motion is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random transforms; angles in degrees, shift as a fraction of the image side."""

    max_rotation_deg: float = 180.0
    mirror_probability: float = 0.5
    scale_range: tuple[float, float] = (0.85, 1.15)
    max_shift: float = 0.08
    gamma_range: tuple[float, float] = (0.7, 1.4)
    max_noise_std: float = 0.05


def augment_clips(clips: torch.Tensor, generator: torch.Generator, settings: AugmentSettings = AugmentSettings()) -> torch.Tensor:
    """Return randomly transformed clips; ``clips`` is (..., frames, size, size) with values in [0, 1]."""
    leading = clips.shape[:-3]
    frames, height, width = clips.shape[-3:]
    flat = clips.reshape(-1, frames, height, width).float()
    count = flat.shape[0]
    device = flat.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return (torch.rand(count, generator=generator) * (high - low) + low).to(device)

    angle = uniform(-settings.max_rotation_deg, settings.max_rotation_deg) * math.pi / 180.0
    scale = uniform(*settings.scale_range)
    mirror = torch.where(uniform(0.0, 1.0) < settings.mirror_probability, -1.0, 1.0)
    theta = torch.zeros(count, 2, 3, device=device)
    theta[:, 0, 0] = torch.cos(angle) / scale * mirror
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale * mirror
    theta[:, 1, 1] = torch.cos(angle) / scale
    theta[:, 0, 2] = uniform(-settings.max_shift, settings.max_shift) * 2
    theta[:, 1, 2] = uniform(-settings.max_shift, settings.max_shift) * 2
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    warped = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    gamma = uniform(*settings.gamma_range).view(-1, 1, 1, 1)
    noise_std = uniform(0.0, settings.max_noise_std).view(-1, 1, 1, 1)
    noise = torch.randn(flat.shape, generator=generator).to(device) * noise_std
    out = (warped.clamp(min=0.0) ** gamma + noise).clamp(0.0, 1.0)
    return out.reshape(*leading, frames, height, width).to(clips.dtype)
