"""Configuration of the published CMR-CLIP model, as data.

The defaults describe the released checkpoint (``makiyeah/CMRCLIP`` on the
Hugging Face Hub, trained by Nakashima et al. from the ``Makiya11/CMRCLIP``
code): a divided space-time ViT-B/16 video tower over up to 64 frames, a
BERT-base text tower with the Bio_ClinicalBERT vocabulary, and ReLU + Linear
projections of both towers into a shared 512-d space. Tests build smaller
variants with :func:`dataclasses.replace`; only the defaults load the
published weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

AttentionBackend = Literal["sdpa", "eager"]


@dataclass(frozen=True)
class VideoTowerConfig:
    """Shape of the space-time video transformer.

    ``attention_backend`` selects ``torch.nn.functional.scaled_dot_product_attention``
    (``"sdpa"``, the default) or an explicit softmax(QKᵀ/√d)V (``"eager"``,
    kept as the plain reference for benchmarks and tests). Both compute the
    same function.
    """

    image_size: int = 224  # pixels, square
    patch_size: int = 16  # pixels, so 14 × 14 = 196 patches per 224 × 224 frame
    in_channels: int = 3
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    max_frames: int = 64
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    attention_backend: AttentionBackend = "sdpa"

    @property
    def patches_per_frame(self) -> int:
        """Number of patch tokens in one frame."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def mlp_width(self) -> int:
        """Hidden width of each block's MLP."""
        return int(self.width * self.mlp_ratio)


@dataclass(frozen=True)
class TextTowerConfig:
    """Shape of the BERT text tower and its input contract.

    The defaults are those of Bio_ClinicalBERT (BERT-base, cased WordPiece
    vocabulary of 28,996 entries). ``lowercase`` is True because the published
    model was trained with the Hugging Face ``BertTokenizer`` default, which
    lowercases and strips accents even though the vocabulary is cased.
    """

    vocab_size: int = 28996
    hidden_size: int = 768
    layers: int = 12
    heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    pad_token_id: int = 0
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    max_tokens: int = 512  # longer inputs are cut after this many tokens, [CLS] included
    lowercase: bool = True


@dataclass(frozen=True)
class CMRCLIPConfig:
    """Both towers and the size of the shared embedding space."""

    video: VideoTowerConfig = field(default_factory=VideoTowerConfig)
    text: TextTowerConfig = field(default_factory=TextTowerConfig)
    embed_dim: int = 512
    frames_per_study: int = 64  # frames sampled from a study "video" at inference

    def has_published_shapes(self) -> bool:
        """Return True when every weight shape equals the published model's.

        The attention backend, the frames per study and the tokenizer contract
        do not change any weight, so they are ignored here.
        """
        video = replace(self.video, attention_backend=PUBLISHED_CONFIG.video.attention_backend)
        text = replace(self.text, max_tokens=PUBLISHED_CONFIG.text.max_tokens, lowercase=PUBLISHED_CONFIG.text.lowercase)
        return replace(self, video=video, text=text, frames_per_study=PUBLISHED_CONFIG.frames_per_study) == PUBLISHED_CONFIG

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain JSON-compatible data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CMRCLIPConfig:
        """Build a configuration from :meth:`to_dict` output; unknown keys raise TypeError."""
        values = dict(data)
        video = VideoTowerConfig(**values.pop("video", {}))
        text = TextTowerConfig(**values.pop("text", {}))
        return cls(video=video, text=text, **values)


PUBLISHED_CONFIG = CMRCLIPConfig()
