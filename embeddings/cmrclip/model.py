"""The CMR-CLIP network: both towers and their projections into one space.

Attribute names and order reproduce the published state dict:
``text_model.*`` (BERT), ``video_model.*`` (space-time ViT), then
``txt_proj.1.*`` and ``vid_proj.1.*`` (the Linear after a ReLU). The
projections are not L2-normalised here; cosine similarity is the model's
score, so callers normalise both sides.
"""

from __future__ import annotations

import torch
from torch import nn

from embeddings.cmrclip.config import PUBLISHED_CONFIG, CMRCLIPConfig
from embeddings.cmrclip.text_tower import build_text_model, encode_tokens
from embeddings.cmrclip.video_tower import SpaceTimeTransformer


class CMRCLIP(nn.Module):
    """Video and text towers with ReLU + Linear projections to ``embed_dim``."""

    def __init__(self, config: CMRCLIPConfig = PUBLISHED_CONFIG) -> None:
        super().__init__()
        self.config = config
        self.text_model = build_text_model(config.text)
        self.video_model = SpaceTimeTransformer(config.video)
        self.txt_proj = nn.Sequential(nn.ReLU(), nn.Linear(config.text.hidden_size, config.embed_dim))
        self.vid_proj = nn.Sequential(nn.ReLU(), nn.Linear(config.video.width, config.embed_dim))

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """Embed ImageNet-normalised clips (batch, frames, 3, 224, 224) as (batch, embed_dim)."""
        return self.vid_proj(self.video_model(video))

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embed tokenised texts (batch, tokens) as (batch, embed_dim)."""
        features = encode_tokens(self.text_model, input_ids, attention_mask, self.config.text.max_tokens)
        return self.txt_proj(features)
