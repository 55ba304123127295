"""How the pages write catalog values: views, segments, sexes, ages, units and titles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from search_app.pages import formatting


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("sax", "Short axis"),
        ("sax_basal", "Short axis basal"),
        ("SAX_APICAL", "Short axis apical"),
        ("4ch", "4-chamber"),
        ("lge_mid", "LGE mid"),
        ("t1_map", "T1 map"),
        ("", "unknown input"),
    ],
)
def test_segment_label(segment: str, expected: str) -> None:
    assert formatting.segment_label(segment) == expected


def test_view_list_in_anatomical_order() -> None:
    assert formatting.view_list(["4ch", "other", "sax", "2ch", "sax"]) == "Short axis, 2-chamber, 4-chamber, Other plane"
    assert formatting.view_list([]) == "none"
    assert formatting.view_list(None) == "none"


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        (formatting.sex_label, "F", "Female"),
        (formatting.sex_label, "m", "Male"),
        (formatting.sex_label, None, "not recorded"),
        (formatting.age, 54.9, "54 y"),
        (formatting.age, None, "not recorded"),
        (formatting.tesla, 1.5, "1.5 T"),
        (formatting.tesla, 3.0, "3 T"),
        (formatting.tesla, None, "not recorded"),
        (formatting.percent, 0.726, "73 %"),
        (formatting.percent, None, ""),
        (formatting.study_date, dt.date(2024, 2, 29), "2024-02-29"),
        (formatting.study_date, None, "date not recorded"),
        (formatting.kind_label, "lge", "LGE"),
        (formatting.view_label, "lvot", "LVOT"),
        (formatting.view_label, "oblique", "OBLIQUE"),
    ],
)
def test_value_formats(function: object, value: object, expected: str) -> None:
    assert function(value) == expected  # type: ignore[operator]


@pytest.mark.parametrize(("value", "expected"), [(0.5, True), (-1, True), (float("nan"), False), (float("inf"), False), (None, False)])
def test_is_finite_number(value: object, expected: bool) -> None:
    assert formatting.is_finite_number(value) is expected


@dataclass
class _Study:
    study_pk: int
    study_date: dt.date | None
    manufacturer: str | None = None
    model_name: str | None = None
    field_strength_t: float | None = None


def test_study_title_uses_catalog_id() -> None:
    assert formatting.study_title(_Study(42, dt.date(2023, 5, 1))) == "Study 42 · 2023-05-01"
    assert formatting.study_title(_Study(7, None)) == "Study 7 · date not recorded"


def test_scanner_description() -> None:
    assert formatting.scanner_description(_Study(1, None, "SIEMENS", "Avanto", 1.5)) == "SIEMENS Avanto 1.5 T"
    assert formatting.scanner_description(_Study(1, None)) == "not recorded"
