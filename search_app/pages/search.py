"""The search page and its results fragment.

``GET /`` renders the whole page, with the results of the search in its URL.
``GET /results`` renders only the results region for htmx, and its
``HX-Push-Url`` header puts the equivalent ``/?…`` URL in the address bar, so
the browser's history, bookmarks and shared links all reach the same results
through ``GET /``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from search_app.errors import InvalidFilterError
from search_app.dependencies import get_search_service, get_settings
from search_app.pages.formatting import SEX_LABELS
from search_app.pages.forms import MAX_QUERY_LENGTH, PAGE_SIZE, SearchForm, cine_view_options, parse_search_form
from search_app.pages.pagination import PageLink, Pager, build_pager
from search_app.pages.templating import render
from search_app.query import SearchService
from search_app.results import CatalogStats, SearchPage

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

EXAMPLE_QUERIES: tuple[str, ...] = (
    "dilated LV with reduced EF",
    "hypertrophic cardiomyopathy",
    "inferior wall motion abnormality with LGE",
    "pericardial effusion",
    "normal study",
)

RESULTS_FRAGMENT_PATH = "/results"


@dataclass(frozen=True)
class ResultsError:
    """A message shown in place of the results."""

    title: str
    message: str


@router.get("/", response_class=HTMLResponse, name="search_page")
def search_page(request: Request, service: SearchService = Depends(get_search_service)) -> Response:
    """Render the search page, with results when the URL contains a query or filters."""
    # A mismatched index has no studies, so check it before the empty-archive test.
    service.backend.require_index()
    stats = service.catalog_stats()
    if stats.indexed_studies == 0:
        return render(request, "empty.html", _empty_archive_context(request, stats))

    form = parse_search_form(request.query_params)
    context = {**_results_context(request, service, form), **_form_context(stats, form)}
    status_code = 422 if form.error else 200
    return render(request, "search.html", context, status_code=status_code)


@router.get(RESULTS_FRAGMENT_PATH, response_class=HTMLResponse, name="search_results")
def search_results(request: Request, service: SearchService = Depends(get_search_service)) -> Response:
    """Render the results region alone, for htmx; other clients are sent to the page."""
    form = parse_search_form(request.query_params)
    # An invalid form keeps its parameters as sent, so the page URL shows the same error.
    query = request.url.query if form.error else form.query_string(page=form.page)
    page_url = _page_url(request, query)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(page_url, status_code=303)

    context = _results_context(request, service, form)
    status_code = 422 if form.error else 200
    return render(request, "_results.html", context, status_code=status_code, headers={"HX-Push-Url": page_url})


def _results_context(request: Request, service: SearchService, form: SearchForm) -> dict[str, Any]:
    # The fragment needs no catalog counts, which cost several SQL queries.
    page, error = _run_search(service, form)
    index = service.backend.index
    return {
        "form": form,
        "page": page,
        "error": error,
        "pager": _search_pager(request, form, page) if page is not None else None,
        "synthetic_model": service.backend.trained_on_synthetic_data,
        "indexed_studies": len(index) if index is not None else 0,
    }


def _form_context(stats: CatalogStats, form: SearchForm) -> dict[str, Any]:
    return {
        "choices": _filter_choices(stats, form),
        "example_queries": EXAMPLE_QUERIES,
        "sex_options": list(SEX_LABELS.items()),
        "view_options": cine_view_options(),
        "max_query_length": MAX_QUERY_LENGTH,
    }


def _run_search(service: SearchService, form: SearchForm) -> tuple[SearchPage | None, ResultsError | None]:
    if form.error:
        return None, ResultsError(title="Check the search form", message=form.error)
    if form.is_blank():
        return None, None
    try:
        page = service.search(form.query, form.filters, limit=form.limit, offset=form.offset)
    except InvalidFilterError as error:
        return None, ResultsError(title="Check the search form", message=str(error))
    if not page.hits and page.total > 0:
        last_page = (page.total - 1) // PAGE_SIZE + 1
        message = f"Page {form.page} is past the last page of results ({last_page})."
        return page, ResultsError(title="No results on this page", message=message)
    return page, None


@dataclass(frozen=True)
class FilterChoices:
    """Values that the select controls offer, taken from the catalog."""

    manufacturers: list[str]
    field_strengths: list[float]


def _filter_choices(stats: CatalogStats, form: SearchForm) -> FilterChoices:
    # A value from a shared URL that this catalog lacks stays selectable, so
    # the form shows the filter that produced the results.
    manufacturers = list(stats.manufacturers)
    if form.manufacturer and form.manufacturer not in manufacturers:
        manufacturers.append(form.manufacturer)
    strengths = list(stats.field_strengths_t)
    if form.field_strength is not None and form.field_strength not in strengths:
        strengths.append(form.field_strength)
    return FilterChoices(manufacturers=manufacturers, field_strengths=sorted(strengths))


def _search_pager(request: Request, form: SearchForm, page: SearchPage) -> Pager:
    def link(number: int) -> PageLink:
        query = form.query_string(page=number)
        return PageLink(
            page_url=_page_url(request, query),
            fragment_url=_page_url(request, query, path=RESULTS_FRAGMENT_PATH),
        )

    return build_pager(
        page=form.page,
        page_size=PAGE_SIZE,
        total=page.total,
        link=link,
        target="#results",
        focus_id="results-heading",
        label="Result pages",
    )


def _page_url(request: Request, query: str, path: str = "/") -> str:
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{root}{path}?{query}" if query else f"{root}{path}"


def _empty_archive_context(request: Request, stats: CatalogStats) -> dict[str, Any]:
    settings = get_settings(request)
    return {"stats": stats, "data_dir": settings.data_dir, "model_id": stats.model_id}
