"""The parameters of a planned study as the ground truth states them.

Volumes are measured from the built heart, not copied from the targets:
LV volumes are the model's exact analytic cavity volumes at the end-diastolic
and end-systolic phases; RV volumes are summed over a 2 mm voxel grid with partial-volume weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phantom.heart import ANGLES_RAD, voxel_volume_ml
from phantom.labels import derive_labels
from phantom.study import StudyPlan

RV_MEASURE_VOXEL_MM = 2.0


def rv_volume_ml(plan: StudyPlan, phase_fraction: float, voxel_mm: float = RV_MEASURE_VOXEL_MM) -> float:
    """RV cavity volume in ml at ``phase_fraction``, from a voxel grid (see :func:`voxel_volume_ml`)."""
    heart = plan.heart
    grid = heart.voxel_grid(voxel_mm)
    return voxel_volume_ml(heart.rv_cavity(grid, heart.state(phase_fraction)), voxel_mm)


def study_parameters(plan: StudyPlan) -> dict[str, Any]:
    """Collect every parameter of the study, measured on the model where it allows (see module doc)."""
    heart, spec, acquisition = plan.heart, plan.pathology, plan.acquisition
    es_fraction = plan.es_phase / acquisition.phases
    lv_edv = heart.lv_volume_ml(heart.state(0.0))
    lv_esv = heart.lv_volume_ml(heart.state(es_fraction))
    rv_edv = rv_volume_ml(plan, 0.0)
    rv_esv = rv_volume_ml(plan, es_fraction)
    bsa = spec.bsa_m2
    septal = float(np.mean(heart.wall_ed[np.abs(ANGLES_RAD) < np.radians(25)]))
    lateral = float(np.mean(heart.wall_ed[np.abs(ANGLES_RAD) > np.radians(155)]))
    observed_lge = spec.lge_pattern if acquisition.has_lge else "none"

    return {
        "scenario": plan.scenario,
        "sex": spec.sex,
        "age_years": spec.age_years,
        "height_m": round(spec.height_m, 3),
        "weight_kg": round(spec.weight_kg, 1),
        "bsa_m2": round(bsa, 3),
        "lv_edv_ml": round(lv_edv, 1),
        "lv_edvi_ml_m2": round(lv_edv / bsa, 1),
        "lv_esv_ml": round(lv_esv, 1),
        "lv_esvi_ml_m2": round(lv_esv / bsa, 1),
        "lv_ef_pct": round(100.0 * (lv_edv - lv_esv) / lv_edv, 1),
        "lv_sphericity": round(spec.sphericity, 3),
        "max_wall_thickness_mm": round(float(np.max(heart.wall_ed)), 1),
        "septal_thickness_mm": round(septal, 1),
        "lateral_thickness_mm": round(lateral, 1),
        "hypertrophy_pattern": spec.hypertrophy_pattern,
        "rv_edv_ml": round(rv_edv, 1),
        "rv_edvi_ml_m2": round(rv_edv / bsa, 1),
        "rv_esv_ml": round(rv_esv, 1),
        "rv_ef_pct": round(100.0 * (rv_edv - rv_esv) / rv_edv, 1),
        "wma_territory": spec.wma_territory,
        "wma_severity": spec.wma_severity,
        "lge_pattern": spec.lge_pattern,
        "lge_territory": spec.lge_territory,
        "lge_transmurality": round(spec.lge_transmurality, 2),
        "lge_observed_pattern": observed_lge,
        "effusion_mm": round(spec.effusion_mm, 1),
        "heart_rate_bpm": acquisition.heart_rate_bpm,
        "rr_interval_ms": round(acquisition.rr_interval_ms, 1),
        "phases": acquisition.phases,
        "es_phase_index": plan.es_phase,
        "snr": round(acquisition.snr, 1),
        "vendor_style": acquisition.vendor,
        "manufacturer": acquisition.style.manufacturer,
        "model_name": acquisition.model_name,
        "field_strength_t": acquisition.field_strength_t,
        "enhanced_multiframe": acquisition.enhanced,
        "per_slice_series": acquisition.per_slice_series,
        "empty_series_descriptions": acquisition.empty_descriptions,
        "has_lge_series": acquisition.has_lge,
        "transfer_syntax": "JPEG2000Lossless" if acquisition.compressed else "ExplicitVRLittleEndian",
        "rows": acquisition.rows,
        "columns": acquisition.columns,
        "pixel_spacing_mm": acquisition.pixel_spacing_mm,
        "slice_thickness_mm": acquisition.slice_thickness_mm,
        "sax_slice_spacing_mm": plan.sax.spacing_mm,
        "sax_slices": len(plan.sax.planes),
        "inversion_time_ms": acquisition.inversion_time_ms if acquisition.has_lge else None,
        "patient_position": acquisition.patient_position,
    }


def study_labels(parameters: dict[str, Any]) -> dict[str, bool]:
    """Finding labels of a study from its measured parameters."""
    return derive_labels(parameters, parameters["sex"])
