"""Metadata filters of a search and the SQL that selects the studies passing them.

A filtered search ranks only the studies that pass the filters, inside the
index search, and never cuts a fixed top-k afterwards. So a filter that keeps
1 % of the archive still returns that 1 %'s best matches. Ranked searches
evaluate filters on in-memory columns (:mod:`search_app.filter_table`). The
SQL here defines the same filters for listing without a query, and tests
check that both agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, fields

import numpy as np
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from indexer.catalog.models import Series, Study, StudyEmbedding
from search_app.errors import InvalidFilterError

# Cine views that the "views present" filter understands, in anatomical order.
CINE_VIEWS: tuple[str, ...] = ("sax", "2ch", "3ch", "4ch", "lvot")
SEXES: tuple[str, ...] = ("F", "M", "O")
# MagneticFieldStrength is stored as written (1.494, 2.89 …), so a requested
# field strength matches within this many tesla.
FIELD_STRENGTH_TOLERANCE_T = 0.1


@dataclass(frozen=True)
class SearchFilters:
    """Metadata filters; ``None`` or an empty set means "any".

    ``sex`` is a PatientSex code (F, M or O). Ages are in years and both ends
    of every range are inclusive. ``views`` lists cine views that a study must
    all have (values of :data:`CINE_VIEWS`). ``real_segments_only`` keeps the
    studies whose embedding used no filled input segment, which matters for
    models such as CMR-CLIP that fill missing views.
    """

    sex: str | None = None
    age_min: float | None = None
    age_max: float | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    field_strength_t: float | None = None
    manufacturer: str | None = None
    views: frozenset[str] = field(default_factory=frozenset)
    real_segments_only: bool = False

    def __post_init__(self) -> None:
        # Accept any iterable of views and normalise case, so callers may pass a list.
        object.__setattr__(self, "views", frozenset(view.lower() for view in self.views))
        if self.sex is not None:
            object.__setattr__(self, "sex", self.sex.upper())
        if self.manufacturer is not None:
            object.__setattr__(self, "manufacturer", self.manufacturer.strip() or None)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidFilterError` for values no study can match."""
        if self.sex is not None and self.sex not in SEXES:
            raise InvalidFilterError(f"sex must be one of {', '.join(SEXES)}, not {self.sex!r}")
        for name in ("age_min", "age_max"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 130:
                raise InvalidFilterError(f"{name} must be between 0 and 130 years, not {value}")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise InvalidFilterError(f"age_min ({self.age_min}) is greater than age_max ({self.age_max})")
        if self.date_from is not None and self.date_to is not None and self.date_from > self.date_to:
            raise InvalidFilterError(f"date_from ({self.date_from}) is after date_to ({self.date_to})")
        if self.field_strength_t is not None and not 0 < self.field_strength_t <= 20:
            raise InvalidFilterError(f"field_strength_t must be in tesla, above 0 and at most 20, not {self.field_strength_t}")
        unknown = sorted(self.views - set(CINE_VIEWS))
        if unknown:
            raise InvalidFilterError(f"unknown view(s) {', '.join(unknown)}; expected some of {', '.join(CINE_VIEWS)}")

    def is_empty(self) -> bool:
        """Return whether no filter is set, so every indexed study is a candidate."""
        return all(getattr(self, item.name) == item.default for item in fields(self) if item.name != "views") and not self.views

    def as_query_params(self) -> dict[str, str | list[str]]:
        """Return the filters as URL query parameters, the form the API and the pages read back."""
        params: dict[str, str | list[str]] = {}
        for name in ("sex", "age_min", "age_max", "date_from", "date_to", "field_strength_t", "manufacturer"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value.isoformat() if isinstance(value, dt.date) else _format_number(value)
        if self.views:
            params["view"] = [view for view in CINE_VIEWS if view in self.views]
        if self.real_segments_only:
            params["real_segments_only"] = "true"
        return params


def _format_number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def candidate_query(filters: SearchFilters, model_id: str) -> Select[tuple[int]]:
    """Build the SELECT of embedded study primary keys that pass ``filters``, in key order."""
    query = select(StudyEmbedding.study_pk).where(StudyEmbedding.model_id == model_id)
    study_conditions = []
    if filters.sex is not None:
        study_conditions.append(Study.sex == filters.sex)
    if filters.age_min is not None:
        study_conditions.append(Study.age_years >= filters.age_min)
    if filters.age_max is not None:
        study_conditions.append(Study.age_years <= filters.age_max)
    if filters.date_from is not None:
        study_conditions.append(Study.study_date >= filters.date_from)
    if filters.date_to is not None:
        study_conditions.append(Study.study_date <= filters.date_to)
    if filters.field_strength_t is not None:
        study_conditions.append(
            Study.field_strength_t.between(
                filters.field_strength_t - FIELD_STRENGTH_TOLERANCE_T,
                filters.field_strength_t + FIELD_STRENGTH_TOLERANCE_T,
            )
        )
    if filters.manufacturer is not None:
        study_conditions.append(func.lower(Study.manufacturer).contains(filters.manufacturer.lower(), autoescape=True))
    if study_conditions:
        query = query.join(Study, Study.id == StudyEmbedding.study_pk).where(*study_conditions)
    for view in sorted(filters.views):
        query = query.where(
            exists().where(Series.study_pk == StudyEmbedding.study_pk, Series.kind == "cine", Series.view == view)
        )
    return query.order_by(StudyEmbedding.study_pk)


def candidate_study_pks(session: Session, filters: SearchFilters, model_id: str) -> np.ndarray:
    """Return the sorted int64 primary keys of embedded studies that pass ``filters``."""
    query = candidate_query(filters, model_id)
    if not filters.real_segments_only:
        return np.fromiter(session.scalars(query), dtype=np.int64)

    rows = session.execute(query.add_columns(StudyEmbedding.segments)).all()
    kept = (study_pk for study_pk, segments in rows if _all_segments_real(segments))
    return np.fromiter(kept, dtype=np.int64)


def _all_segments_real(segments: dict[str, str] | None) -> bool:
    # A model that reports no segments filled nothing in.
    return not segments or all(state == "real" for state in segments.values())


def parse_views(values: Iterable[str]) -> frozenset[str]:
    """Parse repeated or comma-separated view parameters (``view=sax&view=4ch`` or ``view=sax,4ch``)."""
    views: set[str] = set()
    for value in values:
        views.update(part.strip().lower() for part in value.split(",") if part.strip())
    return frozenset(views)
