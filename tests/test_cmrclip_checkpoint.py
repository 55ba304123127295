"""Tests of strict CMR-CLIP checkpoint loading against the published manifest."""

from __future__ import annotations

import gc
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from embeddings.cmrclip.checkpoint import (
    LEGACY_POSITION_IDS,
    CheckpointError,
    check_model_against_manifest,
    load_checkpoint,
    model_layout,
    published_layout,
    read_manifest,
    read_state_dict,
    save_checkpoint,
    weights_digest,
)
from embeddings.cmrclip.config import PUBLISHED_CONFIG, CMRCLIPConfig, TextTowerConfig, VideoTowerConfig
from embeddings.cmrclip.model import CMRCLIP

SMALL = CMRCLIPConfig(
    video=VideoTowerConfig(width=32, depth=1, heads=2, max_frames=4),
    text=TextTowerConfig(vocab_size=200, hidden_size=32, layers=1, heads=2, intermediate_size=64),
    embed_dim=16,
)
LAYOUTS = [
    pytest.param(False, False, id="plain"),
    pytest.param(True, False, id="position-ids"),
    pytest.param(False, True, id="module-prefix"),
    pytest.param(True, True, id="both"),
]


def small_model(seed: int = 0) -> CMRCLIP:
    torch.manual_seed(seed)
    return CMRCLIP(SMALL)


def save_state(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(OrderedDict(state), path)
    return path


def test_manifest_lists_published_tensors() -> None:
    entries = read_manifest()
    without_legacy = [entry for entry in entries if entry.key != LEGACY_POSITION_IDS]

    assert len(entries) == 427
    assert len(without_legacy) == 426
    assert sum(torch.Size(entry.shape).numel() for entry in without_legacy) == 223_312_384
    assert {entry.dtype for entry in without_legacy} == {torch.float32}
    assert entries[0].key == LEGACY_POSITION_IDS
    assert entries[0].dtype == torch.int64


def test_full_size_round_trip_matches_manifest(tmp_path: Path) -> None:
    """The one full-size test: ~0.9 GB per copy of the weights."""
    model = CMRCLIP(PUBLISHED_CONFIG)
    layout = model_layout(model)
    assert list(layout.items()) == list(published_layout().items())  # keys, order, shapes and dtypes

    path = tmp_path / "pytorch_model.bin"
    save_checkpoint(model, path, legacy_position_ids=True, data_parallel_prefix=True)
    saved_keys = list(read_state_dict(path))
    assert saved_keys == ["module." + entry.key for entry in read_manifest()]

    original = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    del model
    gc.collect()
    loaded = load_checkpoint(path)

    loaded_state = loaded.model.state_dict()
    assert list(model_layout(loaded.model).items()) == list(published_layout().items())
    mismatched = [key for key in original if not torch.equal(original[key], loaded_state[key])]
    assert mismatched == []
    assert not loaded.model.training
    assert loaded.digest == weights_digest(original)


@pytest.mark.parametrize(("position_ids", "prefix"), LAYOUTS)
def test_published_layouts_load_strictly(tmp_path: Path, position_ids: bool, prefix: bool) -> None:
    model = small_model()
    path = tmp_path / "model.bin"
    save_checkpoint(model, path, legacy_position_ids=position_ids, data_parallel_prefix=prefix)

    loaded = load_checkpoint(path, SMALL)

    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], tensor), key
    assert loaded.digest == weights_digest(model.state_dict())


def test_missing_key_is_named(tmp_path: Path) -> None:
    state = small_model().state_dict()
    del state["video_model.blocks.0.timeattn.qkv.bias"]

    with pytest.raises(CheckpointError, match=r"missing keys: video_model\.blocks\.0\.timeattn\.qkv\.bias"):
        load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)


