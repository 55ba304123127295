"""The study page and its "more like this" fragment.

``GET /studies/{study_pk}`` renders every series, the report, the finding
scores, the PACS identifiers and the first page of similar studies.
``GET /studies/{study_pk}/similar?page=N`` renders one page of similar studies
for htmx and pushes ``/studies/{study_pk}?similar_page=N`` to the address bar.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from search_app.errors import StudyNotEmbeddedError
from search_app.filters import SearchFilters
from search_app.dependencies import get_search_service
from search_app.pages.forms import MAX_PAGE
from search_app.pages.pagination import PageLink, Pager, build_pager
from search_app.pages.templating import render
from search_app.query import SearchService
from search_app.results import SearchPage, StudyDetail

router = APIRouter(include_in_schema=False)

SIMILAR_PAGE_SIZE = 6


@router.get("/studies/{study_pk}", response_class=HTMLResponse, name="study_page")
def study_page(
    request: Request,
    study_pk: int,
    similar_page: int = Query(1, ge=1, le=MAX_PAGE),
    service: SearchService = Depends(get_search_service),
) -> Response:
    """Render one study; a study that is not in the catalog gets the 404 page."""
    study = service.study_detail(study_pk)
    context = _study_context(request, service, study, similar_page)
    return render(request, "study.html", context)


@router.get("/studies/{study_pk}/similar", response_class=HTMLResponse, name="similar_studies")
def similar_studies(
    request: Request,
    study_pk: int,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    service: SearchService = Depends(get_search_service),
) -> Response:
    """Render one page of "more like this" for htmx; other clients are sent to the study page."""
    page_url = _study_url(request, study_pk, page)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(page_url, status_code=303)

    study = service.study_detail(study_pk)
    context = _study_context(request, service, study, page)
    return render(request, "_similar.html", context, headers={"HX-Push-Url": page_url})


def _study_context(request: Request, service: SearchService, study: StudyDetail, page: int) -> dict[str, Any]:
    similar, similar_error = _similar_page(service, study, page)
    pager = _similar_pager(request, study.study_pk, page, similar) if similar is not None else None
    return {
        "study": study,
        "views": sorted({series.view for series in study.series if series.kind == "cine"}),
        "similar": similar,
        "similar_error": similar_error,
        "pager": pager,
        "synthetic_model": study.trained_on_synthetic_data,
    }


def _similar_page(service: SearchService, study: StudyDetail, page: int) -> tuple[SearchPage | None, str | None]:
    if not study.embedded:
        message = (
            f"Study {study.study_pk} has no embedding from model {study.model_id}, usually because it has no "
            "usable cine series, so it cannot seed a search for similar studies."
        )
        return None, message
    offset = (page - 1) * SIMILAR_PAGE_SIZE
    try:
        similar = service.more_like_this(study.study_pk, SearchFilters(), limit=SIMILAR_PAGE_SIZE, offset=offset)
    except StudyNotEmbeddedError as error:
        return None, str(error)
    if not similar.hits and similar.total > 0:
        return None, f"Page {page} is past the last page of similar studies."
    return similar, None


def _similar_pager(request: Request, study_pk: int, page: int, similar: SearchPage) -> Pager:
    def link(number: int) -> PageLink:
        return PageLink(
            page_url=_study_url(request, study_pk, number),
            fragment_url=_root(request) + f"/studies/{study_pk}/similar?page={number}",
        )

    return build_pager(
        page=page,
        page_size=SIMILAR_PAGE_SIZE,
        total=similar.total,
        link=link,
        target="#similar",
        focus_id="similar-heading",
        label="Pages of similar studies",
    )


def _study_url(request: Request, study_pk: int, similar_page: int) -> str:
    url = _root(request) + f"/studies/{study_pk}"
    return f"{url}?similar_page={similar_page}" if similar_page > 1 else url


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")
