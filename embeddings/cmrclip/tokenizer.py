"""The CMR-CLIP tokenizer: Bio_ClinicalBERT's WordPiece vocabulary, lowercasing on.

The vocabulary is read from ``vocab.txt`` in a folder that the user names, for
example a copy of the Bio_ClinicalBERT repository. Nothing is downloaded. The published model was trained with the Hugging Face
``BertTokenizer`` defaults, which lowercase and strip accents although the
vocabulary is cased, so queries must be tokenised the same way: "Dilated LV"
and "dilated lv" give the same token ids.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import BertTokenizer

from embeddings.cmrclip.config import TextTowerConfig

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# No limit at tokenisation: the text tower cuts after max_tokens, as in training.
UNLIMITED_LENGTH = 1_000_000


class TokenizerError(ValueError):
    """The tokenizer folder is missing, incomplete or does not fit the model."""


@dataclass(frozen=True)
class TokenBatch:
    """Token ids and attention mask of a padded batch, both (batch, tokens) int64."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor


class CMRCLIPTokenizer:
    """Tokenise texts for the CMR-CLIP text tower."""

    def __init__(self, folder: Path, config: TextTowerConfig) -> None:
        self.folder = Path(folder)
        vocab_path = self.folder / VOCAB_FILE
        if not vocab_path.is_file():
            raise TokenizerError(
                f"tokenizer folder {self.folder} has no {VOCAB_FILE}; pass the folder of the "
                "Bio_ClinicalBERT (or CMR-CLIP) download that contains it"
            )
        vocabulary = _read_vocabulary(vocab_path)
        if len(vocabulary) != config.vocab_size:
            raise TokenizerError(
                f"{vocab_path} has {len(vocabulary)} entries, but the text tower expects {config.vocab_size} "
                "(the Bio_ClinicalBERT vocabulary)"
            )
        missing = [token for token in SPECIAL_TOKENS if token not in vocabulary]
        if missing:
            raise TokenizerError(f"{vocab_path} lacks the special tokens {', '.join(missing)}")
        if vocabulary["[PAD]"] != config.pad_token_id:
            raise TokenizerError(
                f"{vocab_path} puts [PAD] at id {vocabulary['[PAD]']}, but the text tower pads with id {config.pad_token_id}"
            )
        _warn_on_casing_override(self.folder, config.lowercase)

        self._tokenizer = BertTokenizer(
            vocab=str(vocab_path),
            do_lower_case=config.lowercase,
            model_max_length=UNLIMITED_LENGTH,
        )

    def __call__(self, texts: Sequence[str]) -> TokenBatch:
        """Tokenise ``texts`` into one batch padded to its longest text."""
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not a single string")
        encoded = self._tokenizer(list(texts), padding=True, truncation=False, return_tensors="pt")
        return TokenBatch(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])


def load_tokenizer(folder: Path | str, config: TextTowerConfig) -> CMRCLIPTokenizer:
    """Read the vocabulary in ``folder`` and return the tokenizer the text tower was trained with."""
    return CMRCLIPTokenizer(Path(folder).expanduser(), config)


def _read_vocabulary(path: Path) -> dict[str, int]:
    with path.open(encoding="utf-8") as handle:
        tokens = [line.rstrip("\n") for line in handle]
    return {token: index for index, token in enumerate(tokens)}


def _warn_on_casing_override(folder: Path, lowercase: bool) -> None:
    """Log when the folder's tokenizer_config.json sets other casing than the model was trained with."""
    config_path = folder / "tokenizer_config.json"
    if not config_path.is_file():
        return
    try:
        stored = json.loads(config_path.read_text(encoding="utf-8")).get("do_lower_case")
    except (OSError, json.JSONDecodeError, AttributeError):
        return
    if stored is not None and bool(stored) != lowercase:
        logger.warning(
            "tokenizer_config.json sets do_lower_case=%s; CMR-CLIP was trained with do_lower_case=%s, "
            "which this tokenizer keeps",
            stored,
            lowercase,
        )
