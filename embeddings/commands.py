"""Command-line commands of the model stage: ``train`` and ``evaluate``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from cmr_search.settings import resolve_settings

logger = logging.getLogger(__name__)

DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Folder of the catalog, caches and indexes [env: CMR_SEARCH_DATA_DIR].")
DATABASE_URL_OPTION = typer.Option(
    None, "--database-url", help="SQLAlchemy URL of the catalog; default: SQLite in the data folder [env: CMR_SEARCH_DATABASE_URL]."
)


def train(
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    output: Path | None = typer.Option(
        None, "--output", help="Folder for model.pt, last.pt and history.json [default: DATA_DIR/models/CONFIG]."
    ),
    config: str = typer.Option("cmr-video-text-small", "--config", help="Model config name in embeddings/configs, or a JSON path."),
    epochs: int = typer.Option(40, "--epochs", min=1, help="Total epochs, counting those already done when resuming."),
    batch_size: int = typer.Option(32, "--batch-size", min=2, help="Studies per step; the contrastive loss uses the others as negatives."),
    learning_rate: float = typer.Option(2e-3, "--lr", help="Peak AdamW learning rate after warmup."),
    weight_decay: float = typer.Option(0.05, "--weight-decay", help="AdamW weight decay of matrices and kernels."),
    warmup_epochs: float = typer.Option(2.0, "--warmup-epochs", help="Epochs of linear learning-rate warmup."),
    seed: int = typer.Option(0, "--seed", help="Seed of the patient split, initialisation, batches and augmentation."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Random rotation, mirroring, scaling, gamma and noise."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/last.pt."),
    synthetic: bool = typer.Option(
        False, "--synthetic-data", help="Record in the checkpoint that the catalog holds synthetic (phantom) studies only."
    ),
    max_studies: int | None = typer.Option(None, "--max-studies", min=2, help="Train on the first N training studies only."),
    device: str | None = typer.Option(None, "--device", help="Torch device, e.g. cpu or cuda [default: cuda if available]."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train the video–text model on (study, impression) pairs of the catalog."""
    from embeddings.checkpoint import CheckpointError
    from embeddings.clips import ClipCache
    from embeddings.training import TrainOptions
    from embeddings.training import train as run_training
    from indexer.catalog.session import create_catalog_engine, session_factory

    settings = resolve_settings(data_dir, database_url)
    settings.ensure_dirs()
    options = TrainOptions(
        config=config,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        seed=seed,
        augment=augment,
        max_studies=max_studies,
    )
    output_dir = output or settings.model_dir / Path(config).stem
    engine = create_catalog_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            result = run_training(
                session,
                ClipCache(settings.clip_cache_dir),
                output_dir,
                options,
                resume=resume,
                device=device,
                show_progress=progress,
                metadata={"trained_on_synthetic_data": synthetic},
            )
    except (ValueError, CheckpointError) as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error
    finally:
        engine.dispose()
    typer.echo(json.dumps({"checkpoint": str(result.checkpoint), "model_id": result.model_id}))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("train")(train)
