"""Catalog reads behind the query service: result cards, study pages and counts.

Each function takes a session and the :class:`~search_app.query.SearchBackend`
(for the model id, finding labels and settings) and returns the dataclasses
of :mod:`search_app.results`. A page of hits costs three SQL queries.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Row, distinct, func, select
from sqlalchemy.orm import Session

from indexer.catalog.models import FindingScore, Series, Study, StudyEmbedding
from search_app.errors import StudyNotFoundError
from search_app.filters import CINE_VIEWS, SearchFilters, candidate_query, candidate_study_pks
from search_app.previews import KEY_COLUMNS, preview_path, preview_url
from search_app.results import CatalogStats, FindingResult, PreviewLink, SearchHit, SeriesDetail, StudyDetail
from search_app.zero_shot import is_positive

if TYPE_CHECKING:
    from search_app.query import SearchBackend

logger = logging.getLogger(__name__)

SNIPPET_CHARS = 240
TOP_FINDINGS = 3
# Anatomical order of the study page: cine views first, base-to-apex stack before long axes.
KIND_ORDER = ("cine", "lge", "mapping", "perfusion", "flow", "scout", "other")
VIEW_ORDER = (*CINE_VIEWS, "other")
LONG_AXIS_PREFERENCE = ("4ch", "2ch", "3ch", "lvot")
# Card columns; the snippet falls back to the start of the report when there is no impression.
CARD_COLUMNS = (
    Study.id,
    Study.study_date,
    Study.age_years,
    Study.sex,
    Study.manufacturer,
    Study.field_strength_t,
    func.coalesce(Study.impression, func.substr(Study.report_text, 1, 4 * SNIPPET_CHARS)).label("summary"),
)
# SQLite limits bound parameters per statement; larger id lists go in chunks.
IN_CHUNK = 5_000


def study_exists(session: Session, study_pk: int) -> bool:
    """Return whether ``study_pk`` is in the catalog."""
    return session.scalar(select(Study.id).where(Study.id == study_pk)) is not None


def hydrate_hits(
    session: Session, backend: SearchBackend, study_pks: Sequence[int], scores: Sequence[float], first_rank: int
) -> list[SearchHit]:
    """Build result cards for ``study_pks`` in the given order; studies deleted since indexing are skipped.

    Only the columns a card shows are selected (no ORM objects), because
    hydration is most of the time of a search once FAISS has returned.
    """
    if not study_pks:
        return []
    studies = {row.id: row for row in session.execute(select(*CARD_COLUMNS).where(Study.id.in_(study_pks)))}
    series_by_study: dict[int, list[Row]] = defaultdict(list)
    # No condition on kind in SQL: with one, SQLite may scan the kind index
    # (most series are cine) instead of probing study_pk, which took 0.3 s at
    # 10^5 studies.
    series_rows = session.execute(
        select(Series.study_pk, Series.kind, Series.view, Series.series_number, *KEY_COLUMNS).where(
            Series.study_pk.in_(study_pks)
        )
    )
    for row in series_rows:
        if row.kind == "cine":
            series_by_study[row.study_pk].append(row)
    findings_by_study = _top_findings_by_study(session, backend, study_pks)

    hits = []
    for offset, (study_pk, score) in enumerate(zip(study_pks, scores)):
        study = studies.get(study_pk)
        if study is None:
            logger.warning("indexed study %d is no longer in the catalog; run `cmr-search reindex`", study_pk)
            continue
        series = series_by_study.get(study_pk, [])
        hits.append(
            SearchHit(
                study_pk=study_pk,
                rank=first_rank + offset,
                score=None if score is None or math.isnan(score) else float(score),
                study_date=study.study_date,
                age_years=study.age_years,
                sex=study.sex,
                manufacturer=study.manufacturer,
                field_strength_t=study.field_strength_t,
                views=cine_views(series),
                impression_snippet=snippet(study.summary),
                top_findings=findings_by_study.get(study_pk, []),
                previews=card_previews(backend, series),
            )
        )
    return hits


def cine_views(series: Sequence[Series | Row]) -> list[str]:
    """Return the cine views present, in anatomical order."""
    present = {item.view for item in series if item.kind == "cine"}
    return [view for view in CINE_VIEWS if view in present]


def card_previews(backend: SearchBackend, series: Sequence[Series | Row]) -> list[PreviewLink]:
    """Pick the card's previews: the short-axis cine stack, then one long-axis cine view.

    Only previews already rendered on disk are linked.
    """
    cines = [item for item in series if item.kind == "cine"]
    picks: list[Series | Row] = []
    stacks = sorted((item for item in cines if item.view == "sax"), key=lambda item: (-item.slices, item.series_number or 0, item.id))
    picks.extend(stacks[:1])
    for view in LONG_AXIS_PREFERENCE:
        candidates = sorted((item for item in cines if item.view == view), key=lambda item: (item.series_number or 0, item.id))
        if candidates:
            picks.append(candidates[0])
            break
    return [
        PreviewLink(series_pk=item.id, view=item.view, kind=item.kind, url=preview_url(item.id))
        for item in picks
        if preview_path(backend.settings, item).exists()
    ]


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str | None:
    """Return ``text`` with whitespace collapsed, cut at a word boundary to at most ``limit`` characters."""
    if not text:
        return None
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _top_findings_by_study(
    session: Session, backend: SearchBackend, study_pks: Sequence[int], count: int = TOP_FINDINGS
) -> dict[int, list[FindingResult]]:
    """Return the ``count`` most likely findings per study.

    A study's findings are ranked by probability when every one has it, else
    by score. Rows are ranked as plain tuples and only the kept ones become
    FindingResult objects, which halves the cost of a result page's findings.
    """
    rows = session.execute(
        select(FindingScore.study_pk, FindingScore.finding, FindingScore.score, FindingScore.probability).where(
            FindingScore.study_pk.in_(study_pks), FindingScore.model_id == backend.model_id
        )
    ).all()
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.study_pk].append(row)
    kept: dict[int, list[FindingResult]] = {}
    for study_pk, study_rows in grouped.items():
        if all(row.probability is not None for row in study_rows):
            study_rows.sort(key=lambda row: -row.probability)
        else:
            study_rows.sort(key=lambda row: -row.score)
        kept[study_pk] = [finding_result(backend, row) for row in study_rows[:count]]
    return kept


def _findings_by_study(session: Session, backend: SearchBackend, study_pks: Sequence[int]) -> dict[int, list[FindingResult]]:
    rows = session.execute(
        select(FindingScore.study_pk, FindingScore.finding, FindingScore.score, FindingScore.probability).where(
            FindingScore.study_pk.in_(study_pks), FindingScore.model_id == backend.model_id
        )
    ).all()
    order = {name: position for position, name in enumerate(backend.finding_labels)}
    grouped: dict[int, list[FindingResult]] = defaultdict(list)
    for row in sorted(rows, key=lambda row: (order.get(row.finding, len(order)), row.finding)):
        grouped[row.study_pk].append(finding_result(backend, row))
    return grouped


def finding_result(backend: SearchBackend, row: FindingScore | Row) -> FindingResult:
    """Convert a FindingScore row, labelled with the model's finding label."""
    probability = None if row.probability is None else float(row.probability)
    return FindingResult(
        name=row.finding,
        label=backend.finding_labels.get(row.finding, row.finding.replace("_", " ")),
        score=float(row.score),
        probability=probability,
        positive=is_positive(backend.thresholds, row.finding, float(row.score), probability),
    )


