"""Command-line commands of the search stage: ``serve`` and ``reindex``.

``cmr-search index`` also calls :func:`build_after_catalog` once it has
catalogued the archive, so one command takes a folder of DICOM files to a
searchable index.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cmr_search.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from search_app.build import BuildSummary

logger = logging.getLogger(__name__)

DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Folder of the catalog, caches and indexes [env: CMR_SEARCH_DATA_DIR].")
DATABASE_URL_OPTION = typer.Option(
    None, "--database-url", help="SQLAlchemy URL of the catalog; default: SQLite in the data folder [env: CMR_SEARCH_DATABASE_URL]."
)
MODEL_OPTION = typer.Option("default", "--model", help="Encoder: 'default' (shipped model) or 'cmrclip'.")
WEIGHTS_OPTION = typer.Option(None, "--weights", help="Checkpoint file to load instead of the model's shipped weights.")
TOKENIZER_OPTION = typer.Option(None, "--tokenizer", help="Tokenizer folder, for models that need one (cmrclip).")


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names only this machine (localhost, 127.0.0.0/8 or ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --allow-remote."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port to listen on."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow binding to a non-loopback address. The app has no login or audit yet."
    ),
    model: str = MODEL_OPTION,
    weights: Path | None = WEIGHTS_OPTION,
    tokenizer: Path | None = TOKENIZER_OPTION,
) -> None:
    """Serve the search app after checking that the index matches the catalog and the model."""
    import uvicorn

    from search_app.app import create_app
    from search_app.errors import IndexMismatchError

    if not is_loopback(host):
        if not allow_remote:
            logger.error(
                "refusing to bind to %s: the app has no login or audit yet, so it listens on loopback only; "
                "pass --allow-remote to serve other machines anyway",
                host,
            )
            raise typer.Exit(2)
        logger.warning(
            "serving on %s:%d for other machines: login and audit are not built yet, so anyone who reaches "
            "this address can search the archive and read its reports",
            host,
            port,
        )

    settings = resolve_settings(data_dir, database_url)
    try:
        app = create_app(settings, model, weights=weights, tokenizer=tokenizer, threads_per_query=1)
    except IndexMismatchError as mismatch:
        logger.error("%s", mismatch.message)
        raise typer.Exit(3) from mismatch
    logger.info("serving on http://%s:%d (API documentation at /docs)", host, port)
    # No access log: request URLs carry the free-text query, which may name a patient.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def reindex(
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    model: str = MODEL_OPTION,
    weights: Path | None = WEIGHTS_OPTION,
    tokenizer: Path | None = TOKENIZER_OPTION,
    index_only: bool = typer.Option(
        False, "--index-only", help="Only rebuild the FAISS index; do not embed new studies or render previews."
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Studies per embedding batch."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on standard output."),
) -> None:
    """Rebuild the FAISS index of a model from the catalog, embedding pending studies first."""
    settings = resolve_settings(data_dir, database_url)
    summary = build_after_catalog(
        settings,
        model,
        weights,
        tokenizer,
        embed=not index_only,
        previews=not index_only,
        force_index=True,
        batch_size=batch_size,
        progress=not as_json,
    )
    if as_json:
        typer.echo(json.dumps(asdict(summary)))


def build_after_catalog(
    settings: Settings,
    model: str = "default",
    weights: Path | None = None,
    tokenizer: Path | None = None,
    *,
    embed: bool = True,
    previews: bool = True,
    force_index: bool = False,
    batch_size: int = 16,
    progress: bool = True,
) -> BuildSummary:
    """Run the build stage (embeddings, zero-shot scores, previews, index) for one model."""
    from embeddings.factory import load_encoder
    from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database
    from search_app.build import run_build

    upgrade_database(settings.database_url)
    encoder = load_encoder(model, weights, tokenizer, clip_cache_dir=settings.clip_cache_dir)
    engine = create_catalog_engine(settings.database_url)
    try:
        return run_build(
            settings,
            session_factory(engine),
            encoder,
            embed=embed,
            previews=previews,
            force_index=force_index,
            batch_size=batch_size,
            progress=progress,
        )
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    from search_app.demo import demo

    app.command("serve")(serve)
    app.command("reindex")(reindex)
    app.command("demo")(demo)
