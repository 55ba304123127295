"""Command-line commands of the catalog stage: ``index``, ``db upgrade|downgrade``, ``reports import``."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from cmr_search.settings import resolve_settings

logger = logging.getLogger(__name__)

DATA_DIR_OPTION = typer.Option(None, "--data-dir", help="Folder of the catalog, caches and indexes [env: CMR_SEARCH_DATA_DIR].")
DATABASE_URL_OPTION = typer.Option(
    None, "--database-url", help="SQLAlchemy URL of the catalog; default: SQLite in the data folder [env: CMR_SEARCH_DATABASE_URL]."
)

db_app = typer.Typer(help="Create or migrate the catalog schema.", no_args_is_help=True)
reports_app = typer.Typer(help="Attach radiology reports to catalogued studies.", no_args_is_help=True)


def index(
    paths: list[Path] = typer.Argument(..., help="Folders or files to scan recursively."),
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    workers: int | None = typer.Option(None, "--workers", min=1, help="Header reader processes [default: CPU count]."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on standard output."),
    model: str = typer.Option("default", "--model", help="Encoder for the search index: 'default' or 'cmrclip'."),
    weights: Path | None = typer.Option(None, "--weights", help="Checkpoint file to load instead of the model's shipped weights."),
    tokenizer: Path | None = typer.Option(None, "--tokenizer", help="Tokenizer folder, for models that need one (cmrclip)."),
    skip_embedding: bool = typer.Option(
        False, "--skip-embedding", help="Only catalogue; do not embed studies, render previews or build the search index."
    ),
) -> None:
    """Catalogue the DICOM files under PATH into the SQL catalog (incremental), then build the search index."""
    from indexer.scan import ScanConfigurationError, catalog_archive

    settings = resolve_settings(data_dir, database_url)
    try:
        summary = catalog_archive(settings, paths, workers=workers, progress=not as_json)
    except ScanConfigurationError as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error

    if as_json:
        typer.echo(summary.to_json())
    else:
        summary.print(Console(stderr=False))
    if not summary.indexed_anything:
        logger.error(
            "no study could be catalogued from %d files; `cmr-search errors` lists each file and the reason",
            summary.files_seen,
        )
        raise typer.Exit(1)
    if not skip_embedding:
        from search_app.commands import build_after_catalog

        build_after_catalog(settings, model, weights, tokenizer, progress=not as_json)


def db_upgrade(
    revision: str = typer.Argument("head", help="Alembic revision to upgrade to."),
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
) -> None:
    """Apply pending catalog migrations."""
    from indexer.catalog.session import upgrade_database

    settings = resolve_settings(data_dir, database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.database_url, revision)


def db_downgrade(
    revision: str = typer.Argument(..., help="Alembic revision to revert to; 'base' drops every table."),
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
) -> None:
    """Revert catalog migrations down to REVISION."""
    from indexer.catalog.session import downgrade_database

    settings = resolve_settings(data_dir, database_url)
    downgrade_database(settings.database_url, revision)


def reports_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV or JSONL file of reports."),
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the import summary as one JSON object."),
) -> None:
    """Store report text and impression for studies matched by AccessionNumber or StudyInstanceUID."""
    from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database
    from indexer.reports import ReportFormatError, import_reports

    settings = resolve_settings(data_dir, database_url)
    upgrade_database(settings.database_url)
    engine = create_catalog_engine(settings.database_url)
    try:
        with session_factory(engine).begin() as session:
            summary = import_reports(session, file)
    except ReportFormatError as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error
    finally:
        engine.dispose()

    if as_json:
        typer.echo(summary.to_json())
    else:
        summary.print(Console())


def errors(
    data_dir: Path | None = DATA_DIR_OPTION,
    database_url: str | None = DATABASE_URL_OPTION,
    limit: int = typer.Option(50, "--limit", min=1, help="Maximum number of errors to list, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the errors as one JSON array."),
) -> None:
    """List files that could not be catalogued or decoded, with the reason (the scan_errors table).

    The paths are printed because the user asked for them; logs never contain
    them, since archive paths often carry patient identifiers.
    """
    import json

    from rich.table import Table
    from sqlalchemy import func, select

    from indexer.catalog.models import ScanError
    from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database

    settings = resolve_settings(data_dir, database_url)
    upgrade_database(settings.database_url)
    engine = create_catalog_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            total = session.scalar(select(func.count()).select_from(ScanError)) or 0
            rows = session.scalars(select(ScanError).order_by(ScanError.id.desc()).limit(limit)).all()
    finally:
        engine.dispose()

    if as_json:
        typer.echo(json.dumps([{"path": row.path, "stage": row.stage, "reason": row.reason} for row in rows]))
        return
    table = Table(title=f"{len(rows)} of {total} scan errors")
    for column in ("stage", "reason", "path"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.stage, row.reason, row.path)
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("index")(index)
    app.command("errors")(errors)
    db_app.command("upgrade")(db_upgrade)
    db_app.command("downgrade")(db_downgrade)
    reports_app.command("import")(reports_import)
    app.add_typer(db_app, name="db")
    app.add_typer(reports_app, name="reports")
