"""Patient and pathology parameters: demographics, target volumes, walls, scars.

A study is drawn from one *scenario* (a clinical picture such as an old
infarct or hypertrophic cardiomyopathy) and may get an extra finding on top,
so every label occurs alone and in combination. Everything here is drawn from
the pathology random stream only, apart from the acquisition (see
:mod:`phantom.acquisition`), so headers and noise carry no information about
the findings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

TERRITORIES: tuple[str, ...] = ("LAD", "RCA", "LCx")

# Share of each scenario in the default mix; about a quarter normals.
DEFAULT_MIX: dict[str, float] = {
    "normal": 0.25,
    "ischemic": 0.17,
    "dilated": 0.11,
    "hypertrophic": 0.08,
    "hypertensive": 0.06,
    "rv_overload": 0.08,
    "effusion": 0.07,
    "nondilated_dysfunction": 0.06,
    "myocarditis": 0.06,
    "athlete": 0.06,
}

# Probability that a non-normal study also gets one of these on top.
EXTRA_EFFUSION_PROBABILITY = 0.12
EXTRA_RV_DYSFUNCTION_PROBABILITY = 0.08


@dataclass(frozen=True)
class PathologySpec:
    """Target anatomy and findings of one study, before the heart is built.

    Volumes are in ml, indexed volumes in ml/m², lengths in mm. The built
    heart reports the volumes it actually has (see :class:`phantom.heart.HeartModel`).
    """

    scenario: str
    sex: str  # DICOM PatientSex, "M" or "F"
    age_years: int
    height_m: float
    weight_kg: float
    lv_edvi_ml_m2: float
    lv_ef_pct: float
    septal_thickness_mm: float
    lateral_thickness_mm: float
    hypertrophy_pattern: str  # "none", "concentric" or "asymmetric_septal"
    rv_edvi_ml_m2: float
    rv_ef_pct: float
    wma_territory: str  # "none" or one of TERRITORIES
    wma_severity: str  # "none", "hypokinesis" or "akinesis"
    lge_pattern: str  # "none", "subendocardial", "transmural" or "midwall"
    lge_territory: str  # "none", one of TERRITORIES, "septal" or "lateral"
    lge_transmurality: float  # fraction of the wall, endocardium outward
    effusion_mm: float
    sphericity: float  # LV long semi-axis / short semi-axis at end-diastole

    @property
    def bsa_m2(self) -> float:
        """Body surface area by the Mosteller formula."""
        return math.sqrt(self.height_m * 100.0 * self.weight_kg / 3600.0)


def _normal(rng: np.random.Generator) -> PathologySpec:
    sex = "M" if rng.random() < 0.5 else "F"
    male = sex == "M"
    height = rng.normal(1.77 if male else 1.64, 0.07)
    bmi = float(np.clip(rng.normal(26.0, 3.5), 18.5, 38.0))
    lateral = rng.uniform(6.5, 9.5) if male else rng.uniform(6.0, 9.0)
    return PathologySpec(
        scenario="normal",
        sex=sex,
        age_years=int(rng.integers(18, 86)),
        height_m=float(np.clip(height, 1.45, 2.02)),
        weight_kg=float(bmi * height**2),
        lv_edvi_ml_m2=float(rng.uniform(66, 98) if male else rng.uniform(60, 90)),
        lv_ef_pct=float(rng.uniform(56, 72)),
        septal_thickness_mm=float(lateral + rng.uniform(0.0, 1.5)),
        lateral_thickness_mm=float(lateral),
        hypertrophy_pattern="none",
        rv_edvi_ml_m2=float(rng.uniform(65, 108) if male else rng.uniform(58, 98)),
        rv_ef_pct=float(rng.uniform(50, 66)),
        wma_territory="none",
        wma_severity="none",
        lge_pattern="none",
        lge_territory="none",
        lge_transmurality=0.0,
        effusion_mm=float(rng.uniform(0.0, 2.0)),
        sphericity=float(rng.uniform(1.9, 2.4)),
    )


def _ischemic(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    territory = str(rng.choice(TERRITORIES))
    severity = "akinesis" if rng.random() < 0.5 else "hypokinesis"
    if rng.random() < 0.8:
        pattern = "transmural" if severity == "akinesis" and rng.random() < 0.6 else "subendocardial"
    else:
        pattern = "none"
    dilated = rng.random() < 0.4
    ef = rng.uniform(22, 44) if severity == "akinesis" else rng.uniform(30, 56)
    return replace(
        base,
        scenario="ischemic",
        wma_territory=territory,
        wma_severity=severity,
        lge_pattern=pattern,
        lge_territory=territory if pattern != "none" else "none",
        lge_transmurality=1.0 if pattern == "transmural" else (float(rng.uniform(0.25, 0.5)) if pattern != "none" else 0.0),
        lv_ef_pct=float(ef),
        lv_edvi_ml_m2=float(rng.uniform(110, 160) if dilated else base.lv_edvi_ml_m2),
        rv_ef_pct=float(rng.uniform(30, 43)) if territory == "RCA" and rng.random() < 0.3 else base.rv_ef_pct,
        sphericity=float(base.sphericity - (0.3 if dilated else 0.0)),
    )


def _dilated(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    midwall = rng.random() < 0.3
    rv_dysfunction = rng.random() < 0.4
    return replace(
        base,
        scenario="dilated",
        lv_edvi_ml_m2=float(rng.uniform(110, 185)),
        lv_ef_pct=float(rng.uniform(15, 44)),
        lateral_thickness_mm=float(rng.uniform(5.5, 8.0)),
        septal_thickness_mm=float(rng.uniform(5.5, 8.5)),
        lge_pattern="midwall" if midwall else "none",
        lge_territory="septal" if midwall else "none",
        lge_transmurality=0.0,
        rv_ef_pct=float(rng.uniform(25, 43)) if rv_dysfunction else base.rv_ef_pct,
        rv_edvi_ml_m2=float(rng.uniform(125, 170)) if rv_dysfunction and rng.random() < 0.5 else base.rv_edvi_ml_m2,
        sphericity=float(rng.uniform(1.5, 1.85)),
    )


def _hypertrophic(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    midwall = rng.random() < 0.5
    return replace(
        base,
        scenario="hypertrophic",
        hypertrophy_pattern="asymmetric_septal",
        septal_thickness_mm=float(rng.uniform(15, 27)),
        lateral_thickness_mm=float(rng.uniform(8, 11.5)),
        lv_edvi_ml_m2=float(rng.uniform(52, 80)),
        lv_ef_pct=float(rng.uniform(62, 76)),
        lge_pattern="midwall" if midwall else "none",
        lge_territory="septal" if midwall else "none",
    )


def _hypertensive(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    lateral = float(rng.uniform(13, 17))
    return replace(
        base,
        scenario="hypertensive",
        hypertrophy_pattern="concentric",
        lateral_thickness_mm=lateral,
        septal_thickness_mm=float(lateral + rng.uniform(0.0, 2.0)),
        lv_edvi_ml_m2=float(rng.uniform(55, 90)),
        lv_ef_pct=float(rng.uniform(55, 72)),
    )


def _rv_overload(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    dilated = rng.random() < 0.8
    dysfunction = rng.random() < 0.8 or not dilated
    return replace(
        base,
        scenario="rv_overload",
        rv_edvi_ml_m2=float(rng.uniform(130, 200)) if dilated else base.rv_edvi_ml_m2,
        rv_ef_pct=float(rng.uniform(18, 42)) if dysfunction else float(rng.uniform(47, 56)),
        lv_edvi_ml_m2=float(min(base.lv_edvi_ml_m2, rng.uniform(55, 80))),
    )


def _effusion(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    return replace(base, scenario="effusion", effusion_mm=float(rng.uniform(6, 24)))


def _nondilated_dysfunction(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    return replace(base, scenario="nondilated_dysfunction", lv_ef_pct=float(rng.uniform(28, 47)))


def _myocarditis(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    territory = "lateral" if rng.random() < 0.6 else "septal"
    return replace(
        base,
        scenario="myocarditis",
        lge_pattern="midwall",
        lge_territory=territory,
        effusion_mm=float(rng.uniform(5.5, 10)) if rng.random() < 0.25 else base.effusion_mm,
        lv_ef_pct=float(rng.uniform(42, 49)) if rng.random() < 0.3 else base.lv_ef_pct,
    )


def _athlete(rng: np.random.Generator, base: PathologySpec) -> PathologySpec:
    male = base.sex == "M"
    return replace(
        base,
        scenario="athlete",
        lv_edvi_ml_m2=float(rng.uniform(108, 130) if male else rng.uniform(99, 120)),
        lv_ef_pct=float(rng.uniform(52, 62)),
        rv_edvi_ml_m2=float(rng.uniform(100, 135) if male else rng.uniform(92, 125)),
        rv_ef_pct=float(rng.uniform(48, 58)),
    )


SCENARIOS: dict[str, Callable[[np.random.Generator, PathologySpec], PathologySpec]] = {
    "normal": lambda rng, base: base,
    "ischemic": _ischemic,
    "dilated": _dilated,
    "hypertrophic": _hypertrophic,
    "hypertensive": _hypertensive,
    "rv_overload": _rv_overload,
    "effusion": _effusion,
    "nondilated_dysfunction": _nondilated_dysfunction,
    "myocarditis": _myocarditis,
    "athlete": _athlete,
}


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``"normal=0.3,ischemic=0.2"`` into scenario weights.

    Scenarios left out get weight 0. Raises ValueError on an unknown scenario
    name or a weight that is negative or not a number.
    """
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition("=")
        name = name.strip()
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r} in pathology mix; expected one of {', '.join(SCENARIOS)}")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"invalid weight {weight!r} for scenario {name!r}; expected a number such as 0.2") from None
        if value < 0:
            raise ValueError(f"weight of scenario {name!r} is negative ({value})")
        mix[name] = value
    return normalise_mix(mix)


def normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """Scale weights to sum to 1; raises ValueError if all are zero or a name is unknown."""
    unknown = sorted(set(mix) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown} in pathology mix; expected names from {list(SCENARIOS)}")
    total = float(sum(mix.values()))
    if total <= 0:
        raise ValueError("pathology mix has no positive weight")
    return {name: float(weight) / total for name, weight in mix.items() if weight > 0}


def scenario_sequence(count: int, mix: Mapping[str, float], rng: np.random.Generator) -> list[str]:
    """Assign a scenario to each of ``count`` studies, in shuffled order.

    Counts follow the mix by largest remainder, so even a small archive
    contains every scenario with a non-zero weight once ``count`` allows.
    """
    weights = normalise_mix(mix)
    names = list(weights)
    exact = np.array([weights[name] * count for name in names])
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    for index in order[: count - int(counts.sum())]:
        counts[index] += 1
    sequence = [name for name, n in zip(names, counts) for _ in range(n)]
    rng.shuffle(sequence)
    return sequence


def sample_pathology(scenario: str, rng: np.random.Generator) -> PathologySpec:
    """Draw a patient for ``scenario``, sometimes with an effusion or RV dysfunction on top."""
    base = _normal(rng)
    spec = SCENARIOS[scenario](rng, base)
    if scenario == "normal":
        return spec
    if spec.effusion_mm < 5 and rng.random() < EXTRA_EFFUSION_PROBABILITY:
        spec = replace(spec, effusion_mm=float(rng.uniform(6, 16)))
    if spec.rv_ef_pct >= 45 and rng.random() < EXTRA_RV_DYSFUNCTION_PROBABILITY:
        spec = replace(spec, rv_ef_pct=float(rng.uniform(28, 43)))
    return spec
