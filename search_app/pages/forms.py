"""The search form: URL query parameters to a query, filters and page, and back.

The URL is the state of a search, so a search can be bookmarked or shared and
a direct load renders the same results as the htmx update did. The parameter
names are those of :meth:`search_app.filters.SearchFilters.as_query_params`,
which the JSON API reads too: ``q``, ``sex``, ``age_min``, ``age_max``,
``date_from``, ``date_to`` (ISO 8601 dates), ``field_strength_t`` (tesla),
``manufacturer``, ``view`` (repeated) and ``page`` (1-based).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from search_app.errors import InvalidFilterError
from search_app.filters import CINE_VIEWS, SearchFilters, parse_views
from search_app.pages.formatting import SEX_LABELS, sex_label, tesla, view_label

PAGE_SIZE = 10
MAX_QUERY_LENGTH = 500
# The query service accepts offsets up to 10,000, which is page 1,000 at 10 hits a page.
MAX_PAGE = 1000
MIN_AGE_YEARS = 0
MAX_AGE_YEARS = 130
MAX_FIELD_STRENGTH_T = 20

FILTER_PARAMS: tuple[str, ...] = (
    "sex",
    "age_min",
    "age_max",
    "date_from",
    "date_to",
    "field_strength_t",
    "manufacturer",
    "view",
)


class FormFieldError(InvalidFilterError):
    """An invalid value in one search form parameter, named by ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ActiveFilter:
    """A filter that is set, with the query string of the same search without it."""

    label: str
    remove_query: str


@dataclass
class SearchForm:
    """The parsed search parameters of one request.

    ``raw_values`` keeps each parameter as the user sent it, so that an
    invalid value is shown back in its control next to the error message.
    ``error`` is set when a parameter is invalid, and then ``filters`` is empty
    and no search runs. ``error_field`` names the parameter at fault when one
    parameter is.
    """

    query: str = ""
    filters: SearchFilters = field(default_factory=SearchFilters)
    page: int = 1
    raw_values: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    error_field: str | None = None

    @property
    def offset(self) -> int:
        """Index of the first hit of this page in the ranking, 0-based."""
        return (self.page - 1) * PAGE_SIZE

    @property
    def limit(self) -> int:
        """Number of hits per page."""
        return PAGE_SIZE

    @property
    def views(self) -> frozenset[str]:
        """Cine views that the "views present" checkboxes require."""
        return self.filters.views

    @property
    def sex(self) -> str | None:
        """PatientSex code of the sex filter."""
        return self.filters.sex

    @property
    def field_strength(self) -> float | None:
        """MagneticFieldStrength of the field strength filter, in tesla."""
        return self.filters.field_strength_t

    @property
    def manufacturer(self) -> str | None:
        """Text that the study's Manufacturer must contain."""
        return self.filters.manufacturer

    def is_blank(self) -> bool:
        """Return whether neither a query nor a filter was given."""
        return not self.query and self.filters.is_empty() and self.error is None

    def is_invalid(self, name: str) -> bool:
        """Return whether parameter ``name`` is the invalid value of this form."""
        return self.error_field == name

    def raw(self, name: str) -> str:
        """Return the value of parameter ``name`` as sent, or an empty string."""
        return self.raw_values.get(name, "")

    def params(self, *, query: str | None = None, page: int = 1, filters: bool = True) -> list[tuple[str, str]]:
        """Return the URL parameters of this search, with blank ones left out.

        ``query`` replaces the query text, ``page`` sets the page (1 is left
        out, because it is the default), and ``filters=False`` drops every
        filter.
        """
        text = self.query if query is None else query
        pairs: list[tuple[str, str]] = [("q", text)] if text else []
        if filters:
            for name, value in self.filters.as_query_params().items():
                if isinstance(value, list):
                    pairs.extend((name, item) for item in value)
                else:
                    pairs.append((name, value))
        if page > 1:
            pairs.append(("page", str(page)))
        return pairs

    def query_string(self, *, query: str | None = None, page: int = 1, filters: bool = True) -> str:
        """Return :meth:`params` URL-encoded, without the leading ``?``."""
        return urlencode(self.params(query=query, page=page, filters=filters))

    def active_filters(self) -> list[ActiveFilter]:
        """List the filters that are set, each with a link target that removes it."""
        pairs = self.params()
        active: list[ActiveFilter] = []
        for index, (name, value) in enumerate(pairs):
            if name in ("q", "page"):
                continue
            remaining = pairs[:index] + pairs[index + 1 :]
            active.append(ActiveFilter(label=describe_filter(name, value), remove_query=urlencode(remaining)))
        return active


def describe_filter(name: str, value: str) -> str:
    """Describe one filter parameter for a person, for example "age from 40"."""
    descriptions: dict[str, Callable[[str], str]] = {
        "sex": lambda text: f"sex {sex_label(text).lower()}",
        "age_min": lambda text: f"age from {text}",
        "age_max": lambda text: f"age up to {text}",
        "date_from": lambda text: f"studies from {text}",
        "date_to": lambda text: f"studies up to {text}",
        "field_strength_t": lambda text: f"field strength {tesla(float(text))}",
        "manufacturer": lambda text: f"manufacturer {text}",
        "view": lambda text: f"has {view_label(text)} cine",
        "real_segments_only": lambda _text: "real views only",
    }
    return descriptions.get(name, lambda text: f"{name} {text}")(value)


