"""``/api/search``: rank studies by a free-text query."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from search_app.dependencies import get_search_service, search_filters
from search_app.filters import SearchFilters
from search_app.query import MAX_LIMIT, MAX_OFFSET, SearchService
from search_app.results import SearchPage

router = APIRouter(prefix="/api", tags=["search"])


@router.get("/search", response_model=SearchPage, summary="Search studies by text")
def search(
    service: Annotated[SearchService, Depends(get_search_service)],
    filters: Annotated[SearchFilters, Depends(search_filters)],
    q: Annotated[str, Query(description="Query text, for example 'dilated LV with reduced EF'. Blank lists the newest studies.")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Hits per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Hits to skip.")] = 0,
) -> SearchPage:
    """Rank the studies that pass the filters by cosine similarity to the query.

    The filters restrict the search itself, so the page contains the best matches
    among the filtered studies. Scores are cosine similarities in [-1, 1].
    """
    return service.search(q, filters, limit=limit, offset=offset)
