"""HTML pages of the search app: the search page, the study page and the error pages.

:func:`register` adds them to an app that ``search_app.app.create_app`` has
already set up with the JSON API, and the routes reach the search service
through the same dependencies as the API (:mod:`search_app.dependencies`).
"""

from __future__ import annotations

from fastapi import FastAPI

from search_app.pages import search, study
from search_app.pages.assets import mount_assets
from search_app.pages.errors import install_error_pages


def register(app: FastAPI) -> None:
    """Add the page routes, the static files and the HTML error pages to ``app``."""
    app.include_router(search.router)
    app.include_router(study.router)
    mount_assets(app)
    install_error_pages(app)
