"""Formatting of catalog values for people: views, sexes, ages, dates and units.

Each function accepts ``None`` for a value the archive did not record and
returns a readable placeholder, because DICOM leaves many of these attributes
optional.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Protocol

from search_app.filters import CINE_VIEWS

NOT_RECORDED = "not recorded"

VIEW_LABELS: dict[str, str] = {
    "sax": "Short axis",
    "2ch": "2-chamber",
    "3ch": "3-chamber",
    "4ch": "4-chamber",
    "lvot": "LVOT",
    "other": "Other plane",
}

KIND_LABELS: dict[str, str] = {
    "cine": "cine",
    "lge": "LGE",
    "scout": "scout",
    "mapping": "mapping",
    "perfusion": "perfusion",
    "flow": "flow",
    "other": "other sequence",
}

# PatientSex (0010,0040) codes.
SEX_LABELS: dict[str, str] = {"F": "Female", "M": "Male", "O": "Other"}


def view_label(view: str | None) -> str:
    """Name a catalog view code ("sax", "4ch" …) as a radiologist writes it."""
    if not view:
        return "Unknown plane"
    return VIEW_LABELS.get(view.lower(), view.upper())


def kind_label(kind: str | None) -> str:
    """Name a catalog sequence kind ("cine", "lge" …)."""
    if not kind:
        return "unknown sequence"
    return KIND_LABELS.get(kind.lower(), kind)


def segment_label(segment: str | None) -> str:
    """Name a model input segment such as "sax_basal" or "lge_mid" ("Short axis basal", "LGE mid")."""
    if not segment:
        return "unknown input"
    head, _, rest = segment.lower().partition("_")
    if head in VIEW_LABELS:
        name = VIEW_LABELS[head]
    elif head in KIND_LABELS:
        name = KIND_LABELS[head]
    else:
        name = head.upper()
    return f"{name} {rest.replace('_', ' ')}".strip()


def view_list(views: Iterable[str] | None) -> str:
    """Join view labels in anatomical order (SAX, then 2CH, 3CH, 4CH, LVOT)."""
    present = list(dict.fromkeys(views or ()))
    order = {view: position for position, view in enumerate(CINE_VIEWS)}
    present.sort(key=lambda view: order.get(view, len(order)))
    return ", ".join(view_label(view) for view in present) or "none"


def sex_label(sex: str | None) -> str:
    """Name a PatientSex code (F, M, O)."""
    if not sex:
        return NOT_RECORDED
    return SEX_LABELS.get(sex.upper(), sex)


def age(age_years: float | None) -> str:
    """Write an age in whole years, for example "54 y"."""
    if age_years is None:
        return NOT_RECORDED
    return f"{int(age_years)} y"


def study_date(value: dt.date | None) -> str:
    """Write a StudyDate as ISO 8601 (YYYY-MM-DD), which no locale misreads."""
    if value is None:
        return "date not recorded"
    return value.isoformat()


def tesla(value: float | None) -> str:
    """Write a MagneticFieldStrength in tesla, for example "1.5 T"."""
    if value is None:
        return NOT_RECORDED
    return f"{tesla_value(value)} T"


def tesla_value(value: float) -> str:
    """Write a field strength as the ``field_strength_t`` URL parameter expects it."""
    return f"{value:g}"


def is_finite_number(value: object) -> bool:
    """Return whether ``value`` is a finite number; a browse page's hits have NaN scores."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def percent(probability: float | None) -> str:
    """Write a probability in [0, 1] as a whole percentage."""
    if probability is None:
        return ""
    return f"{probability * 100:.0f} %"


class StudyFacts(Protocol):
    """The attributes of a search hit or a study detail that a title uses."""

    study_pk: int
    study_date: dt.date | None


def study_title(study: StudyFacts) -> str:
    """Title a study by its catalog id and StudyDate, never by patient identifiers."""
    return f"Study {study.study_pk} · {study_date(study.study_date)}"


class ScannerFacts(Protocol):
    """The scanner attributes of a study detail."""

    manufacturer: str | None
    model_name: str | None
    field_strength_t: float | None


def scanner_description(study: ScannerFacts) -> str:
    """Describe the scanner: Manufacturer, ManufacturerModelName and field strength."""
    parts = [part for part in (study.manufacturer, study.model_name) if part]
    if study.field_strength_t is not None:
        parts.append(tesla(study.field_strength_t))
    return " ".join(parts) or NOT_RECORDED
