"""The shifted domain differs from the standard one in exactly the documented ways."""

from __future__ import annotations

import numpy as np

from phantom.acquisition import Acquisition, sample_acquisition
from phantom.domains import DOMAINS
from phantom.series import render_series, sax_stack_layout
from phantom.study import plan_study
from phantom.tissues import CONTRASTS, Tissue


def draws(domain: str, count: int = 300) -> list[Acquisition]:
    rng = np.random.default_rng(42)
    return [sample_acquisition(DOMAINS[domain], rng) for _ in range(count)]


def test_shifted_vendors_disjoint() -> None:
    standard = {a.vendor for a in draws("standard")}
    shifted = {a.vendor for a in draws("shifted")}
    assert standard == {"siemens", "ge", "philips"}
    assert shifted == {"canon", "siemens_xa", "philips_enhanced"}


def test_shifted_noise_and_resolution() -> None:
    standard, shifted = draws("standard"), draws("shifted")
    assert max(a.snr for a in shifted) < min(a.snr for a in standard)
    assert min(a.columns for a in shifted) > max(a.columns for a in standard)
    assert max(a.pixel_spacing_mm for a in shifted) < np.median([a.pixel_spacing_mm for a in standard])
    assert {a.slice_thickness_mm for a in shifted} == {6.0}
    assert {a.slice_thickness_mm for a in standard} == {8.0}
    assert np.mean([a.enhanced for a in shifted]) > np.mean([a.enhanced for a in standard]) + 0.2


def test_shifted_contrast_flatter() -> None:
    standard, shifted = CONTRASTS["standard"]["cine"], CONTRASTS["shifted"]["cine"]
    standard_ratio = standard[Tissue.LV_BLOOD] / standard[Tissue.LV_MYOCARDIUM]
    shifted_ratio = shifted[Tissue.LV_BLOOD] / shifted[Tissue.LV_MYOCARDIUM]
    assert shifted_ratio < 0.75 * standard_ratio
    assert shifted[Tissue.LUNG] > standard[Tissue.LUNG]


def test_ranges_respected() -> None:
    for domain in DOMAINS.values():
        for acquisition in draws(domain.name, 100):
            assert domain.snr_range[0] <= acquisition.snr <= domain.snr_range[1]
            assert domain.phases_range[0] <= acquisition.phases <= domain.phases_range[1]
            assert acquisition.columns in domain.matrix_choices
            assert acquisition.rows % 8 == 0


def test_pathology_same_in_both_domains() -> None:
    for index in range(4):
        standard = plan_study(9, index, "ischemic", "standard")
        shifted = plan_study(9, index, "ischemic", "shifted")
        assert standard.pathology == shifted.pathology


def test_shifted_images_noisier() -> None:
    def background_noise(domain: str) -> float:
        plan = plan_study(3, 0, "normal", domain)
        pixels = render_series(plan, sax_stack_layout(plan)).pixels[0, 0].astype(np.float64)
        blood_level = np.percentile(pixels, 99.5)
        return float(np.std(pixels[:8, :8]) / blood_level)

    assert background_noise("shifted") > background_noise("standard")