def series_sort_key(series: Series) -> tuple[int, int, int, int]:
    """Sort key of the study page: kind, then view, then SeriesNumber."""
    kind = KIND_ORDER.index(series.kind) if series.kind in KIND_ORDER else len(KIND_ORDER)
    view = VIEW_ORDER.index(series.view) if series.view in VIEW_ORDER else len(VIEW_ORDER)
    return kind, view, series.series_number if series.series_number is not None else 1 << 30, series.id


def load_study_detail(session: Session, backend: SearchBackend, study_pk: int) -> StudyDetail:
    """Load the study page of ``study_pk``.

    Raises:
        StudyNotFoundError: the study is not in the catalog.
    """
    study = session.get(Study, study_pk)
    if study is None:
        raise StudyNotFoundError(study_pk)
    series = sorted(session.scalars(select(Series).where(Series.study_pk == study_pk)), key=series_sort_key)
    embedding = session.scalar(
        select(StudyEmbedding).where(StudyEmbedding.study_pk == study_pk, StudyEmbedding.model_id == backend.model_id)
    )
    findings = _findings_by_study(session, backend, [study_pk]).get(study_pk, [])
    return StudyDetail(
        study_pk=study.id,
        study_instance_uid=study.study_instance_uid,
        accession_number=study.accession_number,
        study_date=study.study_date,
        study_description=study.study_description,
        age_years=study.age_years,
        sex=study.sex,
        manufacturer=study.manufacturer,
        model_name=study.model_name,
        field_strength_t=study.field_strength_t,
        institution_name=study.institution_name,
        report_text=study.report_text,
        impression=study.impression,
        series=[series_detail(backend, item) for item in series],
        findings=findings,
        embedded=embedding is not None,
        segments=dict(embedding.segments or {}) if embedding is not None else {},
        model_id=backend.model_id,
        trained_on_synthetic_data=backend.trained_on_synthetic_data,
    )


