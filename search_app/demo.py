"""``cmr-search demo``: build a phantom archive, index it, and serve the app.

Each step reuses what an earlier run left in the data directory, so an
interrupted demo resumes where it stopped:

1. The phantom archive is generated into ``DATA_DIR/demo-archive`` unless a
   complete one is there. A marker file written after generation records the
   study count and seed, and a folder without the marker is a partial run that
   is removed and generated again.
2. The archive (and the Sunnybrook studies, when given) is indexed through the
   same function as ``cmr-search index``: catalog, then embeddings, previews
   and the FAISS index. The catalog skips unchanged files, and the embedding
   stage skips studies that the model has already embedded.
3. The phantom's ``reports.csv`` is imported before the embedding stage, so
   the result cards show report impressions.
4. The app is served, unless ``--no-serve`` is given.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from cmr_search.settings import Settings, resolve_settings
from search_app.commands import MODEL_OPTION, TOKENIZER_OPTION, WEIGHTS_OPTION, build_after_catalog, serve

logger = logging.getLogger(__name__)

ARCHIVE_FOLDER = "demo-archive"
MARKER_FILE = "demo-archive.json"
REPORTS_FILE = "reports.csv"
DEFAULT_STUDIES = 40
# A fixed default makes the demo archive the same on every machine.
DEFAULT_SEED = 2026


@dataclass(frozen=True)
class DemoArchive:
    """The parameters of a generated phantom archive, as its marker file stores them."""

    studies: int
    seed: int


class DemoArchiveConflictError(RuntimeError):
    """The data directory contains a phantom archive generated with other parameters."""


def archive_dir(settings: Settings) -> Path:
    """Return the folder of the demo's phantom archive inside the data directory."""
    return settings.data_dir / ARCHIVE_FOLDER


def read_marker(settings: Settings) -> DemoArchive | None:
    """Return the parameters of the complete phantom archive, or None when there is none."""
    marker = settings.data_dir / MARKER_FILE
    if not marker.is_file():
        return None
    values = json.loads(marker.read_text(encoding="utf-8"))
    return DemoArchive(studies=int(values["studies"]), seed=int(values["seed"]))


def ensure_phantom_archive(
    settings: Settings, studies: int, seed: int, *, workers: int | None = None, progress: bool = True
) -> Path:
    """Generate the phantom archive unless a complete one with the same parameters exists.

    Returns the archive folder.

    Raises:
        DemoArchiveConflictError: the complete archive there was generated with
            another study count or seed.
    """
    requested = DemoArchive(studies=studies, seed=seed)
    folder = archive_dir(settings)
    existing = read_marker(settings)
    if existing == requested and folder.is_dir():
        logger.info("reusing the phantom archive in %s (%d studies, seed %d)", folder, studies, seed)
        return folder
    if existing is not None and folder.is_dir():
        raise DemoArchiveConflictError(
            f"{folder} contains a phantom archive of {existing.studies} studies with seed {existing.seed}, "
            f"not {studies} studies with seed {seed}. Rerun with --studies {existing.studies} "
            f"--seed {existing.seed}, or pass another --data-dir."
        )

    if folder.exists():
        logger.warning("removing the partial phantom archive in %s left by an interrupted run", folder)
        shutil.rmtree(folder)

    from phantom import generate_archive

    logger.info("generating a phantom archive of %d studies with seed %d in %s", studies, seed, folder)
    generate_archive(folder, studies=studies, seed=seed, progress=progress, workers=workers or os.cpu_count() or 1)
    (settings.data_dir / MARKER_FILE).write_text(json.dumps(asdict(requested)) + "\n", encoding="utf-8")
    return folder


def sunnybrook_root(path: Path) -> Path:
    """Return the folder to index for a Sunnybrook Cardiac Data path.

    The data set keeps its cine studies under ``studies/``; the folder is used
    as given when it has no such subfolder.
    """
    studies = path / "studies"
    return studies if studies.is_dir() else path


