"""``/api/studies``: one study, and the studies most like it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from search_app.dependencies import get_search_service, search_filters
from search_app.filters import SearchFilters
from search_app.query import MAX_LIMIT, MAX_OFFSET, SearchService
from search_app.results import SearchPage, StudyDetail

router = APIRouter(prefix="/api/studies", tags=["studies"])

StudyPk = Annotated[int, Path(ge=1, description="Catalog primary key of the study.")]


@router.get("/{study_pk}", response_model=StudyDetail, summary="One study with its series, report and findings")
def study_detail(study_pk: StudyPk, service: Annotated[SearchService, Depends(get_search_service)]) -> StudyDetail:
    """Return the study page data: series in anatomical order, report, zero-shot findings and PACS identifiers."""
    return service.study_detail(study_pk)


@router.get("/{study_pk}/similar", response_model=SearchPage, summary="More like this study")
def similar_studies(
    study_pk: StudyPk,
    service: Annotated[SearchService, Depends(get_search_service)],
    filters: Annotated[SearchFilters, Depends(search_filters)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Hits per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Hits to skip.")] = 0,
) -> SearchPage:
    """Rank the filtered studies by cosine similarity to this study's vector, leaving the study out."""
    return service.more_like_this(study_pk, filters, limit=limit, offset=offset)