def series_detail(backend: SearchBackend, series: Series) -> SeriesDetail:
    """Describe one series of the study page, with its preview URL when rendered."""
    rendered = preview_path(backend.settings, series).exists()
    return SeriesDetail(
        series_pk=series.id,
        series_number=series.series_number,
        description=series.series_description or series.protocol_name,
        kind=series.kind,
        view=series.view,
        slices=series.slices,
        phases=series.phases,
        rows=series.rows,
        columns=series.columns,
        slice_thickness_mm=series.slice_thickness_mm,
        temporal_resolution_ms=series.temporal_resolution_ms,
        rr_interval_ms=series.rr_interval_ms,
        heart_rate_bpm=series.heart_rate_bpm,
        complete=series.complete,
        problems=[str(problem) for problem in series.problems or []],
        preview_url=preview_url(series.id) if rendered else None,
    )


def browse_study_pks(
    session: Session, filters: SearchFilters, model_id: str, limit: int, offset: int
) -> tuple[np.ndarray, int]:
    """Return one page of embedded studies passing ``filters``, newest StudyDate first, and their total."""
    if filters.real_segments_only:
        kept = candidate_study_pks(session, filters, model_id)
        dated: list[tuple[int, object]] = []
        for start in range(0, len(kept), IN_CHUNK):
            chunk = kept[start : start + IN_CHUNK].tolist()
            dated.extend(session.execute(select(Study.id, Study.study_date).where(Study.id.in_(chunk))).all())
        dated.sort(key=lambda row: (row[1] is not None, row[1], row[0]), reverse=True)
        page = [study_pk for study_pk, _ in dated[offset : offset + limit]]
        return np.asarray(page, dtype=np.int64), len(dated)

    candidates = candidate_query(filters, model_id).order_by(None).subquery()
    total = session.scalar(select(func.count()).select_from(candidates)) or 0
    page = session.scalars(
        select(Study.id)
        .where(Study.id.in_(select(candidates.c.study_pk)))
        .order_by(Study.study_date.desc().nulls_last(), Study.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return np.fromiter(page, dtype=np.int64), total


def catalog_stats(session: Session, backend: SearchBackend) -> CatalogStats:
    """Count the catalog for the loaded model and list the filter values present."""
    model_id = backend.model_id
    dates = session.execute(select(func.min(Study.study_date), func.max(Study.study_date))).one()
    ages = session.execute(select(func.min(Study.age_years), func.max(Study.age_years))).one()
    strengths = session.scalars(select(Study.field_strength_t).where(Study.field_strength_t.is_not(None)).distinct())
    views = set(session.scalars(select(Series.view).where(Series.kind == "cine").distinct()))
    return CatalogStats(
        studies=session.scalar(select(func.count()).select_from(Study)) or 0,
        cine_studies=session.scalar(select(func.count(distinct(Series.study_pk))).where(Series.kind == "cine")) or 0,
        embedded_studies=session.scalar(select(func.count()).where(StudyEmbedding.model_id == model_id)) or 0,
        indexed_studies=len(backend.index) if backend.index is not None else 0,
        series=session.scalar(select(func.count()).select_from(Series)) or 0,
        model_id=model_id,
        trained_on_synthetic_data=backend.trained_on_synthetic_data,
        manufacturers=sorted(
            session.scalars(select(Study.manufacturer).where(Study.manufacturer.is_not(None)).distinct())
        ),
        field_strengths_t=sorted({round(float(value), 1) for value in strengths}),
        views=[view for view in CINE_VIEWS if view in views],
        first_study_date=dates[0],
        last_study_date=dates[1],
        min_age_years=ages[0],
        max_age_years=ages[1],
    )
