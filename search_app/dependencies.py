"""FastAPI dependencies shared by the JSON API and the HTML pages.

``create_app`` stores the settings, the session factory and the
:class:`~search_app.query.SearchBackend` on ``app.state``; these functions
hand them to route functions. Filter parameters arrive as strings, because an
HTML form sends an empty string for a blank control, and are parsed here with
errors that name the parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from search_app.errors import InvalidFilterError
from search_app.filters import SearchFilters, parse_views
from search_app.query import SearchBackend, SearchService


def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


def get_backend(request: Request) -> SearchBackend:
    """Return the app-wide search backend (encoder and index)."""
    return request.app.state.backend


def get_session(request: Request) -> Iterator[Session]:
    """Open a catalog session for one request and close it afterwards."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


def get_search_service(
    session: Annotated[Session, Depends(get_session)], backend: Annotated[SearchBackend, Depends(get_backend)]
) -> SearchService:
    """Return a search service bound to this request's session."""
    return SearchService(session, backend)


def search_filters(
    sex: Annotated[str | None, Query(description="PatientSex: F, M or O.")] = None,
    age_min: Annotated[str | None, Query(description="Minimum age in years, inclusive.")] = None,
    age_max: Annotated[str | None, Query(description="Maximum age in years, inclusive.")] = None,
    date_from: Annotated[str | None, Query(description="First StudyDate, YYYY-MM-DD, inclusive.")] = None,
    date_to: Annotated[str | None, Query(description="Last StudyDate, YYYY-MM-DD, inclusive.")] = None,
    field_strength_t: Annotated[
        str | None, Query(description="MagneticFieldStrength in tesla, matched within ±0.1 T (1.5 or 3).")
    ] = None,
    manufacturer: Annotated[str | None, Query(description="Part of the Manufacturer name, any case.")] = None,
    view: Annotated[
        list[str] | None,
        Query(description="Cine views the study must have: sax, 2ch, 3ch, 4ch, lvot. Repeat or comma-separate."),
    ] = None,
    real_segments_only: Annotated[
        str | None, Query(description="true: only studies whose embedding used no filled input segment.")
    ] = None,
) -> SearchFilters:
    """Parse the filter query parameters; blank values mean "any"."""
    return SearchFilters(
        sex=_blank_to_none(sex),
        age_min=_parse_float("age_min", age_min),
        age_max=_parse_float("age_max", age_max),
        date_from=_parse_date("date_from", date_from),
        date_to=_parse_date("date_to", date_to),
        field_strength_t=_parse_float("field_strength_t", field_strength_t),
        manufacturer=_blank_to_none(manufacturer),
        views=parse_views(view or []),
        real_segments_only=_parse_bool("real_segments_only", real_segments_only),
    )


def _blank_to_none(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()


def _parse_float(name: str, value: str | None) -> float | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidFilterError(f"{name} must be a number, not {value!r}") from None


def _parse_date(name: str, value: str | None) -> dt.date | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidFilterError(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None


def _parse_bool(name: str, value: str | None) -> bool:
    value = _blank_to_none(value)
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidFilterError(f"{name} must be true or false, not {value!r}")
