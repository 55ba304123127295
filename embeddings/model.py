"""The video–text model: video tower, text tower and a learned temperature.

Model configurations are JSON data under ``embeddings/configs/``, and
:class:`ModelConfig` is their typed form.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embeddings.clips import ClipSettings
from embeddings.text_tower import TextTower
from embeddings.video_tower import VideoTower

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class VideoConfig:
    """Widths of the stem and of each residual block, and the (time, row, column) stride of each block."""

    widths: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[tuple[int, int, int], ...] = ((2, 2, 2), (2, 2, 2), (1, 2, 2))
    dropout: float = 0.1


@dataclass(frozen=True)
class TextConfig:
    """Projection type of open_clip's HFTextEncoder ("linear" or "mlp") and the token limit."""

    proj_type: str = "mlp"
    context_length: int = 128


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model before its weights are loaded."""

    name: str
    version: str
    embed_dim: int
    clip: ClipSettings = field(default_factory=ClipSettings)
    video: VideoConfig = field(default_factory=VideoConfig)
    text: TextConfig = field(default_factory=TextConfig)
    init_logit_scale: float = math.log(1 / 0.07)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from its JSON form."""
        clip = dict(data.get("clip", {}))
        if "sax_positions" in clip:
            clip["sax_positions"] = tuple(clip["sax_positions"])
        video = dict(data.get("video", {}))
        if "widths" in video:
            video["widths"] = tuple(video["widths"])
        if "strides" in video:
            video["strides"] = tuple(tuple(s) for s in video["strides"])
        return cls(
            name=data["name"],
            version=data["version"],
            embed_dim=int(data["embed_dim"]),
            clip=ClipSettings(**clip),
            video=VideoConfig(**video),
            text=TextConfig(**data.get("text", {})),
            init_logit_scale=float(data.get("init_logit_scale", math.log(1 / 0.07))),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of this config."""
        return json.loads(json.dumps(asdict(self)))


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """Read a model config by file path or by name in ``embeddings/configs/`` (without ``.json``)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        available = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"model config {name_or_path} not found; configs in {CONFIG_DIR}: {available}")
    return ModelConfig.from_dict(json.loads(path.read_text()))


class VideoTextModel(nn.Module):
    """Maps a study's clips and a report's text into one space of ``embed_dim`` dimensions."""

    def __init__(self, config: ModelConfig, text_model_path: Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.video = VideoTower(config.video.widths, config.video.strides, config.embed_dim, config.video.dropout)
        self.text = TextTower(
            config.embed_dim,
            proj_type=config.text.proj_type,
            context_length=config.text.context_length,
            model_path=text_model_path,
        )
        self.logit_scale = nn.Parameter(torch.tensor(config.init_logit_scale))

    def encode_video(
        self, clips: torch.Tensor, view_types: torch.Tensor, present: torch.Tensor, normalize: bool = True
    ) -> torch.Tensor:
        """Embed studies from clips (B, S, frames, size, size), as described in :class:`VideoTower`."""
        features = self.video(clips, view_types, present)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text_features(self, sentence_features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Embed precomputed MiniLM sentence features (N, 384)."""
        features = self.text.project(sentence_features)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> torch.Tensor:
        """Embed raw texts after expanding their abbreviations."""
        return self.encode_text_features(self.text.sentence_features(texts), normalize)

    def forward(
        self, clips: torch.Tensor, view_types: torch.Tensor, present: torch.Tensor, sentence_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return normalised study and text embeddings and the logit scale, as open_clip's ClipLoss expects."""
        video = self.encode_video(clips, view_types, present)
        text = self.encode_text_features(sentence_features)
        return video, text, self.logit_scale.exp().clamp(max=100.0)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Return the weights a checkpoint stores: all but the locked MiniLM transformer."""
        return {
            name: tensor.detach().cpu()
            for name, tensor in self.state_dict().items()
            if not name.startswith("text.encoder.transformer.")
        }
