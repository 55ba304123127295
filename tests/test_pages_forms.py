"""The search form: URL parameters in, filters and shareable URLs out."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import pytest
from starlette.datastructures import QueryParams

from search_app.pages.forms import MAX_QUERY_LENGTH, PAGE_SIZE, parse_search_form
from search_app.pages.pagination import PageLink, build_pager


def test_blank_form_has_no_search() -> None:
    form = parse_search_form(QueryParams(""))

    assert form.is_blank()
    assert form.error is None
    assert form.page == 1
    assert form.query_string() == ""


def test_blank_controls_mean_any() -> None:
    # An untouched form sends every control, with empty values.
    form = parse_search_form(
        QueryParams("q=&sex=&age_min=&age_max=&date_from=&date_to=&field_strength_t=&manufacturer=")
    )

    assert form.is_blank()
    assert form.filters.is_empty()


def test_every_filter_parsed() -> None:
    form = parse_search_form(
        QueryParams(
            "q=dilated+LV&sex=f&age_min=40&age_max=70.5&date_from=2020-01-01&date_to=2024-12-31"
            "&field_strength_t=1.5&manufacturer=Siemens&view=sax&view=4ch&page=3"
        )
    )

    assert form.error is None
    assert form.query == "dilated LV"
    assert form.filters.sex == "F"
    assert form.filters.age_min == 40
    assert form.filters.age_max == 70.5
    assert form.filters.date_from == dt.date(2020, 1, 1)
    assert form.filters.date_to == dt.date(2024, 12, 31)
    assert form.filters.field_strength_t == 1.5
    assert form.filters.manufacturer == "Siemens"
    assert form.filters.views == frozenset({"sax", "4ch"})
    assert form.page == 3
    assert form.offset == 2 * PAGE_SIZE


def test_query_string_round_trips() -> None:
    original = "q=pericardial+effusion&sex=M&age_min=30&field_strength_t=3&view=2ch&view=sax&page=2"
    form = parse_search_form(QueryParams(original))

    again = parse_search_form(QueryParams(form.query_string(page=form.page)))

    assert again.query == form.query
    assert again.filters == form.filters
    assert again.page == 2


def test_query_string_orders_views_anatomically() -> None:
    form = parse_search_form(QueryParams("q=x&view=4ch&view=sax&view=2ch"))

    assert parse_qsl(form.query_string()) == [("q", "x"), ("view", "sax"), ("view", "2ch"), ("view", "4ch")]


def test_query_whitespace_collapsed() -> None:
    form = parse_search_form(QueryParams("q=++dilated+%0A+LV++"))

    assert form.query == "dilated LV"


def test_page_one_left_out_of_url() -> None:
    form = parse_search_form(QueryParams("q=normal+study&page=1"))

    assert form.query_string() == "q=normal+study"
    assert form.query_string(page=2) == "q=normal+study&page=2"


def test_query_replaced_keeps_filters() -> None:
    form = parse_search_form(QueryParams("q=old&sex=F&page=4"))

    assert parse_qsl(form.query_string(query="new")) == [("q", "new"), ("sex", "F")]
    assert form.query_string(filters=False) == "q=old"


@pytest.mark.parametrize(
    ("params", "expected_words"),
    [
        ("age_min=abc", ["Minimum age", "'abc'"]),
        ("age_min=nan", ["Minimum age", "finite"]),
        ("age_max=-5", ["Maximum age", "between 0 and 130 years", "-5"]),
        ("age_min=70&age_max=40", ["Minimum age (70)", "greater than maximum age (40)"]),
        ("date_from=2024-13-01", ["Study date from", "YYYY-MM-DD"]),
        ("date_from=2024-05-01&date_to=2024-01-01", ["(2024-05-01) is after study date to (2024-01-01)"]),
        ("sex=X", ["Sex must be one of F, M, O", "'X'"]),
        ("field_strength_t=0", ["Field strength", "above 0"]),
        ("view=apex", ["Unknown view apex"]),
        ("page=0", ["Page must be between 1 and"]),
        ("page=two", ["Page must be a whole number"]),
    ],
)
def test_invalid_value_sets_error(params: str, expected_words: list[str]) -> None:
    form = parse_search_form(QueryParams(params))

    assert form.error is not None
    for word in expected_words:
        assert word in form.error
    assert form.error.endswith(".")
    assert form.filters.is_empty()
    assert not form.is_blank()


def test_invalid_value_kept_for_display() -> None:
    form = parse_search_form(QueryParams("q=x&age_min=abc"))

    assert form.raw("age_min") == "abc"
    assert form.raw("age_max") == ""


def test_overlong_query_rejected() -> None:
    form = parse_search_form(QueryParams({"q": "a" * (MAX_QUERY_LENGTH + 1)}))

    assert form.error is not None
    assert str(MAX_QUERY_LENGTH) in form.error


def test_active_filters_remove_one_each() -> None:
    form = parse_search_form(QueryParams("q=lge&sex=F&view=sax&view=4ch"))

    active = form.active_filters()

    assert [item.label for item in active] == ["sex female", "has Short axis cine", "has 4-chamber cine"]
    removed_sex = parse_qsl(active[0].remove_query)
    assert removed_sex == [("q", "lge"), ("view", "sax"), ("view", "4ch")]
    removed_sax = parse_qsl(active[1].remove_query)
    assert removed_sax == [("q", "lge"), ("sex", "F"), ("view", "4ch")]


def test_active_filters_drop_page() -> None:
    # Removing a filter changes the result count, so the link starts at page 1.
    form = parse_search_form(QueryParams("q=lge&sex=F&page=5"))

    (only,) = form.active_filters()

    assert parse_qsl(only.remove_query) == [("q", "lge")]


def _link(number: int) -> PageLink:
    return PageLink(page_url=f"/?page={number}", fragment_url=f"/results?page={number}")


def test_pager_middle_page() -> None:
    pager = build_pager(page=2, page_size=10, total=35, link=_link, target="#results", focus_id="results-heading", label="Result pages")

    assert pager.page_count == 4
    assert pager.previous == _link(1)
    assert pager.next == _link(3)


def test_pager_edges() -> None:
    first = build_pager(page=1, page_size=10, total=20, link=_link, target="#results", focus_id="results-heading", label="Result pages")
    last = build_pager(page=2, page_size=10, total=20, link=_link, target="#results", focus_id="results-heading", label="Result pages")
    single = build_pager(page=1, page_size=10, total=10, link=_link, target="#results", focus_id="results-heading", label="Result pages")

    assert first.previous is None
    assert first.next == _link(2)
    assert last.previous == _link(1)
    assert last.next is None
    assert single.page_count == 1
    assert single.previous is None
    assert single.next is None


def test_pager_past_last_page_links_back() -> None:
    pager = build_pager(page=9, page_size=10, total=25, link=_link, target="#results", focus_id="results-heading", label="Result pages")

    assert pager.next is None
    assert pager.previous == _link(3)
