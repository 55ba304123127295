"""Contrastive training of the video–text model on (study, impression) pairs from the catalog.

The loss is open_clip's symmetric InfoNCE (:class:`open_clip.ClipLoss`) with
a learned temperature. The optimiser is AdamW with a linear warmup and a
cosine decay per step, gradients are clipped by norm, CUDA runs under bf16
autocast, and every epoch writes a resumable checkpoint. The MiniLM text
encoder is locked, so its pooled sentence features are computed once before
the first epoch.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from open_clip import ClipLoss
from sqlalchemy.orm import Session

from embeddings.augment import AugmentSettings, augment_clips
from embeddings.checkpoint import load_checkpoint, save_checkpoint
from embeddings.clips import CINE_VIEW_TYPES, LGE_VIEW_TYPES, VIEW_TYPES, ClipCache
from embeddings.data import DEFAULT_SPLIT_FRACTIONS, ClipTable, StudyRecord, load_clip_table, load_study_records
from embeddings.inference import autocast_for, batch_tensors, default_device, encode_clip_table
from embeddings.metrics import retrieval_metrics
from embeddings.model import VideoTextModel, load_model_config

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "model.pt"
HISTORY_FILE = "history.json"


@dataclass(frozen=True)
class TrainOptions:
    """Hyperparameters of one training run. Warmup is in epochs, the learning rate is the peak after warmup."""

    config: str = "cmr-video-text-small"
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 2.0
    grad_clip_norm: float = 1.0
    seed: int = 0
    split_fractions: tuple[float, float] = DEFAULT_SPLIT_FRACTIONS  # train and validation shares of patients; the rest is test
    augment: bool = True
    # Training drops views at random so that studies with fewer views, such as real SAX-only
    # archives, look like something the model has seen: all but the cine SAX slots with
    # probability sax_only_probability, else each other view group with probability view_dropout.
    sax_only_probability: float = 0.2
    view_dropout: float = 0.15
    max_studies: int | None = None  # use only the first N training studies (for smoke tests)


@dataclass
class EpochRecord:
    """Loss and validation retrieval after one epoch."""

    epoch: int
    loss: float
    seconds: float
    validation: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingData:
    """Clip tables and precomputed sentence features of the train and validation splits."""

    train: ClipTable
    validation: ClipTable
    train_features: torch.Tensor
    validation_features: torch.Tensor


@dataclass(frozen=True)
class TrainResult:
    """Path and model id of the best checkpoint, and the per-epoch history."""

    checkpoint: Path
    model_id: str
    history: list[dict[str, Any]]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_training_data(
    session: Session,
    model: VideoTextModel,
    options: TrainOptions,
    cache: ClipCache,
    on_study: Callable[[], None] | None = None,
) -> TrainingData:
    """Load clips and impressions of the train and validation splits.

    Raises:
        ValueError: fewer than two training or validation studies have both
            a usable cine and a report impression.
    """
    records = load_study_records(session, options.seed, require_impression=True, fractions=options.split_fractions)
    by_split: dict[str, list[StudyRecord]] = {"train": [], "validation": []}
    for record in records:
        if record.split in by_split:
            by_split[record.split].append(record)
    if options.max_studies is not None:
        by_split["train"] = by_split["train"][: options.max_studies]
        by_split["validation"] = by_split["validation"][: max(2, options.max_studies // 4)]

    tables, features = {}, {}
    for split, split_records in by_split.items():
        table = load_clip_table(session, [r.study_pk for r in split_records], model.config.clip, cache, on_study)
        impressions = {r.study_pk: r.impression or "" for r in split_records}
        if len(table) < 2:
            raise ValueError(
                f"the {split} split has {len(table)} studies with a cine and an impression; training needs at "
                "least 2. Index more studies and import their reports with `cmr-search reports import`."
            )
        tables[split] = table
        features[split] = model.text.sentence_features([impressions[pk] for pk in table.study_pks]).cpu()
    logger.info("training on %d studies, validating on %d", len(tables["train"]), len(tables["validation"]))
    return TrainingData(tables["train"], tables["validation"], features["train"], features["validation"])


# Slot groups that are dropped together: one per series kind and view.
VIEW_GROUPS: tuple[tuple[str, ...], ...] = (("2ch",), ("3ch",), ("4ch",), LGE_VIEW_TYPES)
SAX_CINE_SLOTS = [VIEW_TYPES.index(view_type) for view_type in CINE_VIEW_TYPES[:3]]


def drop_views(present: torch.Tensor, generator: torch.Generator, sax_only_probability: float, view_dropout: float) -> torch.Tensor:
    """Return a copy of the (B, slots) present mask with random view groups removed.

    The cine SAX slots are never dropped, and a study without them keeps all its views.
    """
    kept = present.clone()
    has_sax = present[:, SAX_CINE_SLOTS].any(dim=1).cpu()
    sax_only = torch.rand(len(present), generator=generator) < sax_only_probability
    for group in VIEW_GROUPS:
        slots = [VIEW_TYPES.index(view_type) for view_type in group]
        drop = (sax_only | (torch.rand(len(present), generator=generator) < view_dropout)) & has_sax
        rows = drop.nonzero().flatten().to(present.device)
        for slot in slots:
            kept[rows, slot] = False
    return kept


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Return the learning-rate factor per step: linear warmup to 1, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def validate(model: VideoTextModel, table: ClipTable, sentence_features: torch.Tensor) -> dict[str, float]:
    """Return retrieval metrics of the validation pairs."""
    study_vectors, _ = encode_clip_table(model, table)
    device = next(model.parameters()).device
    text_vectors = model.encode_text_features(sentence_features.to(device)).float().cpu().numpy()
    return retrieval_metrics(text_vectors, study_vectors)


class Trainer:
    """One training run: model, optimiser, schedule and the loop over epochs."""

    def __init__(
        self,
        model: VideoTextModel,
        data: TrainingData,
        options: TrainOptions,
        output_dir: Path,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.metadata = metadata or {}
        self.data = data
        self.options = options
        self.output_dir = output_dir
        self.device = next(model.video.parameters()).device
        self.loss = ClipLoss()
        trainable = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in trainable if p.ndim >= 2]
        no_decay = [p for p in trainable if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": options.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=options.learning_rate,
        )
        steps_per_epoch = self.steps_per_epoch()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            warmup_cosine(round(options.warmup_epochs * steps_per_epoch), options.epochs * steps_per_epoch),
        )
        self.generator = torch.Generator().manual_seed(options.seed)
        self.epoch = 0
        self.best_score = -math.inf
        self.history: list[EpochRecord] = []

    def steps_per_epoch(self) -> int:
        """Return the number of batches per epoch. A last batch of one study is dropped because it has no negatives."""
        count = len(self.data.train)
        full, remainder = divmod(count, self.options.batch_size)
        return full + (1 if remainder >= 2 else 0)

    def resume_state(self) -> dict[str, Any]:
        """Return everything needed to continue this run after the current epoch."""
        return {
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best_score": self.best_score,
            "history": [asdict(record) for record in self.history],
            "options": asdict(self.options),
        }

    def load_resume_state(self, state: dict[str, Any]) -> None:
        """Continue from a state written by :meth:`resume_state`."""
        self.epoch = int(state["epoch"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.best_score = float(state["best_score"])
        self.history = [EpochRecord(**record) for record in state["history"]]

    def train_epoch(self, on_step: Callable[[float], None] | None = None) -> float:
        """Run one epoch and return the mean loss."""
        self.model.train()
        order = torch.randperm(len(self.data.train), generator=self.generator).numpy()
        losses = []
        for step in range(self.steps_per_epoch()):
            indices = np.sort(order[step * self.options.batch_size : (step + 1) * self.options.batch_size])
            clips, view_types, present = batch_tensors(self.data.train, indices, self.device)
            if self.options.augment:
                clips = augment_clips(clips, self.generator)
                present = drop_views(present, self.generator, self.options.sax_only_probability, self.options.view_dropout)
            features = self.data.train_features[indices].to(self.device)
            with autocast_for(self.device):
                video, text, logit_scale = self.model(clips, view_types, present, features)
                loss = self.loss(video.float(), text.float(), logit_scale.float())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.grad_clip_norm)
            self.optimizer.step()
            self.scheduler.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(losses[-1])
        return float(np.mean(losses))

    def score(self, validation: dict[str, float]) -> float:
        """Return the model-selection score: mean text→study Recall@1/5/10 on validation."""
        return float(np.mean([validation[f"text_to_study_r{k}"] for k in (1, 5, 10)]))

    def save(self, validation: dict[str, float]) -> str:
        """Write ``last.pt`` with resume state, and ``model.pt`` when validation improved; returns the last model id."""
        metadata = {**self.metadata, "epoch": self.epoch, "validation": validation, "options": asdict(self.options)}
        model_id = save_checkpoint(self.output_dir / LAST_CHECKPOINT, self.model, metadata, self.resume_state())
        score = self.score(validation)
        if score > self.best_score:
            self.best_score = score
            save_checkpoint(self.output_dir / BEST_CHECKPOINT, self.model, metadata)
            # The resume state must record the new best score too.
            save_checkpoint(self.output_dir / LAST_CHECKPOINT, self.model, metadata, self.resume_state())
        (self.output_dir / HISTORY_FILE).write_text(json.dumps([asdict(r) for r in self.history], indent=2))
        return model_id


def train(
    session: Session,
    cache: ClipCache,
    output_dir: Path,
    options: TrainOptions,
    resume: bool = False,
    device: str | None = None,
    show_progress: bool = True,
    metadata: dict[str, Any] | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train a model on the catalog behind ``session`` and write checkpoints to ``output_dir``.

    With ``resume``, training continues from ``output_dir/last.pt``; the
    model config of that run is kept and ``options.epochs`` may be larger.
    ``metadata`` (such as ``trained_on_synthetic_data``) is stored in every
    checkpoint. ``on_epoch_end`` is called with the epoch number after each
    epoch's checkpoint is written.

    Raises:
        ValueError: too few studies with a cine and an impression (see
            :func:`prepare_training_data`).
        embeddings.checkpoint.CheckpointError: ``resume`` without a readable ``last.pt``.
    """
    from embeddings.progress import training_progress

    seed_everything(options.seed)
    device = device or default_device()
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_state = None
    if resume:
        loaded = load_checkpoint(output_dir / LAST_CHECKPOINT, device=device)
        model, resume_state = loaded.model, loaded.resume_state
        if resume_state is None:
            raise ValueError(f"{output_dir / LAST_CHECKPOINT} has no resume state")
        logger.info("resuming %s after epoch %d", loaded.model_id, resume_state["epoch"])
    else:
        model = VideoTextModel(load_model_config(options.config)).to(device)

    with training_progress(show_progress) as progress:
        data = prepare_training_data(session, model, options, cache, progress.clip_loaded)
        trainer = Trainer(model, data, options, output_dir, metadata or {})
        if resume_state is not None:
            trainer.load_resume_state(resume_state)
        progress.start_training(options.epochs, trainer.steps_per_epoch(), trainer.epoch)
        model_id = ""
        while trainer.epoch < options.epochs:
            started = time.perf_counter()
            loss = trainer.train_epoch(progress.step)
            trainer.epoch += 1
            validation = validate(model, data.validation, data.validation_features)
            trainer.history.append(EpochRecord(trainer.epoch, loss, time.perf_counter() - started, validation))
            model_id = trainer.save(validation)
            progress.end_epoch(trainer.epoch, loss, validation)
            logger.info(
                "epoch %d: loss %.3f, validation text→study R@1 %.2f R@10 %.2f (%.0f s)",
                trainer.epoch, loss, validation["text_to_study_r1"], validation["text_to_study_r10"],
                time.perf_counter() - started,
            )
            if on_epoch_end is not None:
                on_epoch_end(trainer.epoch)
    best = output_dir / BEST_CHECKPOINT
    best_id = load_checkpoint(best).model_id if best.exists() else model_id
    return TrainResult(best, best_id, [asdict(r) for r in trainer.history])
