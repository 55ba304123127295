"""A tiny training run on the real Sunnybrook studies: checkpoints, resume and the train command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from embeddings.checkpoint import load_checkpoint
from embeddings.clips import VIEW_TYPES, ClipCache
from embeddings.factory import load_encoder
from embeddings.training import (
    BEST_CHECKPOINT,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    TrainOptions,
    drop_views,
    train,
    warmup_cosine,
)
from indexer.catalog.session import create_catalog_engine, session_factory

# With seed 5 and half the patients for training, the five Sunnybrook patients split 3 train / 2 validation.
OPTIONS = TrainOptions(epochs=2, batch_size=3, seed=5, split_fractions=(0.5, 0.5), warmup_epochs=1.0)


def run_training(settings, output: Path, options: TrainOptions, resume: bool = False, on_epoch_end=None):
    engine = create_catalog_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            return train(
                session,
                ClipCache(settings.clip_cache_dir),
                output,
                options,
                resume=resume,
                device="cpu",
                show_progress=False,
                metadata={"trained_on_synthetic_data": False},
                on_epoch_end=on_epoch_end,
            )
    finally:
        engine.dispose()


def test_warmup_cosine_schedule() -> None:
    factor = warmup_cosine(warmup_steps=4, total_steps=14)
    assert factor(0) == pytest.approx(0.25)
    assert factor(3) == pytest.approx(1.0)
    assert factor(9) == pytest.approx(0.5)
    assert factor(14) == pytest.approx(0.0)


def test_train_writes_checkpoints(sunnybrook_training_catalog, tmp_path: Path) -> None:
    result = run_training(sunnybrook_training_catalog, tmp_path / "run", OPTIONS)
    assert (tmp_path / "run" / LAST_CHECKPOINT).is_file()
    assert result.checkpoint == tmp_path / "run" / BEST_CHECKPOINT
    history = json.loads((tmp_path / "run" / HISTORY_FILE).read_text())
    assert [record["epoch"] for record in history] == [1, 2]
    for record in history:
        assert math.isfinite(record["loss"])
        assert record["validation"]["count"] == 2.0
        assert 0.0 <= record["validation"]["text_to_study_r1"] <= 1.0

    encoder = load_encoder(weights=result.checkpoint, device="cpu")
    assert encoder.model_id == result.model_id
    assert encoder.trained_on_synthetic_data is False
    assert encoder.metadata["options"]["seed"] == 5


def test_resume_matches_uninterrupted_run(sunnybrook_training_catalog, tmp_path: Path) -> None:
    straight = run_training(sunnybrook_training_catalog, tmp_path / "straight", OPTIONS)

    def interrupt(epoch: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(sunnybrook_training_catalog, tmp_path / "resumed", OPTIONS, on_epoch_end=interrupt)
    assert load_checkpoint(tmp_path / "resumed" / LAST_CHECKPOINT).metadata["epoch"] == 1

    resumed = run_training(sunnybrook_training_catalog, tmp_path / "resumed", OPTIONS, resume=True)
    assert [record["epoch"] for record in resumed.history] == [1, 2]
    assert resumed.history[1]["loss"] == pytest.approx(straight.history[1]["loss"], rel=1e-4)
    straight_last = load_checkpoint(tmp_path / "straight" / LAST_CHECKPOINT)
    resumed_last = load_checkpoint(tmp_path / "resumed" / LAST_CHECKPOINT)
    assert resumed_last.model_id == straight_last.model_id


def test_train_command_rejects_empty_catalog(tmp_path: Path) -> None:
    from cmr_search.cli import app

    result = CliRunner().invoke(app, ["train", "--data-dir", str(tmp_path / "empty"), "--epochs", "1", "--no-progress"])
    assert result.exit_code == 2


def test_train_command_with_progress(sunnybrook_training_catalog, tmp_path: Path) -> None:
    from cmr_search.cli import app

    output = tmp_path / "cli-run"
    arguments = [
        "train", "--data-dir", str(sunnybrook_training_catalog.data_dir), "--output", str(output),
        "--epochs", "1", "--batch-size", "3", "--seed", "5", "--train-fraction", "0.5", "--validation-fraction", "0.5",
        "--synthetic-data",
    ]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["checkpoint"] == str(output / BEST_CHECKPOINT)
    assert load_encoder(weights=output / BEST_CHECKPOINT, device="cpu").trained_on_synthetic_data is True


def test_train_command_rejects_bad_fractions(tmp_path: Path) -> None:
    from cmr_search.cli import app

    arguments = ["train", "--data-dir", str(tmp_path), "--train-fraction", "0.9", "--validation-fraction", "0.2"]
    assert CliRunner().invoke(app, arguments).exit_code == 2


def test_drop_views_keeps_sax_cine() -> None:
    present = torch.ones(400, len(VIEW_TYPES), dtype=torch.bool)
    present[:20, :3] = False  # studies without a cine SAX stack keep every view
    kept = drop_views(present, torch.Generator().manual_seed(0), sax_only_probability=0.5, view_dropout=0.5)

    assert kept[:20].equal(present[:20])
    assert kept[20:, :3].all()
    sax_only_share = float((kept[20:, 3:].sum(dim=1) == 0).float().mean())
    assert 0.45 < sax_only_share < 0.62  # expected 0.5 + 0.5 × 0.5⁴ ≈ 0.53: SAX-only draws plus all four groups dropped
    lge_slots = [VIEW_TYPES.index(v) for v in ("lge_basal", "lge_mid", "lge_apical")]
    assert kept[:, lge_slots].all(dim=1).equal(kept[:, lge_slots].any(dim=1))  # the LGE levels drop together
