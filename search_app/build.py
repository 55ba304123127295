"""The post-catalog stage of ``cmr-search index``: embed, score, render previews, build the index.

Every step skips what is already done, so an interrupted run resumes where it
stopped. Vectors and zero-shot scores are committed per batch of studies under
the model's id. Previews are files named by series and render settings. The
FAISS index is rebuilt from the catalog only when it no longer matches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from embeddings.encoder import StudyEncoder, StudyVectors
from indexer.catalog.models import FindingScore, Series, StudyEmbedding, ViewEmbedding
from indexer.pixels import PixelDataError
from search_app.errors import IndexMismatchError
from search_app.index_store import check_consistency, load_index, rebuild_index
from search_app.previews import PreviewSettings, preview_path, render_preview
from search_app.vector_index import IndexConfig, StudyIndex
from search_app.zero_shot import zero_shot_scores

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16


@dataclass
class BuildSummary:
    """Counts of one run of the build stage."""

    model_id: str
    embedded: int = 0
    without_cine: int = 0
    embedding_failures: int = 0
    previews_rendered: int = 0
    previews_cached: int = 0
    preview_failures: int = 0
    index_rebuilt: bool = False
    indexed: int = 0
    index_kind: str | None = None
    recall_at_10: float | None = None
    seconds: float = 0.0


def run_build(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: StudyEncoder,
    *,
    embed: bool = True,
    previews: bool = True,
    force_index: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    index_config: IndexConfig | None = None,
    progress: bool = True,
) -> BuildSummary:
    """Embed pending studies, render missing previews and rebuild the index when it is stale."""
    started = time.perf_counter()
    summary = BuildSummary(model_id=encoder.model_id)
    settings.ensure_dirs()
    if embed:
        embed_pending_studies(sessions, encoder, summary, batch_size=batch_size, progress=progress)
    if previews:
        render_pending_previews(sessions, settings, summary, progress=progress)
    study_index = ensure_index(settings, sessions, encoder, force=force_index, index_config=index_config)
    summary.index_rebuilt = study_index is not None
    if study_index is None:
        study_index = load_index(settings, encoder.model_id, index_config)
    if study_index is not None:
        summary.indexed = len(study_index)
        summary.index_kind = study_index.stats.kind
        summary.recall_at_10 = study_index.stats.recall_at_10
    summary.seconds = round(time.perf_counter() - started, 2)
    logger.info(
        "build done in %.1f s: %d studies embedded (%d failed, %d without cine), %d previews rendered "
        "(%d cached, %d failed), %d studies indexed",
        summary.seconds, summary.embedded, summary.embedding_failures, summary.without_cine,
        summary.previews_rendered, summary.previews_cached, summary.preview_failures, summary.indexed,
    )  # fmt: skip
    return summary


def pending_study_pks(session: Session, model_id: str) -> list[int]:
    """Return the studies with at least one cine series and no vector from ``model_id``."""
    embedded = select(StudyEmbedding.study_pk).where(StudyEmbedding.model_id == model_id)
    query = (
        select(Series.study_pk)
        .where(Series.kind == "cine", Series.study_pk.not_in(embedded))
        .distinct()
        .order_by(Series.study_pk)
    )
    return list(session.scalars(query))


def embed_pending_studies(
    sessions: sessionmaker[Session],
    encoder: StudyEncoder,
    summary: BuildSummary,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> None:
    """Embed and score every pending study in batches, committing each batch.

    A batch that fails is retried one study at a time, so one undecodable
    study does not hold back the others. A study that still fails is logged
    by primary key and left pending for the next run.
    """
    with sessions() as session:
        pending = pending_study_pks(session, encoder.model_id)
    if not pending:
        logger.info("every cine study already has a vector from model %s", encoder.model_id)
        return
    logger.info("embedding %d studies with model %s", len(pending), encoder.model_id)
    with _progress(progress, "Embedding studies", len(pending)) as advance:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            _embed_batch(sessions, encoder, batch, summary)
            advance(len(batch))


def _embed_batch(sessions: sessionmaker[Session], encoder: StudyEncoder, batch: Sequence[int], summary: BuildSummary) -> None:
    try:
        _embed_and_store(sessions, encoder, batch, summary)
        return
    except (PixelDataError, ValueError, RuntimeError, OSError) as error:
        if len(batch) == 1:
            summary.embedding_failures += 1
            logger.error("study %d could not be embedded: %s", batch[0], error)
            return
        logger.warning("a batch of %d studies failed (%s); retrying one study at a time", len(batch), error)
    for study_pk in batch:
        _embed_batch(sessions, encoder, [study_pk], summary)


def _embed_and_store(sessions: sessionmaker[Session], encoder: StudyEncoder, batch: Sequence[int], summary: BuildSummary) -> None:
    with sessions() as session:
        vectors = encoder.encode_studies(session, batch)
        scores = zero_shot_scores(encoder, np.stack([item.study for item in vectors])) if vectors else []
        for item, study_scores in zip(vectors, scores):
            store_study_vectors(session, encoder, item, study_scores)
        session.commit()
    summary.embedded += len(vectors)
    summary.without_cine += len(batch) - len(vectors)
    if len(vectors) < len(batch):
        left_out = sorted(set(batch) - {item.study_pk for item in vectors})
        logger.info("studies %s have no usable cine series for model %s", left_out, encoder.model_id)


def store_study_vectors(
    session: Session, encoder: StudyEncoder, vectors: StudyVectors, scores: Sequence[tuple[str, float, float | None]]
) -> None:
    """Add the study vector, per-view vectors and finding scores of one study to ``session``."""
    study = np.asarray(vectors.study, dtype=np.float32)
    if study.shape != (encoder.dimension,):
        raise ValueError(f"model {encoder.model_id} returned a vector of shape {study.shape} for study {vectors.study_pk}")
    session.add(
        StudyEmbedding(
            study_pk=vectors.study_pk,
            model_id=encoder.model_id,
            vector=_unit(study).tobytes(),
            dimension=encoder.dimension,
            segments=dict(vectors.segments),
        )
    )
    for series_pk, view_vector in vectors.views.items():
        session.add(
            ViewEmbedding(series_pk=series_pk, model_id=encoder.model_id, vector=_unit(np.asarray(view_vector, np.float32)).tobytes())
        )
    for finding, score, probability in scores:
        session.add(
            FindingScore(study_pk=vectors.study_pk, model_id=encoder.model_id, finding=finding, score=score, probability=probability)
        )


def render_pending_previews(
    sessions: sessionmaker[Session],
    settings: Settings,
    summary: BuildSummary,
    *,
    preview_settings: PreviewSettings | None = None,
    progress: bool = True,
) -> None:
    """Render the preview of every series that has none on disk; failures are logged and counted."""
    preview_settings = preview_settings or PreviewSettings()
    with sessions() as session:
        series_pks = list(session.scalars(select(Series.id).where(Series.slices > 0, Series.phases > 0).order_by(Series.id)))
        missing = [
            series.id
            for series in _series_in_chunks(session, series_pks)
            if not preview_path(settings, series, preview_settings).exists()
        ]
    summary.previews_cached += len(series_pks) - len(missing)
    if not missing:
        return
    logger.info("rendering %d previews (%d already cached)", len(missing), len(series_pks) - len(missing))
    with _progress(progress, "Rendering previews", len(missing)) as advance, sessions() as session:
        for series_pk in missing:
            series = session.get(Series, series_pk)
            try:
                if series is not None:
                    render_preview(session, settings, series, preview_settings)
                    summary.previews_rendered += 1
            except (PixelDataError, OSError, ValueError) as error:
                summary.preview_failures += 1
                logger.error("preview of series %d failed: %s", series_pk, error)
            session.expunge_all()  # the loop visits every series; keep the identity map small
            advance(1)


def _series_in_chunks(session: Session, series_pks: Sequence[int], chunk: int = 2_000) -> Iterator[Series]:
    for start in range(0, len(series_pks), chunk):
        yield from session.scalars(select(Series).where(Series.id.in_(series_pks[start : start + chunk])))
        session.expunge_all()


def ensure_index(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: StudyEncoder,
    *,
    force: bool = False,
    index_config: IndexConfig | None = None,
) -> StudyIndex | None:
    """Rebuild the index of ``encoder``'s model unless it exists and matches the catalog.

    Returns the new index, or None when the existing one was kept.
    """
    with sessions() as session:
        if not force:
            try:
                existing = load_index(settings, encoder.model_id, index_config)
                if existing is not None:
                    check_consistency(settings, session, existing, encoder.model_id, encoder.dimension)
                    logger.info("index of model %s is up to date (%d studies)", encoder.model_id, len(existing))
                    return None
            except IndexMismatchError as mismatch:
                logger.info("rebuilding the index: %s", mismatch.message)
        probes = _prompt_probes(encoder)
        return rebuild_index(settings, session, encoder.model_id, encoder.dimension, index_config, probes)


def _prompt_probes(encoder: StudyEncoder) -> np.ndarray | None:
    """Embed every positive zero-shot prompt, as text-query probes for HNSW recall."""
    prompts = [text for finding in encoder.finding_prompts() for text in finding.positive]
    if not prompts:
        return None
    return np.asarray(encoder.encode_text(prompts), dtype=np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


@contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; shows a rich progress bar on standard error when ``enabled``."""
    if not enabled:
        yield lambda _count: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.advance(task, count)
