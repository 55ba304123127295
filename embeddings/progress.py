"""The rich progress display of ``cmr-search train``: clip loading, then steps with loss and validation recall."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainingProgress:
    """Progress bars for one training run; all methods do nothing when disabled."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.clips_task = progress.add_task("loading clips", total=None) if progress else None
        self.train_task = None
        self.last_validation = "–"

    def clip_loaded(self) -> None:
        """Count one study whose clips are loaded."""
        if self.progress is not None and self.clips_task is not None:
            self.progress.advance(self.clips_task)

    def start_training(self, epochs: int, steps_per_epoch: int, done_epochs: int) -> None:
        """Switch from clip loading to the training steps."""
        if self.progress is None:
            return
        if self.clips_task is not None:
            self.progress.update(self.clips_task, visible=False)
        self.train_task = self.progress.add_task(
            self.describe(done_epochs, float("nan")), total=epochs * steps_per_epoch, completed=done_epochs * steps_per_epoch
        )

    def step(self, loss: float) -> None:
        """Advance one training step and show its loss."""
        if self.progress is not None and self.train_task is not None:
            self.progress.update(self.train_task, advance=1, description=self.describe(None, loss))

    def end_epoch(self, epoch: int, loss: float, validation: dict[str, float]) -> None:
        """Show the epoch's mean loss and validation retrieval."""
        self.last_validation = f"R@1 {validation['text_to_study_r1']:.2f} R@10 {validation['text_to_study_r10']:.2f}"
        if self.progress is not None and self.train_task is not None:
            self.progress.update(self.train_task, description=self.describe(epoch, loss))

    def describe(self, epoch: int | None, loss: float) -> str:
        prefix = f"epoch {epoch} " if epoch is not None else ""
        return f"{prefix}loss {loss:.3f} · validation text→study {self.last_validation}"


@contextlib.contextmanager
def training_progress(enabled: bool) -> Iterator[TrainingProgress]:
    """Yield a :class:`TrainingProgress`, drawing bars on the terminal when ``enabled``."""
    if not enabled:
        yield TrainingProgress(None)
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as progress:
        yield TrainingProgress(progress)
