"""Command-line commands of the model stage: ``train`` and ``evaluate``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

from cmr_search.settings import Settings, resolve_settings

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
    train_fraction: float = typer.Option(0.7, "--train-fraction", min=0.0, max=1.0, help="Share of patients in the training split."),
    validation_fraction: float = typer.Option(
        0.15, "--validation-fraction", min=0.0, max=1.0, help="Share of patients in the validation split; the rest is test."
    ),
    augment: bool = typer.Option(
        True, "--augment/--no-augment", help="Random rotation, mirroring, scaling, gamma, noise and view dropout."
    ),
    sax_only_probability: float = typer.Option(
        0.2, "--sax-only-probability", min=0.0, max=1.0, help="Chance that a training study keeps only its cine SAX slots."
    ),
    view_dropout: float = typer.Option(
        0.15, "--view-dropout", min=0.0, max=1.0, help="Chance that each other view (2CH, 3CH, 4CH, LGE) of a training study is dropped."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/last.pt."),
    synthetic: bool = typer.Option(
        False, "--synthetic-data", help="Record in the checkpoint that the catalog contains synthetic (phantom) studies only."
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
    from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database

    if train_fraction + validation_fraction > 1.0:
        logger.error("--train-fraction plus --validation-fraction is %.2f; it must be at most 1", train_fraction + validation_fraction)
        raise typer.Exit(2)
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
        split_fractions=(train_fraction, validation_fraction),
        augment=augment,
        sax_only_probability=sax_only_probability,
        view_dropout=view_dropout,
        max_studies=max_studies,
    )
    output_dir = output or settings.model_dir / Path(config).stem
    upgrade_database(settings.database_url)
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


def evaluate(
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    ground_truth: Path = typer.Option(..., "--ground-truth", exists=True, help="Finding labels of the catalog's studies (JSONL, JSON or CSV)."),
    model: str = typer.Option("default", "--model", help="Model name, used when --weights is not given."),
    weights: Path | None = typer.Option(None, "--weights", exists=True, help="Checkpoint written by `cmr-search train`."),
    shifted_data_dir: Path | None = typer.Option(None, "--shifted-data-dir", help="Data folder of a catalog from a shifted domain."),
    shifted_ground_truth: Path | None = typer.Option(None, "--shifted-ground-truth", exists=True, help="Labels of the shifted catalog."),
    real_data_dir: Path | None = typer.Option(
        None, "--real-data-dir", help="Data folder of a catalog of real studies with LV systolic dysfunction (e.g. Sunnybrook HF-I)."
    ),
    output_dir: Path = typer.Option(Path("docs/evaluation"), "--output-dir", help="Folder for metrics.json, README.md and plots."),
    seed: int | None = typer.Option(None, "--seed", help="Split seed [default: the training seed in the checkpoint, else 0]."),
    draws: int = typer.Option(50, "--draws", min=1, help="Random supports per few-shot setting."),
    write_thresholds: bool = typer.Option(
        False, "--write-thresholds", help="Store the thresholds fitted on validation beside the checkpoint."
    ),
    device: str | None = typer.Option(None, "--device", help="Torch device [default: cuda if available]."),
) -> None:
    """Measure retrieval, zero-shot and few-shot findings, domain shift and the real-data check."""
    import shlex
    import sys

    from embeddings.checkpoint import CheckpointError
    from embeddings.clips import ClipCache
    from embeddings.data import DEFAULT_SPLIT_FRACTIONS
    from embeddings.evaluation import EncodedArchive, encode_archive, evaluate_encoder
    from embeddings.evaluation_report import write_report
    from embeddings.factory import DEFAULT_CHECKPOINT, THRESHOLDS_FILE, load_encoder
    from embeddings.ground_truth import GroundTruthError
    from indexer.catalog.session import create_catalog_engine, session_factory

    settings = resolve_settings(data_dir, database_url)
    try:
        encoder = load_encoder(model, weights=weights, device=device, clip_cache_dir=settings.clip_cache_dir)
    except (ValueError, CheckpointError) as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error
    training_options = getattr(encoder, "metadata", {}).get("options", {})
    split_seed = seed if seed is not None else int(training_options.get("seed", 0))
    fractions = tuple(training_options.get("split_fractions", DEFAULT_SPLIT_FRACTIONS))
    findings = [f.name for f in encoder.finding_prompts()]

    def encode(name: str, folder_settings: Settings, labels: Path | None) -> EncodedArchive:
        # Each catalog keeps its clips in its own data folder.
        encoder.clip_cache = ClipCache(folder_settings.clip_cache_dir)
        engine = create_catalog_engine(folder_settings.database_url)
        try:
            with session_factory(engine)() as session:
                return encode_archive(name, encoder, session, split_seed, labels, findings, fractions)
        finally:
            engine.dispose()

    try:
        main = encode("main", settings, ground_truth)
        shifted = encode("shifted", resolve_settings(shifted_data_dir), shifted_ground_truth) if shifted_data_dir else None
        real = encode("real", resolve_settings(real_data_dir), None) if real_data_dir else None
    except GroundTruthError as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error

    result, thresholds = evaluate_encoder(encoder, main, shifted, real, draws=draws, seed=split_seed)
    command = "cmr-search " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    markdown = write_report(result, output_dir, main, shifted, real, command)
    if write_thresholds:
        target = (weights or DEFAULT_CHECKPOINT).parent / THRESHOLDS_FILE
        target.write_text(thresholds.to_json())
        logger.info("wrote thresholds of %d findings to %s", len(thresholds.findings), target)
    typer.echo(json.dumps({"report": str(markdown), "model_id": encoder.model_id}))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