def parse_search_form(params: QueryParams) -> SearchForm:
    """Parse a request's query parameters into a :class:`SearchForm`.

    Blank values mean "any", as an empty form control sends them. The first
    invalid value sets ``error``, and then no search runs.
    """
    get_list = params.getlist
    raw_values = {name: get_list(name)[-1].strip() for name in ("q", "page", *FILTER_PARAMS) if get_list(name)}
    query = " ".join(raw_values.get("q", "").split())
    form = SearchForm(query=query, raw_values=raw_values)

    try:
        if len(query) > MAX_QUERY_LENGTH:
            raise FormFieldError("q", f"The query is {len(query)} characters long; the maximum is {MAX_QUERY_LENGTH}.")
        form.page = _parse_page(raw_values.get("page", ""))
        age_min = _parse_age(raw_values, "age_min", "Minimum age")
        age_max = _parse_age(raw_values, "age_max", "Maximum age")
        if age_min is not None and age_max is not None and age_min > age_max:
            raise FormFieldError("age_min", f"Minimum age ({age_min:g}) is greater than maximum age ({age_max:g}).")
        date_from = _parse_date(raw_values, "date_from", "Study date from")
        date_to = _parse_date(raw_values, "date_to", "Study date to")
        if date_from is not None and date_to is not None and date_from > date_to:
            raise FormFieldError("date_from", f"Study date from ({date_from}) is after study date to ({date_to}).")
        form.filters = SearchFilters(
            sex=_parse_sex(raw_values),
            age_min=age_min,
            age_max=age_max,
            date_from=date_from,
            date_to=date_to,
            field_strength_t=_parse_field_strength(raw_values),
            manufacturer=raw_values.get("manufacturer") or None,
            views=_parse_views(get_list("view")),
            real_segments_only=_parse_flag(get_list("real_segments_only")),
        )
    except InvalidFilterError as error:
        form.filters = SearchFilters()
        form.error = str(error)
        form.error_field = error.field if isinstance(error, FormFieldError) else None
    return form


def _parse_page(text: str) -> int:
    if not text:
        return 1
    try:
        page = int(text)
    except ValueError:
        raise FormFieldError("page", f"Page must be a whole number, not {text!r}.") from None
    if not 1 <= page <= MAX_PAGE:
        raise FormFieldError("page", f"Page must be between 1 and {MAX_PAGE}, not {page}.")
    return page


def _parse_number(raw_values: Mapping[str, str], name: str, label: str) -> float | None:
    text = raw_values.get(name, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormFieldError(name, f"{label} must be a number, not {text!r}.") from None
    if not math.isfinite(value):
        raise FormFieldError(name, f"{label} must be a finite number, not {text!r}.")
    return value


def _parse_age(raw_values: Mapping[str, str], name: str, label: str) -> float | None:
    value = _parse_number(raw_values, name, label)
    if value is not None and not MIN_AGE_YEARS <= value <= MAX_AGE_YEARS:
        raise FormFieldError(name, f"{label} must be between {MIN_AGE_YEARS} and {MAX_AGE_YEARS} years, not {value:g}.")
    return value


def _parse_field_strength(raw_values: Mapping[str, str]) -> float | None:
    value = _parse_number(raw_values, "field_strength_t", "Field strength")
    if value is not None and not 0 < value <= MAX_FIELD_STRENGTH_T:
        raise FormFieldError("field_strength_t", f"Field strength must be above 0 and at most {MAX_FIELD_STRENGTH_T} T, not {value:g}.")
    return value


def _parse_sex(raw_values: Mapping[str, str]) -> str | None:
    text = raw_values.get("sex", "").upper()
    if not text:
        return None
    if text not in SEX_LABELS:
        raise FormFieldError("sex", f"Sex must be one of {', '.join(SEX_LABELS)}, not {text!r}.")
    return text


def _parse_date(raw_values: Mapping[str, str], name: str, label: str) -> dt.date | None:
    text = raw_values.get(name, "")
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FormFieldError(name, f"{label} must be a date as YYYY-MM-DD, not {text!r}.") from None


def _parse_views(values: Sequence[str]) -> frozenset[str]:
    views = parse_views(values)
    unknown = sorted(views - set(CINE_VIEWS))
    if unknown:
        raise FormFieldError("view", f"Unknown view {', '.join(unknown)}; the views are {', '.join(CINE_VIEWS)}.")
    return views


def _parse_flag(values: Sequence[str]) -> bool:
    return bool(values) and values[-1].strip().lower() in ("1", "true", "on", "yes")


def cine_view_options() -> tuple[str, ...]:
    """Return the cine views that the "views present" filter offers, in anatomical order."""
    return CINE_VIEWS
