"""Tissue classes and their signal in each contrast and domain.

Signals are relative to cine blood at full coil sensitivity (1.0). The
cine values mimic balanced SSFP, whose signal follows T2/T1: bright blood,
fat and fluid, dark myocardium and skeletal muscle, near-black lung. The LGE
values mimic an inversion-recovery gradient echo about 10 minutes after
gadolinium, with the inversion time set to null normal myocardium.
"""

from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    """Label codes of the generator's tissue maps."""

    AIR = 0
    LUNG = 1
    SUBCUTANEOUS_FAT = 2
    MUSCLE = 3
    SOFT_TISSUE = 4
    LIVER = 5
    BONE_MARROW = 6
    CORTICAL_BONE = 7
    CSF = 8
    DESCENDING_AORTA = 9
    PERICARDIAL_FAT = 10
    PERICARDIUM = 11
    EFFUSION = 12
    ATRIAL_WALL = 13
    LA_BLOOD = 14
    RA_BLOOD = 15
    AORTIC_WALL = 16
    AORTIC_BLOOD = 17
    RV_MYOCARDIUM = 18
    RV_BLOOD = 19
    LV_MYOCARDIUM = 20
    SCAR = 21
    LV_BLOOD = 22
    PAPILLARY_MUSCLE = 23


_CINE_STANDARD: dict[Tissue, float] = {
    Tissue.AIR: 0.0,
    Tissue.LUNG: 0.035,
    Tissue.SUBCUTANEOUS_FAT: 0.82,
    Tissue.MUSCLE: 0.2,
    Tissue.SOFT_TISSUE: 0.3,
    Tissue.LIVER: 0.3,
    Tissue.BONE_MARROW: 0.52,
    Tissue.CORTICAL_BONE: 0.04,
    Tissue.CSF: 0.9,
    Tissue.DESCENDING_AORTA: 0.85,
    Tissue.PERICARDIAL_FAT: 0.78,
    Tissue.PERICARDIUM: 0.05,
    Tissue.EFFUSION: 0.8,
    Tissue.ATRIAL_WALL: 0.28,
    Tissue.LA_BLOOD: 0.95,
    Tissue.RA_BLOOD: 0.95,
    Tissue.AORTIC_WALL: 0.3,
    Tissue.AORTIC_BLOOD: 0.97,
    Tissue.RV_MYOCARDIUM: 0.24,
    Tissue.RV_BLOOD: 0.98,
    Tissue.LV_MYOCARDIUM: 0.23,
    Tissue.SCAR: 0.21,
    Tissue.LV_BLOOD: 1.0,
    Tissue.PAPILLARY_MUSCLE: 0.25,
}

_LGE_STANDARD: dict[Tissue, float] = {
    Tissue.AIR: 0.0,
    Tissue.LUNG: 0.02,
    Tissue.SUBCUTANEOUS_FAT: 0.6,
    Tissue.MUSCLE: 0.12,
    Tissue.SOFT_TISSUE: 0.2,
    Tissue.LIVER: 0.32,
    Tissue.BONE_MARROW: 0.35,
    Tissue.CORTICAL_BONE: 0.03,
    Tissue.CSF: 0.08,
    Tissue.DESCENDING_AORTA: 0.48,
    Tissue.PERICARDIAL_FAT: 0.55,
    Tissue.PERICARDIUM: 0.3,
    Tissue.EFFUSION: 0.12,
    Tissue.ATRIAL_WALL: 0.1,
    Tissue.LA_BLOOD: 0.5,
    Tissue.RA_BLOOD: 0.5,
    Tissue.AORTIC_WALL: 0.12,
    Tissue.AORTIC_BLOOD: 0.5,
    Tissue.RV_MYOCARDIUM: 0.04,
    Tissue.RV_BLOOD: 0.5,
    Tissue.LV_MYOCARDIUM: 0.03,
    Tissue.SCAR: 1.0,
    Tissue.LV_BLOOD: 0.52,
    Tissue.PAPILLARY_MUSCLE: 0.05,
}


def _shifted(table: dict[Tissue, float], blood: float, dark_floor: float, gamma: float) -> dict[Tissue, float]:
    """Lower blood-to-myocardium contrast: compress towards a floor and bend by ``gamma``."""
    top = max(table.values())
    return {tissue: dark_floor + (blood - dark_floor) * (value / top) ** gamma if value > 0 else 0.0 for tissue, value in table.items()}


# The shifted ("external site") domain has a raised dark floor and flatter
# contrast, as from a different flip angle, coil and reconstruction filter.
CONTRASTS: dict[str, dict[str, dict[Tissue, float]]] = {
    "standard": {"cine": _CINE_STANDARD, "lge": _LGE_STANDARD},
    "shifted": {
        "cine": _shifted(_CINE_STANDARD, blood=0.9, dark_floor=0.08, gamma=0.8),
        "lge": _shifted(_LGE_STANDARD, blood=0.9, dark_floor=0.06, gamma=0.85),
    },
}
