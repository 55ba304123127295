"""The FastAPI application factory.

``create_app`` loads the model and the FAISS index once, checks that the
index matches the catalog and the model, and wires the JSON API, the preview
route and (when the package is present) the HTML pages. On a mismatch it
raises :class:`~search_app.errors.IndexMismatchError` unless
``allow_mismatch`` is set. In that case every search returns the mismatch
message (HTTP 503), so that a page can explain how to rebuild.

HTML error pages: the pages package may set ``app.state.render_error_page``
to a callable ``(request, status_code, message) -> Response``. Errors on
paths outside ``/api`` and ``/previews`` are then rendered by it; otherwise,
and always under ``/api``, errors are JSON ``{"detail": message}``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import threadpoolctl
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from cmr_search.settings import Settings
from embeddings.encoder import StudyEncoder
from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database
from search_app import api
from search_app.api_docs import add_api_docs
from search_app.errors import IndexMismatchError, InvalidFilterError, StudyNotEmbeddedError, StudyNotFoundError
from search_app.filter_table import FilterTable
from search_app.index_store import check_consistency, load_index
from search_app.query import SearchBackend
from search_app.vector_index import IndexConfig

logger = logging.getLogger(__name__)

JSON_PREFIXES = ("/api", "/previews")


def create_app(
    settings: Settings,
    model: StudyEncoder | str = "default",
    *,
    weights: Path | None = None,
    tokenizer: Path | None = None,
    index_config: IndexConfig | None = None,
    allow_mismatch: bool = False,
    migrate: bool = True,
    threads_per_query: int | None = None,
) -> FastAPI:
    """Build the app over the catalog and index of ``settings``.

    ``model`` is an encoder, or a name for ``embeddings.factory.load_encoder``
    (with ``weights`` and ``tokenizer``). ``migrate`` applies pending catalog
    migrations first, so an empty data directory serves the empty-archive page.
    ``threads_per_query`` caps the threads of faiss, BLAS and torch for the
    whole process; ``cmr-search serve`` passes 1, and None (the default,
    for tests and embedding programs) leaves them alone. The server runs
    requests in parallel on its thread pool, and on a loaded 2-core machine
    one thread per query made an exact search over 10^4 vectors take 0.8 ms
    instead of 17 ms.

    Raises:
        IndexMismatchError: the index does not match the catalog or the model,
            and ``allow_mismatch`` is false.
    """
    started = time.perf_counter()
    settings.ensure_dirs()
    if migrate:
        upgrade_database(settings.database_url)
    encoder = model if not isinstance(model, str) else _load_encoder(model, weights, tokenizer)
    if threads_per_query is not None:
        limit_search_threads(threads_per_query)
    engine = create_catalog_engine(settings.database_url)
    sessions = session_factory(engine)
    backend = open_backend(settings, sessions, encoder, index_config, allow_mismatch)

    app = FastAPI(
        title="cmr-search",
        summary="Natural-language case retrieval for cardiac MRI archives.",
        description=(
            "Search catalogued cardiac MRI studies by free text, filter them by metadata, and read one study. "
            "Zero-shot finding scores come from the loaded model; when it was trained on synthetic data only, "
            "they are not for diagnosis."
        ),
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    add_api_docs(app)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = sessions
    app.state.backend = backend
    app.state.render_error_page = None
    api.include_routers(app)
    _add_error_handlers(app)
    _include_pages(app)
    logger.info(
        "app ready in %.1f s: model %s, %d indexed studies%s",
        time.perf_counter() - started,
        backend.model_id,
        len(backend.index) if backend.index is not None else 0,
        " (index mismatch: searches are rejected)" if backend.mismatch else "",
    )
    return app


def open_backend(
    settings: Settings,
    sessions: sessionmaker[Session],
    encoder: StudyEncoder,
    index_config: IndexConfig | None = None,
    allow_mismatch: bool = False,
) -> SearchBackend:
    """Load the index of ``encoder``'s model and check it against the catalog."""
    try:
        index = load_index(settings, encoder.model_id, index_config)
        with sessions() as session:
            check_consistency(settings, session, index, encoder.model_id, encoder.dimension)
            filter_table = FilterTable.load(session, index.ids, encoder.model_id) if index is not None else None
    except IndexMismatchError as mismatch:
        if not allow_mismatch:
            raise
        logger.error("%s", mismatch.message)
        return SearchBackend(settings, encoder, None, mismatch)
    return SearchBackend(settings, encoder, index, filter_table=filter_table)


def limit_search_threads(threads: int) -> None:
    """Cap the threads of faiss (OpenMP), every BLAS library and torch, if loaded, at ``threads``.

    On the loaded 2-core test machine the default model's text tower took
    336 ms per query with torch's 2 intra-op threads and 39 ms with one.
    """
    faiss.omp_set_num_threads(threads)
    threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
    torch = sys.modules.get("torch")  # imported by real encoders; test encoders never load it
    if torch is not None:
        torch.set_num_threads(threads)


def _load_encoder(model: str, weights: Path | None, tokenizer: Path | None) -> StudyEncoder:
    from embeddings.factory import load_encoder  # imports torch, so only when a name is given

    return load_encoder(model, weights, tokenizer)


def _include_pages(app: FastAPI) -> None:
    # The HTML pages are a separate package of this stage; the JSON API works without them.
    if importlib.util.find_spec("search_app.pages") is None:
        return
    from search_app import pages

    register = getattr(pages, "register", None)
    if register is not None:
        register(app)


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IndexMismatchError, _handle_mismatch)  # type: ignore[arg-type]
    app.add_exception_handler(StudyNotFoundError, _handle_not_found)
    app.add_exception_handler(StudyNotEmbeddedError, _handle_not_embedded)
    app.add_exception_handler(InvalidFilterError, _handle_invalid_filter)
    app.add_exception_handler(RequestValidationError, _handle_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _handle_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _handle_unexpected)


def error_response(request: Request, status_code: int, message: str) -> Response:
    """Return ``{"detail": message}``, or the HTML error page outside the JSON paths when pages are installed."""
    render: Callable[[Request, int, str], Response] | None = request.app.state.render_error_page
    if render is not None and not request.url.path.startswith(JSON_PREFIXES):
        return render(request, status_code, message)
    return JSONResponse({"detail": message}, status_code=status_code)


async def _handle_mismatch(request: Request, error: IndexMismatchError) -> Response:
    return error_response(request, 503, error.message)


async def _handle_not_found(request: Request, error: Exception) -> Response:
    return error_response(request, 404, str(error))


async def _handle_not_embedded(request: Request, error: Exception) -> Response:
    return error_response(request, 409, str(error))


async def _handle_invalid_filter(request: Request, error: Exception) -> Response:
    return error_response(request, 422, str(error))


async def _handle_validation(request: Request, error: RequestValidationError) -> Response:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("query", "path", "body"))
        problems.append(f"{where or 'request'}: {item.get('msg', 'invalid value')}")
    return error_response(request, 422, "invalid request: " + "; ".join(problems))


async def _handle_http(request: Request, error: StarletteHTTPException) -> Response:
    response = error_response(request, error.status_code, str(error.detail))
    for name, value in (error.headers or {}).items():
        response.headers[name] = value
    return response


async def _handle_unexpected(request: Request, error: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "internal server error; the server log has the details")