def test_unexpected_key_is_named(tmp_path: Path) -> None:
    state = small_model().state_dict()
    state["video_model.head.weight"] = torch.zeros(10, 32)

    with pytest.raises(CheckpointError, match=r"unexpected keys: video_model\.head\.weight"):
        load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    state = small_model().state_dict()
    state["video_model.temporal_embed"] = torch.zeros(1, 8, 32)

    with pytest.raises(CheckpointError, match=r"temporal_embed has shape \[1, 8, 32\], expected \[1, 4, 32\]"):
        load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)


def test_partial_prefix_raises(tmp_path: Path) -> None:
    state = {("module." + key if key.startswith("video") else key): value for key, value in small_model().state_dict().items()}

    with pytest.raises(CheckpointError, match="only some keys carry the 'module.' prefix"):
        load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)


def test_altered_position_ids_raise(tmp_path: Path) -> None:
    state = dict(small_model().state_dict())
    state[LEGACY_POSITION_IDS] = torch.arange(512).flip(0).unsqueeze(0)

    with pytest.raises(CheckpointError, match="position_ids is not the constant"):
        load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)


def test_integer_tensor_where_float_expected_raises(tmp_path: Path) -> None:
    state = small_model().state_dict()
    state["vid_proj.1.bias"] = torch.zeros(16, dtype=torch.int32)

    with pytest.raises(CheckpointError, match=r"vid_proj\.1\.bias has dtype torch\.int32"):
        load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)


def test_half_precision_copy_loads_as_float32(tmp_path: Path) -> None:
    model = small_model()
    state = {key: tensor.half() for key, tensor in model.state_dict().items()}

    loaded = load_checkpoint(save_state(state, tmp_path / "model.bin"), SMALL)

    weight = loaded.model.state_dict()["vid_proj.1.weight"]
    assert weight.dtype == torch.float32
    assert torch.equal(weight, model.state_dict()["vid_proj.1.weight"].half().float())


def test_training_checkpoint_wrapper_unwrapped(tmp_path: Path) -> None:
    model = small_model()
    path = tmp_path / "checkpoint-epoch100.pth"
    state = OrderedDict(("module." + key, value) for key, value in model.state_dict().items())
    torch.save({"epoch": 100, "state_dict": state}, path)

    loaded = load_checkpoint(path, SMALL)

    assert loaded.digest == weights_digest(model.state_dict())


def test_safetensors_file_loads(tmp_path: Path) -> None:
    model = small_model()
    path = tmp_path / "model.safetensors"
    save_file({key: value.contiguous() for key, value in model.state_dict().items()}, str(path))

    loaded = load_checkpoint(path, SMALL)

    assert loaded.digest == weights_digest(model.state_dict())


def test_pickled_objects_rejected(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    torch.save({"state_dict": small_model().state_dict(), "optimizer": Path("/")}, path)

    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path, SMALL)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.bin", SMALL)


def test_config_round_trips_as_data() -> None:
    eager = replace(PUBLISHED_CONFIG, video=replace(PUBLISHED_CONFIG.video, attention_backend="eager"))

    assert CMRCLIPConfig.from_dict(SMALL.to_dict()) == SMALL
    assert CMRCLIPConfig.from_dict(PUBLISHED_CONFIG.to_dict()) == PUBLISHED_CONFIG
    assert eager.has_published_shapes()
    assert replace(PUBLISHED_CONFIG, frames_per_study=16).has_published_shapes()
    assert not SMALL.has_published_shapes()
    assert not replace(PUBLISHED_CONFIG, embed_dim=256).has_published_shapes()


def test_digest_changes_with_one_weight() -> None:
    state = small_model().state_dict()
    before = weights_digest(state)
    state["vid_proj.1.bias"][0] += 1e-3

    assert weights_digest(state) != before
    assert weights_digest(small_model(seed=1).state_dict()) != before


def test_changed_network_fails_manifest_check() -> None:
    layout = published_layout()
    layout["text_model.embeddings.token_type_ids"] = ((1, 512), torch.int64)
    del layout["txt_proj.1.bias"]

    with pytest.raises(CheckpointError, match=r"text_model\.embeddings\.token_type_ids, txt_proj\.1\.bias"):
        check_model_against_manifest(layout)
