"""The Jinja2 environment of the pages and the helper that renders a template.

Templates live in ``templates/`` at the repository root. Undefined names raise
instead of rendering as empty text, so a template that reads a field the
service does not return fails its tests rather than showing a blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from cmr_search.settings import PROJECT_ROOT
from search_app.pages import formatting

TEMPLATE_DIR = PROJECT_ROOT / "templates"

SYNTHETIC_MODEL_NOTE = "Model trained on synthetic phantom data only — not for diagnosis."


def build_environment() -> jinja2.Environment:
    """Create the Jinja2 environment with the pages' filters and globals."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        view_label=formatting.view_label,
        kind_label=formatting.kind_label,
        view_list=formatting.view_list,
        segment_label=formatting.segment_label,
        sex_label=formatting.sex_label,
        age=formatting.age,
        study_date=formatting.study_date,
        tesla=formatting.tesla,
        tesla_value=formatting.tesla_value,
        percent=formatting.percent,
    )
    environment.tests["finite_number"] = formatting.is_finite_number
    environment.globals.update(
        page_url=page_url,
        static_url=static_url,
        study_title=formatting.study_title,
        scanner_description=formatting.scanner_description,
        synthetic_note=SYNTHETIC_MODEL_NOTE,
    )
    return environment


@jinja2.pass_context
def page_url(context: jinja2.runtime.Context, path: str) -> str:
    """Prefix an absolute app path with the ASGI root path, for apps served under a prefix."""
    request: Request = context["request"]
    return request.scope.get("root_path", "").rstrip("/") + path


@jinja2.pass_context
def static_url(context: jinja2.runtime.Context, path: str) -> str:
    """Return the URL of a file under ``/static``."""
    return page_url(context, f"/static/{path}")


ENVIRONMENT = build_environment()


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template`` with ``context`` plus the request into an HTML response."""
    html = ENVIRONMENT.get_template(template).render({**context, "request": request})
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
