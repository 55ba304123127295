"""The OpenAPI page at ``/docs``, with Swagger UI served by the app itself.

FastAPI's built-in ``/docs`` and ``/redoc`` pages load their scripts, styles,
fonts and favicon from CDNs, which closed hospital networks cannot reach. This
page uses the ``swagger-ui-dist`` npm package that ``scripts/setup`` installs
into ``node_modules/`` instead.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from cmr_search.settings import PROJECT_ROOT

SWAGGER_UI_DIR = PROJECT_ROOT / "node_modules" / "swagger-ui-dist"
SWAGGER_UI_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
ASSET_PREFIX = "/docs/assets"


def add_api_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app.openapi_url`` at ``/docs`` from local files.

    Create the app with ``docs_url=None`` and ``redoc_url=None`` so that the
    CDN-based pages are not registered as well.
    """

    @app.get(f"{ASSET_PREFIX}/{{name}}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        media_type = SWAGGER_UI_FILES.get(name)
        path = SWAGGER_UI_DIR / name
        if media_type is None or not path.is_file():
            raise HTTPException(status_code=404, detail=f"{name} not found; run `npm install` in {PROJECT_ROOT}")
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    def swagger_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )
