"""Index files on disk, their rebuild from the catalog, and the start-up consistency check.

Each model has one index file ``<index_dir>/<model id>.faiss`` and a JSON
sidecar ``<model id>.json`` with the build statistics. Both are written to a
temporary file and moved into place with ``os.replace``, so a reader sees the
old pair or the new pair. The sidecar records the size and modification time
of the index file it belongs to, which exposes a pair torn by a crash between
the two replaces.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cmr_search.settings import Settings
from indexer.catalog.models import StudyEmbedding
from search_app.errors import IndexMismatchError, rebuild_hint
from search_app.vector_index import IndexConfig, IndexStats, StudyIndex, build_study_index

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def index_paths(settings: Settings, model_id: str) -> tuple[Path, Path]:
    """Return the index file and its JSON sidecar for ``model_id``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_id)
    return settings.index_dir / f"{safe}.faiss", settings.index_dir / f"{safe}.json"


def save_index(settings: Settings, study_index: StudyIndex) -> Path:
    """Write ``study_index`` for its model, replacing the previous files atomically."""
    index_path, sidecar_path = index_paths(settings, study_index.model_id)
    index_path.parent.mkdir(parents=True, exist_ok=True)

    index_tmp = _temporary_path(index_path)
    sidecar_tmp = _temporary_path(sidecar_path)
    try:
        faiss.write_index(study_index.index, str(index_tmp))
        _fsync(index_tmp)
        written = index_tmp.stat()
        sidecar = {
            "format_version": FORMAT_VERSION,
            "faiss_version": faiss.__version__,
            "index_file_bytes": written.st_size,
            "index_file_mtime_ns": written.st_mtime_ns,
            "stats": dataclasses.asdict(study_index.stats),
        }
        sidecar_tmp.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        _fsync(sidecar_tmp)
        os.replace(index_tmp, index_path)
        os.replace(sidecar_tmp, sidecar_path)
    finally:
        index_tmp.unlink(missing_ok=True)
        sidecar_tmp.unlink(missing_ok=True)
    logger.info("wrote %s index of %d studies to %s", study_index.stats.kind, len(study_index), index_path)
    return index_path


