"""Finding labels of a phantom study and the thresholds that define them.

The thresholds are data so that docs/phantom.md, the report writer and any
evaluation read one definition. Each label is true when its rule holds for
the study's measured parameters (see :mod:`phantom.parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LABEL_NAMES: tuple[str, ...] = (
    "lv_systolic_dysfunction",
    "lv_dilation",
    "lv_hypertrophy",
    "rv_dilation",
    "rv_dysfunction",
    "regional_wma",
    "lge",
    "pericardial_effusion",
)


@dataclass(frozen=True)
class LabelRule:
    """One finding: a parameter compared with a threshold, optionally per sex."""

    label: str
    parameter: str
    comparison: str  # "<", ">", ">=" or "!=" (the last compares with a string)
    threshold_male: float | str
    threshold_female: float | str
    description: str

    def holds(self, parameters: Mapping[str, Any], sex: str) -> bool:
        """Return whether the rule holds; ``sex`` is the DICOM PatientSex, "M" or "F"."""
        value = parameters[self.parameter]
        threshold = self.threshold_female if sex == "F" else self.threshold_male
        if self.comparison == "<":
            return float(value) < float(threshold)
        if self.comparison == ">":
            return float(value) > float(threshold)
        if self.comparison == ">=":
            return float(value) >= float(threshold)
        if self.comparison == "!=":
            return str(value) != str(threshold)
        raise ValueError(f"label rule {self.label}: unknown comparison {self.comparison!r}")


# This project's thresholds, chosen near the adult limits of normal that CMR
# reports use for bSSFP cine, not copied from one published table. Indexed
# volumes are per m² of body surface area (Mosteller formula).
LABEL_RULES: tuple[LabelRule, ...] = (
    LabelRule("lv_systolic_dysfunction", "lv_ef_pct", "<", 50.0, 50.0, "LV ejection fraction below 50 %"),
    LabelRule("lv_dilation", "lv_edvi_ml_m2", ">", 105.0, 96.0, "LV end-diastolic volume index above 105 ml/m² (men) or 96 ml/m² (women)"),
    LabelRule("lv_hypertrophy", "max_wall_thickness_mm", ">=", 13.0, 13.0, "maximal end-diastolic LV wall thickness of 13 mm or more"),
    LabelRule("rv_dilation", "rv_edvi_ml_m2", ">", 120.0, 110.0, "RV end-diastolic volume index above 120 ml/m² (men) or 110 ml/m² (women)"),
    LabelRule("rv_dysfunction", "rv_ef_pct", "<", 45.0, 45.0, "RV ejection fraction below 45 %"),
    LabelRule("regional_wma", "wma_severity", "!=", "none", "none", "hypokinesis or akinesis in a coronary territory"),
    LabelRule("lge", "lge_observed_pattern", "!=", "none", "none", "late gadolinium enhancement (subendocardial, transmural or mid-wall) on the study's LGE series; false when the study has no LGE series"),
    LabelRule("pericardial_effusion", "effusion_mm", ">=", 5.0, 5.0, "pericardial fluid 5 mm or thicker at end-diastole"),
)


def derive_labels(parameters: Mapping[str, Any], sex: str) -> dict[str, bool]:
    """Evaluate every rule of :data:`LABEL_RULES` on one study's parameters."""
    return {rule.label: rule.holds(parameters, sex) for rule in LABEL_RULES}
