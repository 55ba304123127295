"""Static files of the pages: the app's CSS and JavaScript, and htmx.

htmx is not committed. ``npm install`` at the repository root installs the
version pinned in ``package.json`` into ``node_modules/``, and the app serves
that file itself, because hospital networks often cannot reach a CDN.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from cmr_search.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
HTMX_PATH = PROJECT_ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
HTMX_URL_PATH = "/static/vendor/htmx.min.js"


def mount_assets(app: FastAPI) -> None:
    """Serve ``/static`` from ``search_app/static`` and htmx from ``node_modules``.

    A missing htmx is logged, not fatal: every page still works through plain
    links and form submissions, only without in-place updates.
    """
    if not HTMX_PATH.is_file():
        logger.error("htmx not found at %s; run `npm install` in %s to install it", HTMX_PATH, PROJECT_ROOT)

    # The htmx route must come before the /static mount, which would
    # otherwise match the path first.
    @app.get(HTMX_URL_PATH, include_in_schema=False, name="htmx")
    def htmx_script() -> FileResponse:
        if not HTMX_PATH.is_file():
            raise HTTPException(status_code=404, detail=f"htmx is not installed; run `npm install` in {PROJECT_ROOT}")
        return FileResponse(HTMX_PATH, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
