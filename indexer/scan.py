"""Catalogue DICOM archives: walk, read new or changed headers in worker processes, assemble.

A file is re-read only when its path is new or its size or mtime (ns)
changed, so a rerun over an unchanged archive reads no header. Headers are
read in worker processes and written by this process in batches of
``BATCH_SIZE`` files, one transaction each. After the walk, every study flagged
``needs_assembly`` (including ones left by an interrupted run) is reassembled,
with the computation in worker processes and the writes in this one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy import make_url, select
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from indexer.catalog.models import ScanError, ScannedFile, Study
from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database
from indexer.summary import ScanSummary, summarize_catalog

if TYPE_CHECKING:
    from indexer.assembly import StudyPlan
    from indexer.headers import HeaderRecord

# indexer.headers (pydicom) and indexer.assembly (numpy) are imported where
# they are first needed, so a rerun over an unchanged archive loads neither.

logger = logging.getLogger(__name__)

# Files written per transaction; also the unit an interrupted run can lose.
BATCH_SIZE = 500
# Paths handed to a worker process at a time.
WORKER_CHUNK = 64

FileEntry = tuple[str, int, int]  # path, size in bytes, mtime in ns


class ScanConfigurationError(RuntimeError):
    """A scan cannot start: a path does not exist or the catalog database cannot be opened."""


def walk_files(roots: Iterable[Path]) -> Iterator[FileEntry]:
    """Yield (absolute path, size, mtime_ns) of every regular file under ``roots``, in name order.

    Symbolic links to directories are not followed, which avoids cycles.
    Files whose names are not valid UTF-8 are skipped with a warning, because
    the catalog stores paths as text.
    """
    skipped = 0
    for root in roots:
        root = Path(root).resolve()
        if root.is_file():
            stat = root.stat()
            yield str(root), stat.st_size, stat.st_mtime_ns
            continue
        stack = [str(root)]
        while stack:
            directory = stack.pop()
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as error:
                logger.warning("cannot list a directory under %s: %s", root, error.strerror)
                continue
            subdirectories = []
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirectories.append(entry.path)
                    elif entry.is_file():
                        entry.path.encode("utf-8")
                        stat = entry.stat()
                        yield entry.path, stat.st_size, stat.st_mtime_ns
                except UnicodeEncodeError:
                    skipped += 1
                except OSError:
                    continue
            stack.extend(reversed(subdirectories))
    if skipped:
        logger.warning("skipped %d files whose names are not valid UTF-8; rename them to catalogue them", skipped)


def catalog_archive(
    settings: Settings, roots: Sequence[Path], workers: int | None = None, progress: bool = True
) -> ScanSummary:
    """Catalogue every file under ``roots`` into the catalog of ``settings`` and return a summary.

    Applies pending migrations first. ``workers`` is the number of header
    reader processes (default ``os.cpu_count()``; 1 reads in this process).

    Raises:
        ScanConfigurationError: a root does not exist, or the catalog database
            cannot be opened or migrated.
    """
    missing = [str(root) for root in roots if not Path(root).exists()]
    if missing:
        raise ScanConfigurationError(f"archive path not found: {', '.join(missing)}")
    workers = max(1, workers or os.cpu_count() or 1)
    started = time.perf_counter()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _open_catalog(settings.database_url)
    engine = create_catalog_engine(settings.database_url)
    sessions = session_factory(engine)
    phase_seconds: dict[str, float] = {}

    try:
        with _progress(Console(stderr=True), progress) as bar:
            phase_started = time.perf_counter()
            walk = _walk_archive(sessions, roots)
            phase_seconds["walk"] = time.perf_counter() - phase_started

            phase_started = time.perf_counter()
            counts = _read_and_store(sessions, walk, workers, bar)
            phase_seconds["headers"] = time.perf_counter() - phase_started

            phase_started = time.perf_counter()
            assembled = _assemble_pending(sessions, settings.database_url, workers, bar)
            phase_seconds["assembly"] = time.perf_counter() - phase_started
        with sessions() as session:
            summary = summarize_catalog(session)
    finally:
        engine.dispose()

    summary.files_seen = walk.seen
    summary.files_unchanged = walk.unchanged
    summary.files_missing = len(walk.known) - walk.found_known
    summary.files_read = len(walk.to_read)
    summary.files_by_status = dict(counts)
    summary.studies_assembled = assembled
    summary.seconds = time.perf_counter() - started
    summary.seconds_by_phase = {name: round(value, 3) for name, value in phase_seconds.items()}
    logger.info(
        "scan finished in %.1f s (walk %.1f s, headers %.1f s, assembly %.1f s): %d files read, %d studies assembled",
        summary.seconds, phase_seconds["walk"], phase_seconds["headers"], phase_seconds["assembly"],
        len(walk.to_read), assembled,
    )
    return summary


@dataclass
class ArchiveWalk:
    """Files under the scanned paths, split by whether the catalog has them unchanged."""

    known: dict[str, tuple[int, int, int]]
    to_read: list[FileEntry]
    seen: int
    unchanged: int
    found_known: int


def _open_catalog(database_url: str) -> None:
    """Apply pending migrations, turning an unreachable or invalid database into a configuration error."""
    try:
        upgrade_database(database_url)
    except (OperationalError, ArgumentError, NoSuchModuleError) as error:
        shown = make_url(database_url).render_as_string(hide_password=True)
        raise ScanConfigurationError(
            f"cannot open the catalog database {shown}: {getattr(error, 'orig', None) or error}; "
            "check --database-url or CMR_SEARCH_DATABASE_URL"
        ) from error


def _walk_archive(sessions: sessionmaker[Session], roots: Sequence[Path]) -> ArchiveWalk:
    with sessions() as session:
        known = _known_files(session, roots)
    to_read, seen, unchanged, found_known = _changed_files(walk_files(roots), known)
    logger.info("walked %d files: %d unchanged, %d to read", seen, unchanged, len(to_read))
    return ArchiveWalk(known, to_read, seen, unchanged, found_known)


def _read_and_store(sessions: sessionmaker[Session], walk: ArchiveWalk, workers: int, bar: Progress) -> Counter[str]:
    """Read the new and changed headers and store them, one transaction per batch."""
    counts: Counter[str] = Counter()
    task = bar.add_task("reading headers", total=len(walk.to_read))
    if not walk.to_read:
        return counts
    from indexer.store import store_batch

    for batch in _batched(_read_headers(walk.to_read, workers), BATCH_SIZE):
        known_ids = {record.path: walk.known[record.path][0] for record in batch if record.path in walk.known}
        with sessions.begin() as session:
            counts.update(store_batch(session, batch, known_ids))
        bar.advance(task, len(batch))
    return counts


def _known_files(session: Session, roots: Sequence[Path]) -> dict[str, tuple[int, int, int]]:
    """Return path → (file id, size, mtime_ns) for catalogued files under ``roots``."""
    known: dict[str, tuple[int, int, int]] = {}
    for root in roots:
        resolved = str(Path(root).resolve())
        # The separator keeps a sibling folder such as /archive2 out of a scan of /archive.
        query = select(ScannedFile.path, ScannedFile.id, ScannedFile.size_bytes, ScannedFile.mtime_ns).where(
            (ScannedFile.path == resolved) | ScannedFile.path.startswith(resolved.rstrip(os.sep) + os.sep, autoescape=True)
        )
        # Through the connection, not the ORM session: 0.2 s became 0.1 s of CPU for 50,688 rows.
        for path, file_pk, size, mtime in session.connection().execute(query):
            known[path] = (file_pk, size, mtime)
    return known


def _changed_files(
    entries: Iterable[FileEntry], known: dict[str, tuple[int, int, int]]
) -> tuple[list[FileEntry], int, int, int]:
    """Return (files to read, files seen, unchanged files, catalogued files still on disk)."""
    to_read: list[FileEntry] = []
    seen = unchanged = found_known = 0
    for path, size, mtime in entries:
        seen += 1
        previous = known.get(path)
        if previous is None:
            to_read.append((path, size, mtime))
            continue
        found_known += 1
        if previous[1] == size and previous[2] == mtime:
            unchanged += 1
        else:
            to_read.append((path, size, mtime))
    # NOTE: catalogued files that are gone from disk are only counted (files_missing), never
    # deleted, because an unmounted or emptied archive folder would otherwise empty the catalog.
    return to_read, seen, unchanged, found_known


def _read_one(entry: FileEntry) -> HeaderRecord:
    """Read one header; an unexpected exception becomes an error record, so one file cannot stop the scan."""
    from indexer.headers import HeaderRecord, read_header

    try:
        record = read_header(*entry)
        if record.status == "dicom":
            record.header_json = json.dumps(record.header)
            record.header = {}
        return record
    except Exception as error:  # noqa: BLE001 - any parser bug on one odd file must not abort the archive
        path, size, mtime = entry
        reason = f"unexpected failure while reading the header: {type(error).__name__}: {error}"
        return HeaderRecord(path=path, size_bytes=size, mtime_ns=mtime, status="error", stage="read", reason=reason)


def _read_headers(entries: list[FileEntry], workers: int) -> Iterator[HeaderRecord]:
    """Yield header records in the order of ``entries``, read by ``workers`` processes."""
    from indexer.headers import quiet_pydicom

    quiet_pydicom()
    if workers == 1 or len(entries) < 2 * WORKER_CHUNK:
        yield from map(_read_one, entries)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=quiet_pydicom) as pool:
        yield from pool.map(_read_one, entries, chunksize=WORKER_CHUNK)


def _batched(records: Iterable[HeaderRecord], size: int) -> Iterator[list[HeaderRecord]]:
    batch: list[HeaderRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _assemble_pending(sessions: sessionmaker[Session], database_url: str, workers: int, bar: Progress) -> int:
    """Assemble every study flagged ``needs_assembly``, one transaction per study.

    Worker processes read instances and compute the series, which SQLite in
    WAL mode allows while this process writes. Only this process writes, so
    two writers never contend for the SQLite lock.
    """
    with sessions() as session:
        pending = list(session.scalars(select(Study.id).where(Study.needs_assembly.is_(True)).order_by(Study.id)))
    task = bar.add_task("assembling studies", total=len(pending))
    assembled = 0
    if not pending:
        return assembled
    from indexer.assembly import assemble_study, write_study_plan

    if workers == 1 or len(pending) < 2:
        for study_pk in pending:
            try:
                with sessions.begin() as session:
                    assemble_study(session, study_pk)
                assembled += 1
            except Exception as error:  # noqa: BLE001 - one odd study must not stop the others
                _record_assembly_error(sessions, study_pk, f"{type(error).__name__}: {error}")
            bar.advance(task)
        return assembled

    with ProcessPoolExecutor(max_workers=workers, initializer=_open_worker_catalog, initargs=(database_url,)) as pool:
        for study_pk, plan, failure in pool.map(_plan_in_worker, pending):
            if plan is None:
                _record_assembly_error(sessions, study_pk, failure or "unknown failure")
            else:
                with sessions.begin() as session:
                    write_study_plan(session, plan)
                assembled += 1
            bar.advance(task)
    return assembled


def _record_assembly_error(sessions: sessionmaker[Session], study_pk: int, reason: str) -> None:
    """Log and store a failed assembly; the study keeps ``needs_assembly`` so the next run retries it."""
    logger.error("assembly of study %d failed: %s", study_pk, reason)
    with sessions.begin() as session:
        session.add(ScanError(file_pk=None, path=f"study {study_pk}", stage="assemble", reason=reason))


_worker_sessions: sessionmaker[Session] | None = None


def _open_worker_catalog(database_url: str) -> None:
    global _worker_sessions
    _worker_sessions = session_factory(create_catalog_engine(database_url))


def _plan_in_worker(study_pk: int) -> tuple[int, StudyPlan | None, str | None]:
    """Return (study id, plan, None), or (study id, None, reason) when planning failed."""
    if _worker_sessions is None:
        raise RuntimeError("assembly worker started without a catalog; _open_worker_catalog did not run")
    from indexer.assembly import plan_study

    try:
        with _worker_sessions() as session:
            return study_pk, plan_study(session, study_pk), None
    except Exception as error:  # noqa: BLE001 - reported by the main process, which stores it
        return study_pk, None, f"{type(error).__name__}: {error}"


class ItemsPerSecondColumn(ProgressColumn):
    """Rate of the task over the last seconds, e.g. ``1520 /s``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:7.0f} /s" if speed else "      ? /s", style="progress.data.speed")


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        ItemsPerSecondColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
