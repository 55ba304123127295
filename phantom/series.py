"""The series of one study and their pixels, rendered from a :class:`StudyPlan`.

A study has four cine series per view (SAX stack, 2CH, 3CH, 4CH) and,
when the acquisition includes it, an LGE SAX stack at mid-diastole. When
``per_slice_series`` is set, each SAX slice becomes its own series, as
some Siemens protocols write them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phantom.geometry import Plane
from phantom.study import StudyPlan
from phantom.tissues import CONTRASTS

LGE_PHASE_FRACTION = 0.72  # mid-diastolic trigger delay of the LGE acquisition, fraction of R-R
LGE_SNR_FACTOR = 0.7  # LGE noise relative to the study's cine SNR


@dataclass(frozen=True)
class SeriesLayout:
    """Planes and phase times of one series, before rendering."""

    kind: str  # "cine" or "lge"
    view: str  # "sax", "2ch", "3ch" or "4ch"
    planes: tuple[Plane, ...]
    slice_levels_mm: tuple[float, ...]  # heart-frame level along e3 of each plane; 0 for long-axis views
    phase_fractions: tuple[float, ...]  # trigger delay of each phase as a fraction of R-R
    stack_position: int | None = None  # 1-based SAX slice number of a one-slice series, else None

    @property
    def name(self) -> str:
        """Short label such as "cine sax" for logs and tests."""
        return f"{self.kind} {self.view}"


@dataclass
class RenderedSeries:
    """A series with its stored pixels (slices, phases, Rows, Columns) uint16 and optional labels."""

    layout: SeriesLayout
    pixels: np.ndarray
    labels: np.ndarray | None


def series_layouts(plan: StudyPlan) -> list[SeriesLayout]:
    """List the series of a study in acquisition order: long axes, SAX cine, LGE."""
    phases = plan.acquisition.phases
    cine_phases = tuple(p / phases for p in range(phases))
    layouts = [
        SeriesLayout("cine", view, (plan.long_axis[view],), (0.0,), cine_phases) for view in ("2ch", "4ch", "3ch")
    ]
    sax_groups: list[tuple[tuple[Plane, ...], tuple[float, ...]]]
    if plan.acquisition.per_slice_series:
        sax_groups = [((plane,), (level,)) for plane, level in zip(plan.sax.planes, plan.sax.levels_mm)]
    else:
        sax_groups = [(plan.sax.planes, plan.sax.levels_mm)]
    per_slice = len(sax_groups) > 1
    positions = [index + 1 if per_slice else None for index in range(len(sax_groups))]
    layouts += [SeriesLayout("cine", "sax", planes, levels, cine_phases, position) for (planes, levels), position in zip(sax_groups, positions)]
    if plan.acquisition.has_lge:
        layouts += [SeriesLayout("lge", "sax", planes, levels, (LGE_PHASE_FRACTION,), position) for (planes, levels), position in zip(sax_groups, positions)]
    return layouts


def render_series(plan: StudyPlan, layout: SeriesLayout, with_labels: bool = False) -> RenderedSeries:
    """Render every frame of ``layout``; noise comes from the study's noise stream."""
    acquisition = plan.acquisition
    contrast = CONTRASTS[acquisition.domain if acquisition.domain in CONTRASTS else "standard"][layout.kind]
    snr = acquisition.snr * (LGE_SNR_FACTOR if layout.kind == "lge" else 1.0)
    shape = (len(layout.planes), len(layout.phase_fractions), acquisition.rows, acquisition.columns)
    pixels = np.zeros(shape, np.uint16)
    labels = np.zeros(shape, np.uint8) if with_labels else None
    states = [plan.heart.state(fraction) for fraction in layout.phase_fractions]
    for slice_index, plane in enumerate(layout.planes):
        renderer = plan.renderer(plane)
        for phase_index, state in enumerate(states):
            canvas = renderer.tissue_image(state, contrast, plan.pathology.effusion_mm)
            pixels[slice_index, phase_index] = renderer.acquire(canvas, snr, acquisition.intensity_scale, plan.noise_rng)
            if labels is not None:
                labels[slice_index, phase_index] = canvas.labels
    return RenderedSeries(layout, pixels, labels)


def sax_stack_layout(plan: StudyPlan, kind: str = "cine") -> SeriesLayout:
    """Return the whole SAX stack as one layout, whether or not the study splits it per slice."""
    if kind == "lge":
        phases: tuple[float, ...] = (LGE_PHASE_FRACTION,)
    else:
        phases = tuple(p / plan.acquisition.phases for p in range(plan.acquisition.phases))
    return SeriesLayout(kind, "sax", plan.sax.planes, plan.sax.levels_mm, phases)