def load_index(settings: Settings, model_id: str, config: IndexConfig | None = None) -> StudyIndex | None:
    """Read the index of ``model_id``; None when it was never built.

    Raises:
        IndexMismatchError: the sidecar is missing, unreadable, from another
            model or from another write of the index file.
    """
    index_path, sidecar_path = index_paths(settings, model_id)
    if not index_path.exists() and not sidecar_path.exists():
        return None

    def mismatch(reason: str) -> IndexMismatchError:
        return IndexMismatchError(
            f"The search index at {index_path} cannot be used: {reason}; {rebuild_hint(settings.data_dir)}.",
            model_id=model_id,
            index_path=index_path,
        )

    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        stats = IndexStats(**sidecar["stats"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise mismatch(f"its description {sidecar_path.name} is missing or invalid ({error})") from error
    if sidecar.get("format_version") != FORMAT_VERSION:
        raise mismatch(f"it has format version {sidecar.get('format_version')}, this program reads {FORMAT_VERSION}")
    if stats.model_id != model_id:
        raise mismatch(f"it was built by model {stats.model_id}, but the app loaded model {model_id}")
    try:
        on_disk = index_path.stat()
    except OSError as error:
        raise mismatch(f"the index file cannot be read ({error})") from error
    if (on_disk.st_size, on_disk.st_mtime_ns) != (sidecar["index_file_bytes"], sidecar["index_file_mtime_ns"]):
        raise mismatch("the index file and its description come from different builds (interrupted write?)")

    index = faiss.read_index(str(index_path))
    if index.ntotal != stats.count or index.d != stats.dimension:
        raise mismatch(f"it contains {index.ntotal} vectors of dimension {index.d}, but its description lists {stats.count} of {stats.dimension}")
    return StudyIndex(index, stats, config)


def embedded_study_pks(session: Session, model_id: str) -> np.ndarray:
    """Return the sorted primary keys of studies that have a vector from ``model_id``."""
    query = select(StudyEmbedding.study_pk).where(StudyEmbedding.model_id == model_id).order_by(StudyEmbedding.study_pk)
    return np.fromiter(session.scalars(query), dtype=np.int64)


def rebuild_index(
    settings: Settings,
    session: Session,
    model_id: str,
    dimension: int,
    config: IndexConfig | None = None,
    probe_queries: np.ndarray | None = None,
) -> StudyIndex:
    """Build the index of ``model_id`` from every StudyEmbedding row and save it."""
    count = session.scalar(select(func.count()).where(StudyEmbedding.model_id == model_id)) or 0
    study_pks = np.empty(count, dtype=np.int64)
    vectors = np.empty((count, dimension), dtype=np.float32)
    rows = session.execute(
        select(StudyEmbedding.study_pk, StudyEmbedding.vector, StudyEmbedding.dimension)
        .where(StudyEmbedding.model_id == model_id)
        .order_by(StudyEmbedding.study_pk)
        .execution_options(yield_per=10_000)
    )
    filled = 0
    for study_pk, vector, stored_dimension in rows:
        if filled >= count:
            break  # rows added after the count are left for the next rebuild
        if stored_dimension != dimension:
            raise ValueError(
                f"study {study_pk} has a {stored_dimension}-dimensional vector from {model_id}, expected {dimension}"
            )
        study_pks[filled] = study_pk
        vectors[filled] = np.frombuffer(vector, dtype=np.float32)
        filled += 1
    study_index = build_study_index(model_id, study_pks[:filled], vectors[:filled], config, probe_queries)
    save_index(settings, study_index)
    return study_index


def check_consistency(settings: Settings, session: Session, study_index: StudyIndex | None, model_id: str, dimension: int) -> None:
    """Raise :class:`IndexMismatchError` unless the index matches the catalog and the model.

    The index must come from ``model_id`` with vectors of ``dimension``, and
    its ids must equal the studies that have a StudyEmbedding row of that
    model. A missing index is accepted only when no such row exists.
    """
    index_path, _ = index_paths(settings, model_id)
    catalog_ids = embedded_study_pks(session, model_id)

    def mismatch(reason: str) -> IndexMismatchError:
        return IndexMismatchError(
            f"The search index does not match the catalog: {reason}. "
            f"Searching it would return wrong or missing studies; {rebuild_hint(settings.data_dir)}.",
            model_id=model_id,
            index_path=index_path,
        )

    if study_index is None:
        if len(catalog_ids):
            raise mismatch(f"{len(catalog_ids)} studies are embedded by model {model_id} but no index file exists at {index_path}")
        return
    if study_index.model_id != model_id:
        raise mismatch(f"the index was built by model {study_index.model_id}, but the app loaded model {model_id}")
    if study_index.dimension != dimension:
        raise mismatch(f"the index contains {study_index.dimension}-dimensional vectors, but model {model_id} writes {dimension}")

    index_ids = study_index.sorted_ids()
    if np.array_equal(index_ids, catalog_ids):
        return
    missing = np.setdiff1d(catalog_ids, index_ids, assume_unique=True)
    stale = np.setdiff1d(index_ids, catalog_ids, assume_unique=True)
    parts = []
    if len(stale):
        parts.append(f"{len(stale)} indexed studies are no longer in the catalog (ids {_sample(stale)})")
    if len(missing):
        parts.append(f"{len(missing)} embedded studies are missing from the index (ids {_sample(missing)})")
    raise mismatch(" and ".join(parts))


def _sample(ids: np.ndarray, shown: int = 5) -> str:
    text = ", ".join(str(value) for value in ids[:shown].tolist())
    return text + ", …" if len(ids) > shown else text


def _temporary_path(target: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    return Path(name)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
