"""The CMR-CLIP text tower: a BERT-base encoder with masked mean pooling.

The encoder is built from a configuration and never downloaded. Its weights
come from the CMR-CLIP checkpoint. The published model pools the mean of the
last hidden states over the tokens where ``attention_mask`` is 1, not the
[CLS] token and not BERT's pooler, which stays in the checkpoint unused.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, BertModel

from embeddings.cmrclip.config import TextTowerConfig


def build_text_model(config: TextTowerConfig) -> BertModel:
    """Build a randomly initialised ``BertModel`` (pooler included) of the configured shape."""
    bert_config = BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        pad_token_id=config.pad_token_id,
        layer_norm_eps=config.layer_norm_eps,
    )
    return BertModel(bert_config, add_pooling_layer=True)


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average ``hidden`` (batch, tokens, width) over tokens where ``attention_mask`` is 1.

    The token count is clamped at 1e-9, as in the published code, so an
    all-zero mask gives a zero vector rather than NaN.
    """
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def encode_tokens(model: BertModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_tokens: int) -> torch.Tensor:
    """Run BERT on token ids and return masked-mean features, (batch, hidden).

    Inputs longer than ``max_tokens`` are cut to their first ``max_tokens``
    tokens, as the published model does after tokenising, so a long text loses
    its final [SEP] exactly as in training.
    """
    input_ids = input_ids[:, :max_tokens]
    attention_mask = attention_mask[:, :max_tokens]
    hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return masked_mean(hidden, attention_mask)
