"""Nuisance variables of one study: scanner, header style, resolution, timing, noise.

These are drawn from their own random stream, never from the pathology,
so a model cannot read a finding off a header, the noise level or the
matrix size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from phantom.domains import Domain
from phantom.vendors import VENDOR_STYLES, VendorStyle

VIEWS: tuple[str, ...] = ("sax", "2ch", "3ch", "4ch")


@dataclass(frozen=True)
class Acquisition:
    """Scanner, protocol and reconstruction settings of one study."""

    domain: str
    vendor: str
    model_name: str
    software_version: str
    field_strength_t: float
    columns: int
    rows: int
    pixel_spacing_mm: float
    slice_thickness_mm: float
    slice_gap_mm: float
    phases: int
    heart_rate_bpm: float
    snr: float
    intensity_scale: float  # stored value of cine blood at unit coil sensitivity
    coil_gains: tuple[float, ...]
    enhanced: bool  # Enhanced MR Image Storage (multi-frame) instead of MR Image Storage
    per_slice_series: bool  # one SAX series per slice location instead of one per stack
    empty_descriptions: bool
    has_lge: bool
    compressed: bool  # JPEG 2000 lossless instead of Explicit VR Little Endian
    patient_position: str
    cine_template: str
    lge_template: str
    view_word_choice: int
    study_description: str
    study_datetime: dt.datetime
    repetition_time_ms: float
    echo_time_ms: float
    flip_angle_deg: float
    inversion_time_ms: float
    in_plane_rotation_deg: dict[str, float]

    @property
    def style(self) -> VendorStyle:
        """Header conventions of this study's vendor."""
        return VENDOR_STYLES[self.vendor]

    @property
    def rr_interval_ms(self) -> float:
        """Nominal R-R interval (NominalInterval) in ms."""
        return 60000.0 / self.heart_rate_bpm

    @property
    def slice_spacing_mm(self) -> float:
        """SpacingBetweenSlices: centre-to-centre distance of SAX slices."""
        return self.slice_thickness_mm + self.slice_gap_mm


def sample_acquisition(domain: Domain, rng: np.random.Generator) -> Acquisition:
    """Draw every nuisance variable of one study from ``domain``'s ranges."""
    vendor = str(rng.choice(domain.vendors))
    style = VENDOR_STYLES[vendor]
    field = float(rng.choice(domain.field_strengths))
    columns = int(rng.choice(domain.matrix_choices))
    rows = int(round(columns * rng.uniform(*domain.phase_fov_range) / 8.0) * 8)
    fov = float(rng.uniform(*domain.fov_range_mm))
    spacing = round(fov / columns, 4)
    snr = float(rng.uniform(*domain.snr_range))
    start = dt.datetime(2019, 1, 1, 7, 30) + dt.timedelta(days=int(rng.integers(0, 6 * 365)), minutes=int(rng.integers(0, 10 * 60)))
    return Acquisition(
        domain=domain.name,
        vendor=vendor,
        model_name=str(rng.choice(style.models[field])),
        software_version=str(rng.choice(style.software_versions)),
        field_strength_t=field,
        columns=columns,
        rows=rows,
        pixel_spacing_mm=spacing,
        slice_thickness_mm=float(rng.choice(domain.slice_thickness_mm)),
        slice_gap_mm=float(rng.choice(domain.slice_gap_mm)),
        phases=int(rng.integers(domain.phases_range[0], domain.phases_range[1] + 1)),
        heart_rate_bpm=float(round(rng.uniform(*domain.heart_rate_range))),
        snr=snr,
        intensity_scale=snr * float(rng.uniform(*domain.noise_step_range)),
        coil_gains=tuple(float(g) for g in rng.uniform(*domain.coil_gain_range, 4)),
        enhanced=bool(rng.random() < domain.enhanced_probability),
        per_slice_series=bool(rng.random() < domain.per_slice_series_probability),
        empty_descriptions=bool(rng.random() < domain.empty_description_probability),
        has_lge=bool(rng.random() < domain.lge_probability),
        compressed=bool(rng.random() < domain.compressed_probability),
        patient_position="HFS" if rng.random() < 0.85 else "FFS",
        cine_template=str(rng.choice(style.cine_descriptions)),
        lge_template=str(rng.choice(style.lge_descriptions)),
        view_word_choice=int(rng.integers(0, 3)),
        study_description=str(rng.choice(style.study_descriptions)),
        study_datetime=start,
        repetition_time_ms=float(round(rng.uniform(2.6, 3.6), 2)),
        echo_time_ms=float(round(rng.uniform(1.1, 1.6), 2)),
        flip_angle_deg=float(rng.uniform(40, 55) if field == 3.0 else rng.uniform(55, 75)),
        inversion_time_ms=float(round(rng.uniform(240, 360))),
        in_plane_rotation_deg={view: float(rng.normal(0.0, 6.0)) for view in (*VIEWS, "lge")},
    )


def view_word(acquisition: Acquisition, view: str) -> str:
    """Return the word this study's vendor uses for ``view`` in descriptions."""
    words = acquisition.style.view_words[view]
    return words[acquisition.view_word_choice % len(words)]


def series_description(acquisition: Acquisition, view: str, kind: str, stack_position: int | None = None) -> str:
    """Return the SeriesDescription of a cine or LGE series, or "" when this study leaves them empty.

    A one-slice SAX series of the "CINE_segmented" style gets the slice number
    as a suffix ("CINE_segmented_SAX_b3"), as UK Biobank's Siemens series do.
    """
    if acquisition.empty_descriptions:
        return ""
    template = acquisition.lge_template if kind == "lge" else acquisition.cine_template
    description = template.format(view=view_word(acquisition, view), phases=acquisition.phases)
    if stack_position is not None and template.startswith("CINE_segmented"):
        description += f"_b{stack_position}"
    return description
