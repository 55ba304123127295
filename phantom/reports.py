"""Radiology reports written from a study's parameters.

Phrasing, order, headings and abbreviations are drawn at random per report
(from a stream of its own), so no fixed template ties words to findings.
Every positive label is stated in the findings and the impression with the
number a radiologist would give. Negatives are stated as negations ("no
LGE", "no pericardial effusion"), and normal studies are called normal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from phantom.labels import LABEL_RULES

FINDINGS_HEADINGS = ("FINDINGS:", "Findings:", "Findings", "REPORT:", "Results:")
IMPRESSION_HEADINGS = ("IMPRESSION:", "Impression:", "Impression", "CONCLUSION:", "Conclusion:", "Summary:", "SUMMARY:")
TITLES = ("CARDIAC MRI", "CMR", "MRI HEART", "Cardiac magnetic resonance", "")

TERRITORY_WALLS = {
    "LAD": ("anterior wall and anteroseptum", "anterior and anteroseptal segments", "anteroseptal and apical segments"),
    "RCA": ("inferior wall and inferoseptum", "inferior and inferoseptal segments", "basal to mid inferior wall"),
    "LCx": ("inferolateral and anterolateral walls", "lateral wall", "basal to mid inferolateral segments"),
}


class _Writer:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.abbreviate = bool(rng.random() < 0.7)

    def pick(self, *options: str) -> str:
        return str(options[int(self.rng.integers(len(options)))])

    def term(self, short: str, long: str) -> str:
        return short if self.abbreviate or self.rng.random() < 0.3 else long


def _threshold(label: str, sex: str) -> float:
    rule = next(rule for rule in LABEL_RULES if rule.label == label)
    return float(rule.threshold_female if sex == "F" else rule.threshold_male)


# Severity grades are this project's wording choices: EF bands 50/41/30 %,
# and dilation "mildly" within one step (ml/m²) above the label threshold,
# "moderately" within two, "severely" beyond.
def _grade_ef(ef: float) -> str:
    if ef < 30:
        return "severely reduced"
    if ef < 41:
        return "moderately reduced"
    if ef < 50:
        return "mildly reduced"
    return "hyperdynamic" if ef > 72 else "normal"


def _grade_excess(value: float, limit: float, step: float) -> str:
    if value <= limit:
        return "normal"
    if value <= limit + step:
        return "mildly"
    return "moderately" if value <= limit + 2 * step else "severely"


def _lv_sentences(w: _Writer, p: dict[str, Any], labels: dict[str, bool]) -> list[str]:
    lv = w.term("LV", "left ventricle")
    ef = round(p["lv_ef_pct"])
    edvi = round(p["lv_edvi_ml_m2"])
    size = _grade_excess(p["lv_edvi_ml_m2"], _threshold("lv_dilation", p["sex"]), 20.0)
    sentences = []
    if labels["lv_dilation"]:
        sentences.append(w.pick(f"The {lv} is {size} dilated (EDVi {edvi} ml/m²).", f"{size.capitalize()} dilated {lv}, LVEDVi {edvi} ml/m².", f"{lv} dilated, indexed EDV {edvi} ml/m² ({size})."))
    else:
        sentences.append(w.pick(f"Normal {lv} size (EDVi {edvi} ml/m²).", f"The {lv} is not dilated, LVEDVi {edvi} ml/m².", f"{lv} cavity size normal."))
    grade = _grade_ef(p["lv_ef_pct"])
    ef_word = w.term("EF", "ejection fraction")
    if labels["lv_systolic_dysfunction"]:
        sentences.append(w.pick(f"{grade.capitalize()} {lv} systolic function, {ef_word} {ef}%.", f"{lv} {ef_word} is {grade} at {ef}%.", f"Global {lv} systolic function is {grade} (LVEF {ef}%)."))
    else:
        sentences.append(w.pick(f"{grade.capitalize()} {lv} systolic function (LVEF {ef}%).", f"{lv} {ef_word} {ef}%, {grade}.", f"Preserved {lv} systolic function, {ef_word} {ef}%."))
    wall = round(p["max_wall_thickness_mm"])
    if labels["lv_hypertrophy"] and p["hypertrophy_pattern"] == "asymmetric_septal":
        sentences.append(w.pick(f"Asymmetric septal hypertrophy with maximal wall thickness {wall} mm in the anteroseptum.", f"Asymmetric hypertrophy of the septum, up to {wall} mm.", f"Maximal septal wall thickness {wall} mm (asymmetric septal hypertrophy)."))
    elif labels["lv_hypertrophy"]:
        sentences.append(w.pick(f"Concentric {lv} hypertrophy, maximal wall thickness {wall} mm.", f"Concentric LVH with walls up to {wall} mm.", f"Increased wall thickness, maximal {wall} mm, concentric."))
    else:
        sentences.append(w.pick(f"Normal wall thickness (maximum {wall} mm).", f"No LVH; maximal wall thickness {wall} mm.", "Normal myocardial thickness."))
    return sentences


def _wma_sentence(w: _Writer, p: dict[str, Any], labels: dict[str, bool]) -> str:
    if not labels["regional_wma"]:
        return w.pick("No regional wall motion abnormality.", "No RWMA.", "No regional WMA.", "Regional wall motion is normal.")
    walls = w.pick(*TERRITORY_WALLS[p["wma_territory"]])
    severity = p["wma_severity"]
    return w.pick(
        f"{severity.capitalize()} of the {walls} ({p['wma_territory']} territory).",
        f"Regional WMA: {severity} of the {walls}, {p['wma_territory']} territory.",
        f"There is {severity} of the {walls} in keeping with {p['wma_territory']} territory wall motion abnormality.",
    )


def _rv_sentences(w: _Writer, p: dict[str, Any], labels: dict[str, bool]) -> list[str]:
    rv = w.term("RV", "right ventricle")
    edvi = round(p["rv_edvi_ml_m2"])
    ef = round(p["rv_ef_pct"])
    if labels["rv_dilation"]:
        size = _grade_excess(p["rv_edvi_ml_m2"], _threshold("rv_dilation", p["sex"]), 25.0)
        first = w.pick(f"The {rv} is {size} dilated (RVEDVi {edvi} ml/m²).", f"{rv} dilatation, RVEDVi {edvi} ml/m².")
    else:
        first = w.pick(f"Normal {rv} size (RVEDVi {edvi} ml/m²).", f"{rv} size normal.", f"The {rv} is not dilated.")
    if labels["rv_dysfunction"]:
        second = w.pick(f"Impaired {rv} systolic function, RVEF {ef}%.", f"{rv} systolic dysfunction with RVEF {ef}%.", f"Reduced {rv} function (EF {ef}%).")
    else:
        second = w.pick(f"Normal {rv} systolic function (RVEF {ef}%).", f"{rv} function preserved, RVEF {ef}%.", f"Good {rv} function.")
    return [first, second]


def _lge_sentence(w: _Writer, p: dict[str, Any], labels: dict[str, bool]) -> str:
    if not p["has_lge_series"]:
        return w.pick("No gadolinium was given; LGE not assessed.", "Non-contrast study, no LGE imaging.", "LGE imaging was not performed.")
    if not labels["lge"]:
        return w.pick("No LGE.", "No myocardial late gadolinium enhancement.", "No late enhancement to suggest scar or fibrosis.", "LGE: none.")
    pattern, territory = p["lge_pattern"], p["lge_territory"]
    if pattern == "midwall":
        where = "basal to mid septum" if territory == "septal" else "basal to mid inferolateral wall"
        return w.pick(f"Mid-wall LGE in the {where}, a non-ischaemic pattern.", f"Non-ischemic mid-myocardial late gadolinium enhancement of the {where}.", f"Midwall LGE ({where}).")
    walls = w.pick(*TERRITORY_WALLS[territory])
    if pattern == "transmural":
        return w.pick(f"Transmural LGE of the {walls} ({territory} territory), non-viable.", f"Full-thickness (>75%) late gadolinium enhancement in the {territory} territory ({walls}).")
    percent = int(round(p["lge_transmurality"] * 100 / 25.0) * 25)
    return w.pick(f"Subendocardial LGE of the {walls}, <50% transmural ({territory} territory), viable.", f"Subendocardial late gadolinium enhancement in the {territory} territory, about {percent}% wall thickness.", f"Ischaemic-pattern subendocardial LGE ({territory}, {walls}).")


def _pericardium_sentence(w: _Writer, p: dict[str, Any], labels: dict[str, bool]) -> str:
    if not labels["pericardial_effusion"]:
        return w.pick("No pericardial effusion.", "Pericardium normal, no effusion.", "No pericardial effusion or thickening.")
    mm = round(p["effusion_mm"])
    if mm < 10:
        size = "small"
    elif mm <= 20:
        size = "moderate"
    else:
        size = "large"
    return w.pick(f"{size.capitalize()} pericardial effusion ({mm} mm).", f"Circumferential pericardial effusion measuring up to {mm} mm ({size}).", f"There is a {size} pericardial effusion, {mm} mm.")


def _impression(w: _Writer, p: dict[str, Any], labels: dict[str, bool]) -> list[str]:
    lines = []
    ef = round(p["lv_ef_pct"])
    if labels["lv_dilation"] and labels["lv_systolic_dysfunction"]:
        lines.append(w.pick(f"Dilated LV with {_grade_ef(p['lv_ef_pct'])} systolic function (LVEF {ef}%).", f"Dilated, impaired left ventricle, EF {ef}%."))
    elif labels["lv_systolic_dysfunction"]:
        lines.append(w.pick(f"{_grade_ef(p['lv_ef_pct']).capitalize()} LV systolic function, LVEF {ef}%.", f"LV systolic dysfunction (EF {ef}%)."))
    elif labels["lv_dilation"]:
        lines.append(w.pick(f"Mildly dilated LV with preserved EF ({ef}%).", f"LV dilatation (EDVi {round(p['lv_edvi_ml_m2'])} ml/m²) with normal systolic function."))
    if labels["lv_hypertrophy"]:
        wall = round(p["max_wall_thickness_mm"])
        if p["hypertrophy_pattern"] == "asymmetric_septal":
            lines.append(w.pick(f"Asymmetric septal hypertrophy ({wall} mm), consistent with hypertrophic cardiomyopathy.", f"HCM phenotype, maximal wall thickness {wall} mm."))
        else:
            lines.append(w.pick(f"Concentric LV hypertrophy ({wall} mm).", f"Concentric LVH, maximal wall {wall} mm."))
    if labels["regional_wma"]:
        lines.append(w.pick(f"Regional wall motion abnormality ({p['wma_severity']}) in the {p['wma_territory']} territory.", f"{p['wma_territory']} territory WMA ({p['wma_severity']})."))
    if labels["lge"]:
        if p["lge_pattern"] == "midwall":
            lines.append(w.pick("Non-ischaemic mid-wall LGE.", "Mid-wall fibrosis (non-ischemic LGE pattern)."))
        else:
            lines.append(w.pick(f"{p['lge_pattern'].capitalize()} infarct in the {p['lge_territory']} territory (LGE).", f"Ischaemic LGE, {p['lge_pattern']}, {p['lge_territory']} territory."))
    if labels["rv_dilation"] or labels["rv_dysfunction"]:
        parts = [word for word, on in (("dilated", labels["rv_dilation"]), ("impaired", labels["rv_dysfunction"])) if on]
        lines.append(w.pick(f"{' and '.join(parts).capitalize()} RV (RVEDVi {round(p['rv_edvi_ml_m2'])} ml/m², RVEF {round(p['rv_ef_pct'])}%).", f"RV {' and '.join(parts)}, RVEF {round(p['rv_ef_pct'])}%."))
    if labels["pericardial_effusion"]:
        lines.append(w.pick(f"Pericardial effusion ({round(p['effusion_mm'])} mm).", f"Pericardial effusion, {round(p['effusion_mm'])} mm."))
    if not lines:
        lines.append(w.pick("Normal cardiac MRI.", "Normal study.", "Normal biventricular size and function. No LGE.", "No abnormality detected; normal CMR."))
    elif not labels["lge"] and p["has_lge_series"] and w.rng.random() < 0.5:
        lines.append(w.pick("No LGE.", "No myocardial scar."))
    return lines


def write_report(parameters: dict[str, Any], labels: dict[str, bool], rng: np.random.Generator) -> str:
    """Return the report text: optional title and technique, FINDINGS, IMPRESSION."""
    w = _Writer(rng)
    findings = _lv_sentences(w, parameters, labels) + [_wma_sentence(w, parameters, labels)]
    findings += _rv_sentences(w, parameters, labels)
    findings += [_lge_sentence(w, parameters, labels), _pericardium_sentence(w, parameters, labels)]
    if rng.random() < 0.5:
        findings.append(w.pick("Atria and valves unremarkable.", "Normal atrial size.", "No significant valvular abnormality on cine."))
    if rng.random() < 0.4:
        findings[2:] = list(rng.permutation(findings[2:]))
    impression = _impression(w, parameters, labels)
    lines = []
    title = w.pick(*TITLES)
    if title:
        lines += [title, ""]
    if rng.random() < 0.5:
        contrast = " and LGE after gadolinium" if parameters["has_lge_series"] else ", no contrast"
        lines += [f"Technique: bSSFP cine in SAX, 2CH, 3CH and 4CH{contrast}.", ""]
    lines.append(w.pick(*FINDINGS_HEADINGS))
    bulleted = rng.random() < 0.4
    lines += [f"- {s}" for s in findings] if bulleted else [" ".join(findings)]
    lines += ["", w.pick(*IMPRESSION_HEADINGS)]
    numbered = len(impression) > 1 and rng.random() < 0.6
    lines += [f"{i}. {s}" for i, s in enumerate(impression, 1)] if numbered else [" ".join(impression)]
    return "\n".join(lines)
