"""``/api/stats`` and ``/api/health``: catalog counts and a liveness check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from search_app.dependencies import get_backend, get_search_service
from search_app.query import SearchBackend, SearchService
from search_app.results import CatalogStats

router = APIRouter(prefix="/api", tags=["system"])


class Health(BaseModel):
    """Whether the app can search, and with which model."""

    status: str
    model_id: str
    indexed_studies: int
    index_kind: str | None
    detail: str | None = None


@router.get("/stats", response_model=CatalogStats, summary="Catalog counts and filter values")
def stats(service: Annotated[SearchService, Depends(get_search_service)]) -> CatalogStats:
    """Count studies, cine studies, embedded and indexed studies, and list the filter values present."""
    return service.catalog_stats()


@router.get("/health", response_model=Health, summary="Liveness and index state")
def health(backend: Annotated[SearchBackend, Depends(get_backend)]) -> Health:
    """Return ``ok``, or ``index_mismatch`` with the message that explains how to rebuild the index."""
    index = backend.index
    return Health(
        status="ok" if backend.mismatch is None else "index_mismatch",
        model_id=backend.model_id,
        indexed_studies=len(index) if index is not None else 0,
        index_kind=index.stats.kind if index is not None else None,
        detail=backend.mismatch.message if backend.mismatch is not None else None,
    )
