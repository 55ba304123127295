"""The two acquisition domains: the standard training site and a shifted external site.

Every field is a range or a set of choices that the acquisition sampler
draws from independently of the pathology.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """Ranges of the nuisance variables of one simulated site."""

    name: str
    vendors: tuple[str, ...]  # keys of phantom.vendors.VENDOR_STYLES
    snr_range: tuple[float, float]  # blood signal / noise sigma at unit coil sensitivity
    matrix_choices: tuple[int, ...]  # Columns; Rows is this times the phase-FOV ratio
    phase_fov_range: tuple[float, float]
    fov_range_mm: tuple[float, float]
    slice_thickness_mm: tuple[float, ...]
    slice_gap_mm: tuple[float, ...]
    phases_range: tuple[int, int]
    heart_rate_range: tuple[float, float]
    coil_gain_range: tuple[float, float]
    enhanced_probability: float
    per_slice_series_probability: float
    empty_description_probability: float
    lge_probability: float
    compressed_probability: float  # share written as JPEG 2000 lossless instead of Explicit VR Little Endian
    field_strengths: tuple[float, ...]
    contrast: str  # key of phantom.tissues.CONTRASTS
    noise_step_range: tuple[float, float]  # noise sigma in stored units; blood is stored near snr * this


DOMAINS: dict[str, Domain] = {
    "standard": Domain(
        name="standard",
        vendors=("siemens", "ge", "philips"),
        snr_range=(18.0, 50.0),
        matrix_choices=(144, 160, 176, 192),
        phase_fov_range=(0.75, 0.9),
        fov_range_mm=(300.0, 380.0),
        slice_thickness_mm=(8.0,),
        slice_gap_mm=(0.0, 2.0),
        phases_range=(20, 30),
        heart_rate_range=(52.0, 98.0),
        coil_gain_range=(0.5, 1.1),
        enhanced_probability=0.25,
        per_slice_series_probability=0.3,
        empty_description_probability=0.15,
        lge_probability=0.8,
        compressed_probability=0.95,
        field_strengths=(1.5, 3.0),
        contrast="standard",
        noise_step_range=(2.0, 3.0),
    ),
    "shifted": Domain(
        name="shifted",
        vendors=("canon", "siemens_xa", "philips_enhanced"),
        snr_range=(9.0, 16.0),
        matrix_choices=(208, 224),
        phase_fov_range=(0.85, 1.0),
        fov_range_mm=(280.0, 320.0),
        slice_thickness_mm=(6.0,),
        slice_gap_mm=(2.0, 4.0),
        phases_range=(25, 30),
        heart_rate_range=(52.0, 98.0),
        coil_gain_range=(1.2, 2.0),
        enhanced_probability=0.6,
        per_slice_series_probability=0.1,
        empty_description_probability=0.3,
        lge_probability=0.8,
        compressed_probability=0.85,
        field_strengths=(1.5, 3.0),
        contrast="shifted",
        noise_step_range=(3.0, 5.0),
    ),
}
