"""Error pages: every failure of a page request is a readable page, never a traceback.

The handlers installed here handle only page requests. Requests for the JSON
API, the previews and the OpenAPI documents go on to the handler that was
installed before (the API's JSON errors), or to FastAPI's default. An htmx
request gets the error as a fragment for the region it was loading.

``create_app`` also offers ``app.state.render_error_page`` for errors that its
own handlers turn into responses; :func:`install_error_pages` sets it to
:func:`render_status_page`, so an error class added to the API later still
gets an HTML page on page paths.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from search_app.dependencies import get_settings
from search_app.errors import (
    IndexMismatchError,
    InvalidFilterError,
    SearchError,
    StudyNotEmbeddedError,
    StudyNotFoundError,
)
from search_app.pages.templating import render

logger = logging.getLogger(__name__)

ExceptionHandler = Callable[[Request, Any], Awaitable[Response] | Response]

# Paths that return JSON, images or scripts, never an HTML page.
NON_PAGE_PREFIXES: tuple[str, ...] = ("/api/", "/previews/", "/static/", "/openapi.json", "/docs", "/redoc")


@dataclass(frozen=True)
class ErrorPage:
    """The content of an error page: HTTP status, title, message and an optional command."""

    status_code: int
    title: str
    message: str
    command: str | None = None
    command_intro: str = ""
    reference: str | None = None


def is_page_request(request: Request) -> bool:
    """Return whether ``request`` is for an HTML page rather than the API or a file."""
    path = request.url.path.removeprefix(request.scope.get("root_path", "").rstrip("/"))
    return path != "/api" and not path.startswith(NON_PAGE_PREFIXES)


def render_error(request: Request, page: ErrorPage) -> Response:
    """Render ``page`` as a whole page, or as a fragment for an htmx request."""
    if page.status_code >= 500:
        logger.warning("page error %d on %s %s: %s", page.status_code, request.method, request.url.path, page.title)
    else:
        logger.info("page error %d on %s %s: %s", page.status_code, request.method, request.url.path, page.title)
    is_htmx = request.headers.get("HX-Request") == "true"
    is_history_restore = request.headers.get("HX-History-Restore-Request") == "true"
    template = "_error_fragment.html" if is_htmx and not is_history_restore else "error.html"
    context = {
        "status_code": page.status_code,
        "title": page.title,
        "message": page.message,
        "command": page.command,
        "command_intro": page.command_intro,
        "reference": page.reference,
    }
    return render(request, template, context, status_code=page.status_code)


_STATUS_TITLES: dict[int, str] = {
    400: "Invalid request",
    404: "Not found",
    409: "Conflict",
    422: "Check the search form",
    503: "Search is unavailable",
}


def render_status_page(request: Request, status_code: int, message: str) -> Response:
    """Render an error page from a status code and a message, for the API's handlers.

    Paths that are not pages (static files, for example) get the API's JSON
    error instead.
    """
    if not is_page_request(request):
        return JSONResponse({"detail": message}, status_code=status_code)
    if status_code >= 500 and status_code != 503:
        title = "Something went wrong on the server"
    else:
        title = _STATUS_TITLES.get(status_code, "The request failed")
    return render_error(request, ErrorPage(status_code=status_code, title=title, message=message))


def index_mismatch_page(request: Request, error: IndexMismatchError) -> ErrorPage:
    """Describe a FAISS index that does not match the catalog or the model."""
    data_dir = get_settings(request).data_dir
    return ErrorPage(
        status_code=503,
        title="The search index does not match the catalog",
        message=f"{error.message} Searches are switched off until the index is rebuilt.",
        command=f"cmr-search reindex --data-dir {data_dir}",
        command_intro="Rebuild the index from the catalog, then restart the server:",
    )


async def _page_for_mismatch(request: Request, error: IndexMismatchError) -> Response:
    return render_error(request, index_mismatch_page(request, error))


async def _page_for_missing_study(request: Request, error: StudyNotFoundError) -> Response:
    message = f"Study {error.study_pk} is not in the catalog. A rescan may have removed it, or the link is wrong."
    return render_error(request, ErrorPage(status_code=404, title="Study not found", message=message))


async def _page_for_study_not_embedded(request: Request, error: StudyNotEmbeddedError) -> Response:
    return render_error(request, ErrorPage(status_code=409, title="Study not embedded", message=str(error)))


async def _page_for_invalid_filter(request: Request, error: Exception) -> Response:
    return render_error(request, ErrorPage(status_code=422, title="Check the search form", message=str(error)))


async def _page_for_search_error(request: Request, error: Exception) -> Response:
    return render_error(request, ErrorPage(status_code=400, title="The search failed", message=str(error)))


async def _page_for_http_error(request: Request, error: StarletteHTTPException) -> Response:
    if error.status_code == 404:
        page = ErrorPage(404, "Page not found", f"There is no page at {request.url.path}.")
    elif error.status_code == 405:
        page = ErrorPage(405, "Method not allowed", f"{request.method} is not allowed on {request.url.path}.")
    else:
        page = ErrorPage(error.status_code, "The request failed", str(error.detail))
    return render_error(request, page)


async def _page_for_invalid_request(request: Request, error: RequestValidationError) -> Response:
    problems = "; ".join(_describe_validation_error(item) for item in error.errors())
    page = ErrorPage(400, "Invalid address", f"The address has an invalid value: {problems}.")
    return render_error(request, page)


def _describe_validation_error(item: dict[str, object]) -> str:
    location = item.get("loc", ())
    name = str(location[-1]) if isinstance(location, (list, tuple)) and location else "value"
    return f"{name}: {item.get('msg', 'invalid')}"


async def _page_for_server_error(request: Request, error: Exception) -> Response:
    reference = uuid.uuid4().hex[:8]
    logger.error(
        "unhandled %s on %s %s, reference %s",
        type(error).__name__,
        request.method,
        request.url.path,
        reference,
        exc_info=error,
    )
    page = ErrorPage(
        status_code=500,
        title="Something went wrong on the server",
        message="The server could not complete this request. Try again, and if it happens again, tell the administrator.",
        reference=reference,
    )
    return render_error(request, page)


# Status codes of the JSON fallback, used only when the app has no API handler.
_SEARCH_ERROR_STATUS: dict[type[SearchError], int] = {
    IndexMismatchError: 503,
    StudyNotFoundError: 404,
    StudyNotEmbeddedError: 409,
    InvalidFilterError: 422,
}


async def _json_search_error(request: Request, error: SearchError) -> Response:
    return JSONResponse({"detail": str(error)}, status_code=_SEARCH_ERROR_STATUS.get(type(error), 400))


async def _json_server_error(request: Request, error: Exception) -> Response:
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


_PAGE_HANDLERS: tuple[tuple[type[Exception], ExceptionHandler, ExceptionHandler], ...] = (
    (IndexMismatchError, _page_for_mismatch, _json_search_error),
    (StudyNotFoundError, _page_for_missing_study, _json_search_error),
    (StudyNotEmbeddedError, _page_for_study_not_embedded, _json_search_error),
    (InvalidFilterError, _page_for_invalid_filter, _json_search_error),
    (SearchError, _page_for_search_error, _json_search_error),
    (StarletteHTTPException, _page_for_http_error, http_exception_handler),
    (RequestValidationError, _page_for_invalid_request, request_validation_exception_handler),
    (Exception, _page_for_server_error, _json_server_error),
)


def install_error_pages(app: FastAPI) -> None:
    """Add the error pages to ``app``, keeping its existing handlers for non-page requests.

    Call it after the API has installed its own handlers, because each
    handler found here is kept for API requests.
    """
    app.state.render_error_page = render_status_page
    existing = dict(app.exception_handlers)
    for error_class, page_handler, fallback in _PAGE_HANDLERS:
        previous = _nearest_handler(existing, error_class) or fallback
        app.add_exception_handler(error_class, _dispatch(page_handler, previous))


def _nearest_handler(handlers: dict[Any, ExceptionHandler], error_class: type[Exception]) -> ExceptionHandler | None:
    # Starlette picks the handler of the nearest class in the exception's MRO,
    # so an API handler for SearchError also covers IndexMismatchError.
    for candidate in error_class.__mro__:
        if candidate in handlers:
            return handlers[candidate]
    return None


def _dispatch(page_handler: ExceptionHandler, other_handler: ExceptionHandler) -> ExceptionHandler:
    async def handle(request: Request, error: Exception) -> Response:
        if is_page_request(request):
            response = page_handler(request, error)
        else:
            response = other_handler(request, error)
        return await response if inspect.isawaitable(response) else response

    return handle
