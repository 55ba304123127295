"""The cardiac cycle: how chamber volume moves between end-diastole and end-systole."""

from __future__ import annotations

import numpy as np


def end_systole_fraction(heart_rate_bpm: float, phases: int) -> tuple[float, int]:
    """Return end-systole as a fraction of the R-R interval and as a phase index.

    Systole lasts about ``0.42 * sqrt(RR)`` seconds minus the isovolumic
    relaxation time (an estimate after Bazett's scaling), so it takes a larger
    share of the cycle at high heart rates. The fraction is rounded onto the
    phase grid, so one phase is exactly end-systole.
    """
    rr_s = 60.0 / heart_rate_bpm
    systole_s = 0.42 * np.sqrt(rr_s) - 0.06
    index = int(round(systole_s / rr_s * phases))
    index = int(np.clip(index, 2, phases - 3))
    return index / phases, index


def volume_fraction(phase_fraction: float | np.ndarray, systole_fraction: float) -> np.ndarray:
    """Return where a chamber is between end-systole (0) and end-diastole (1).

    ``phase_fraction`` is the time since the R wave as a fraction of R-R. The
    curve has ejection until ``systole_fraction``, rapid early filling to
    about 80 %, diastasis, and the atrial contraction that completes filling
    at the next R wave.
    """
    s = systole_fraction
    diastole = 1.0 - s
    knots_t = [0.0, 0.5 * s, s, s + 0.08 * diastole, s + 0.35 * diastole, s + 0.75 * diastole, s + 0.85 * diastole, 1.0]
    knots_v = [1.0, 0.55, 0.0, 0.12, 0.78, 0.86, 0.87, 1.0]
    # Imported here: scipy costs about 0.6 s, which every cmr-search command would pay.
    from scipy.interpolate import PchipInterpolator

    curve = PchipInterpolator(knots_t, knots_v)
    phase = np.mod(np.asarray(phase_fraction, dtype=float), 1.0)
    return np.clip(curve(phase), 0.0, 1.0)