def import_demo_reports(settings: Settings, archive: Path) -> None:
    """Import the phantom's ``reports.csv`` into the catalog, as ``cmr-search reports import`` does."""
    from indexer.catalog.session import create_catalog_engine, session_factory
    from indexer.reports import import_reports

    reports = archive / REPORTS_FILE
    if not reports.is_file():
        raise FileNotFoundError(f"the phantom archive has no {REPORTS_FILE} at {reports}; delete {archive} and rerun")
    engine = create_catalog_engine(settings.database_url)
    try:
        with session_factory(engine).begin() as session:
            summary = import_reports(session, reports)
    finally:
        engine.dispose()
    logger.info("imported reports: %s", summary.to_json())


def prepare_demo(
    settings: Settings,
    *,
    studies: int = DEFAULT_STUDIES,
    seed: int = DEFAULT_SEED,
    sunnybrook: Path | None = None,
    workers: int | None = None,
    model: str = "default",
    weights: Path | None = None,
    tokenizer: Path | None = None,
    progress: bool = True,
) -> None:
    """Generate, catalog, import reports, embed, render previews and index the demo archive.

    Every step reuses what an earlier run finished, so a rerun over a complete
    data directory only checks it.
    """
    from indexer.scan import catalog_archive

    started = time.perf_counter()
    settings.ensure_dirs()
    archive = ensure_phantom_archive(settings, studies, seed, workers=workers, progress=progress)
    dicom = archive / "dicom"
    roots = [dicom if dicom.is_dir() else archive]
    if sunnybrook is not None:
        roots.append(sunnybrook_root(sunnybrook))

    scan = catalog_archive(settings, roots, workers=workers, progress=progress)
    logger.info("catalog: %d files read, %d unchanged", scan.files_read, scan.files_unchanged)
    import_demo_reports(settings, archive)
    build = build_after_catalog(settings, model, weights, tokenizer, progress=progress)
    logger.info("build stage: %s", build)
    logger.info("demo data ready in %.1f s in %s", time.perf_counter() - started, settings.data_dir)


def demo(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Folder of the demo's archive, catalog, caches and index (default: env CMR_SEARCH_DATA_DIR, then the per-user data folder)."
    ),
    studies: int = typer.Option(DEFAULT_STUDIES, "--studies", min=1, help="Number of phantom studies to generate."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Random seed of the phantom generator."),
    sunnybrook: Path | None = typer.Option(
        None,
        "--sunnybrook",
        exists=True,
        file_okay=False,
        help="Sunnybrook Cardiac Data folder whose real cine studies are indexed as well.",
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes that generate studies and read headers (default: CPU count)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --allow-remote."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port to listen on."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow binding to a non-loopback address. The app has no login or audit yet."
    ),
    no_serve: bool = typer.Option(False, "--no-serve", help="Prepare the data and exit without serving (for tests and CI)."),
    model: str = MODEL_OPTION,
    weights: Path | None = WEIGHTS_OPTION,
    tokenizer: Path | None = TOKENIZER_OPTION,
) -> None:
    """Generate a phantom archive if absent, index it, and serve the search app."""
    # pylibjpeg-openjpeg logs one INFO line per encoded JPEG 2000 tile, which
    # would bury the progress bars of a demo run.
    logging.getLogger("openjpeg").setLevel(logging.WARNING)
    settings = resolve_settings(data_dir)
    try:
        prepare_demo(
            settings,
            studies=studies,
            seed=seed,
            sunnybrook=sunnybrook,
            workers=workers,
            model=model,
            weights=weights,
            tokenizer=tokenizer,
        )
    except DemoArchiveConflictError as error:
        logger.error("%s", error)
        raise typer.Exit(2) from error
    if no_serve:
        return
    serve(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        host=host,
        port=port,
        allow_remote=allow_remote,
        model=model,
        weights=weights,
        tokenizer=tokenizer,
    )
