"""The JSON API, one router per resource, documented at ``/docs`` by FastAPI's OpenAPI page."""

from __future__ import annotations

from fastapi import FastAPI

from search_app.api import previews, search, studies, system


def include_routers(app: FastAPI) -> None:
    """Add every API router and the preview route to ``app``."""
    app.include_router(search.router)
    app.include_router(studies.router)
    app.include_router(system.router)
    app.include_router(previews.router)
