"""Return types of the search service: plain dataclasses shared by the JSON API and the pages.

Nothing here touches the database. Identifiers that are patient data
(StudyInstanceUID, AccessionNumber) appear only in :class:`StudyDetail`,
because the study page must let a radiologist open the case in the PACS.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FindingResult:
    """A zero-shot finding score of one study.

    ``score`` is the cosine-similarity margin of the positive over the negative
    prompts. ``probability`` (Platt-calibrated) and ``positive`` (score at or
    above the threshold fitted on the validation split) are set only where
    the model ships thresholds for the finding.
    """

    name: str
    label: str
    score: float
    probability: float | None = None
    positive: bool | None = None


@dataclass(frozen=True)
class PreviewLink:
    """A rendered cine preview of one series (animated WebP)."""

    series_pk: int
    view: str
    kind: str
    url: str


@dataclass(frozen=True)
class SearchHit:
    """One ranked study of a result page.

    ``score`` is the cosine similarity to the query (or to the seed study of
    "more like this"). It is None on a page listed without a query, which
    shows the filtered studies newest first. ``rank`` is 1-based over the
    whole result, not the page.
    """

    study_pk: int
    rank: int
    score: float | None
    study_date: dt.date | None
    age_years: float | None
    sex: str | None
    manufacturer: str | None
    field_strength_t: float | None
    views: list[str]
    impression_snippet: str | None
    top_findings: list[FindingResult]
    previews: list[PreviewLink]


@dataclass(frozen=True)
class SearchPage:
    """One page of ranked studies.

    ``total`` counts every study that passes the filters and has a vector in
    the index, because a vector search ranks all of them. ``mode`` records how
    the page was ranked: ``exact`` (every candidate scored on the CPU),
    ``exact-gpu``, ``approximate`` (HNSW graph search),
    ``approximate-filtered`` (HNSW restricted to the filtered ids) or
    ``browse`` (no query: newest study first).
    """

    query: str
    expanded_query: str | None
    hits: list[SearchHit]
    total: int
    offset: int
    limit: int
    has_more: bool
    model_id: str
    trained_on_synthetic_data: bool
    mode: str
    seed_study_pk: int | None = None


@dataclass(frozen=True)
class SeriesDetail:
    """One series of a study page, in anatomical order."""

    series_pk: int
    series_number: int | None
    description: str | None
    kind: str
    view: str
    slices: int
    phases: int
    rows: int | None
    columns: int | None
    slice_thickness_mm: float | None
    temporal_resolution_ms: float | None
    rr_interval_ms: float | None
    heart_rate_bpm: float | None
    complete: bool
    problems: list[str]
    preview_url: str | None


@dataclass(frozen=True)
class StudyDetail:
    """Everything the study page shows about one study.

    ``segments`` maps each model input segment to ``"real"`` or ``"filled"``,
    as the model reported it when it embedded the study. It is empty when the
    study has no embedding from the loaded model.
    """

    study_pk: int
    study_instance_uid: str
    accession_number: str | None
    study_date: dt.date | None
    study_description: str | None
    age_years: float | None
    sex: str | None
    manufacturer: str | None
    model_name: str | None
    field_strength_t: float | None
    institution_name: str | None
    report_text: str | None
    impression: str | None
    series: list[SeriesDetail]
    findings: list[FindingResult]
    embedded: bool
    segments: dict[str, str]
    model_id: str
    trained_on_synthetic_data: bool


@dataclass(frozen=True)
class CatalogStats:
    """Counts for the empty-archive page and the values the filter controls offer."""

    studies: int
    cine_studies: int
    embedded_studies: int
    indexed_studies: int
    series: int
    model_id: str
    trained_on_synthetic_data: bool
    manufacturers: list[str] = field(default_factory=list)
    field_strengths_t: list[float] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    first_study_date: dt.date | None = None
    last_study_date: dt.date | None = None
    min_age_years: float | None = None
    max_age_years: float | None = None
