"""Tests of the CMR-CLIP tokenizer contract and text tower."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from embeddings.cmrclip.config import CMRCLIPConfig, TextTowerConfig, VideoTowerConfig
from embeddings.cmrclip.model import CMRCLIP
from embeddings.cmrclip.text_tower import masked_mean
from embeddings.cmrclip.tokenizer import TokenizerError, load_tokenizer

# Cased entries matter: with lowercasing off, "Dilated" and "LV" map to other ids.
WORDS = ["dilated", "Dilated", "lv", "LV", "left", "ventricle", "is", "normal", "scar", "."]
SMALL_TEXT = TextTowerConfig(hidden_size=64, layers=2, heads=4, intermediate_size=128)
SMALL_VIDEO = VideoTowerConfig(width=32, depth=1, heads=2, max_frames=2)


def write_vocabulary(folder: Path, size: int = SMALL_TEXT.vocab_size, words: list[str] = WORDS) -> Path:
    """Write a BERT vocab.txt of ``size`` entries: [PAD] first, specials, ``words``, then filler."""
    entries = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    entries += [f"##filler{i}" for i in range(size - len(entries))]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(entries) + "\n", encoding="utf-8")
    return folder


def small_model(text: TextTowerConfig = SMALL_TEXT) -> CMRCLIP:
    torch.manual_seed(0)
    return CMRCLIP(CMRCLIPConfig(video=SMALL_VIDEO, text=text, embed_dim=16)).eval()


def embed(model: CMRCLIP, folder: Path, texts: list[str]) -> torch.Tensor:
    tokens = load_tokenizer(folder, model.config.text)(texts)
    with torch.no_grad():
        return model.encode_text(tokens.input_ids, tokens.attention_mask)


def test_casing_gives_identical_embeddings(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path)
    model = small_model()

    upper, lower = embed(model, folder, ["Dilated LV", "dilated lv"])

    assert upper.shape == (16,)
    assert torch.equal(upper, lower)


def test_casing_matters_without_lowercasing(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path)
    model = small_model(replace(SMALL_TEXT, lowercase=False))

    upper, lower = embed(model, folder, ["Dilated LV", "dilated lv"])

    assert not torch.allclose(upper, lower)


def test_accents_are_stripped(tmp_path: Path) -> None:
    tokenizer = load_tokenizer(write_vocabulary(tmp_path, words=WORDS + ["cafe"]), SMALL_TEXT)

    batch = tokenizer(["Café", "cafe"])

    assert torch.equal(batch.input_ids[0], batch.input_ids[1])


def test_padding_does_not_change_embedding(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path)
    model = small_model()

    alone = embed(model, folder, ["lv"])[0]
    padded = embed(model, folder, ["lv", "left ventricle is dilated . scar scar scar"])[0]

    assert torch.allclose(alone, padded, atol=1e-5)


def test_long_text_cut_after_max_tokens(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path)
    model = small_model(replace(SMALL_TEXT, max_tokens=8))
    tokenizer = load_tokenizer(folder, model.config.text)

    long = tokenizer(["left ventricle is dilated . scar scar scar scar scar"])
    first_eight = long.input_ids[:, :8]

    with torch.no_grad():
        cut = model.encode_text(long.input_ids, long.attention_mask)
        expected = model.encode_text(first_eight, torch.ones_like(first_eight))
    assert long.input_ids.shape[1] == 12  # [CLS] + 10 words + [SEP]: the tokenizer itself does not truncate
    assert torch.equal(cut, expected)


def test_masked_mean_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])

    assert torch.equal(masked_mean(hidden, mask), torch.tensor([[2.0, 3.0]]))
    assert torch.equal(masked_mean(hidden, torch.zeros_like(mask)), torch.zeros(1, 2))


def test_missing_vocabulary_raises(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="has no vocab.txt"):
        load_tokenizer(tmp_path, SMALL_TEXT)


def test_vocabulary_size_mismatch_raises(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path, size=30522)

    with pytest.raises(TokenizerError, match="30522 entries, but the text tower expects 28996"):
        load_tokenizer(folder, SMALL_TEXT)


def test_missing_special_token_raises(tmp_path: Path) -> None:
    folder = write_vocabulary(tmp_path)
    vocab = folder / "vocab.txt"
    vocab.write_text(vocab.read_text(encoding="utf-8").replace("[MASK]\n", "[unused99]\n"), encoding="utf-8")

    with pytest.raises(TokenizerError, match=r"lacks the special tokens \[MASK\]"):
        load_tokenizer(folder, SMALL_TEXT)


def test_single_string_rejected(tmp_path: Path) -> None:
    tokenizer = load_tokenizer(write_vocabulary(tmp_path), SMALL_TEXT)

    with pytest.raises(TypeError, match="sequence of texts"):
        tokenizer("dilated lv")


def test_cased_tokenizer_config_is_overridden(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = write_vocabulary(tmp_path)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}), encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        batch = load_tokenizer(folder, SMALL_TEXT)(["Dilated LV", "dilated lv"])

    assert torch.equal(batch.input_ids[0], batch.input_ids[1])
    assert "do_lower_case=False" in caplog.text
