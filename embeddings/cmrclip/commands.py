"""Command-line command of the CMR-CLIP encoder: ``cmrclip-thresholds``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from cmr_search.settings import resolve_settings

logger = logging.getLogger(__name__)


def cmrclip_thresholds(
    weights: Path = typer.Option(..., "--weights", help="The CMR-CLIP pytorch_model.bin the studies were indexed with."),
    tokenizer: Path = typer.Option(..., "--tokenizer", help="Folder with the Bio_ClinicalBERT vocab.txt."),
    labels: Path = typer.Option(
        ..., "--labels", help="CSV with accession_number or study_instance_uid, finding and present (1/0)."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Where to write the thresholds [default: cmrclip-thresholds.json beside the weights]."
    ),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Folder of the catalog [env: CMR_SEARCH_DATA_DIR]."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="SQLAlchemy URL of the catalog [env: CMR_SEARCH_DATABASE_URL]."
    ),
) -> None:
    """Fit CMR-CLIP finding thresholds on this site's labelled, already indexed studies."""
    from embeddings.cmrclip.calibration import SiteLabelError, fit_thresholds_from_catalog, read_site_labels
    from embeddings.cmrclip.checkpoint import CheckpointError
    from embeddings.cmrclip.encoder import load_cmrclip_encoder, thresholds_path
    from embeddings.cmrclip.tokenizer import TokenizerError
    from indexer.catalog.session import create_catalog_engine, session_factory

    settings = resolve_settings(data_dir, database_url)
    try:
        encoder = load_cmrclip_encoder(weights, tokenizer, device="cpu")
    except (CheckpointError, TokenizerError) as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error

    engine = create_catalog_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            site_labels = read_site_labels(session, labels)
            thresholds = fit_thresholds_from_catalog(session, encoder, site_labels)
    except SiteLabelError as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error
    finally:
        engine.dispose()

    target = output or thresholds_path(weights)
    target.write_text(thresholds.to_json(), encoding="utf-8")
    for name, threshold in thresholds.findings.items():
        logger.info(
            "%s: threshold %.4f from %d positive and %d negative studies",
            name,
            threshold.threshold,
            threshold.validation_positives,
            threshold.validation_negatives,
        )
    logger.info("wrote thresholds for %d findings to %s", len(thresholds.findings), target)


def register(app: typer.Typer) -> None:
    """Add the CMR-CLIP commands to ``app``."""
    app.command("cmrclip-thresholds")(cmrclip_thresholds)
