"""One synthetic study, planned from a seed: patient, heart, chest, acquisition, planes.

Three independent random streams derive from (seed, study index): one for
the patient and pathology, one for the acquisition (nuisance variables) and
one for image noise. Re-planning with the same arguments gives the same
study, which is how tests recover the generator's masks for a study that is
already on disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phantom.acquisition import Acquisition, sample_acquisition
from phantom.body import Body, sample_body
from phantom.domains import DOMAINS
from phantom.geometry import HeartFrame, Plane, sample_heart_frame
from phantom.heart import HeartModel
from phantom.motion import end_systole_fraction
from phantom.pathology import PathologySpec, sample_pathology
from phantom.render import PlaneRenderer, Shading
from phantom.views import SaxStack, long_axis_plane, sax_stack

LONG_AXIS_VIEWS: tuple[str, ...] = ("2ch", "3ch", "4ch")


@dataclass
class StudyPlan:
    """Everything needed to render and describe one study."""

    seed: int
    index: int
    scenario: str
    pathology: PathologySpec
    acquisition: Acquisition
    heart: HeartModel
    frame: HeartFrame
    body: Body
    shading: Shading
    sax: SaxStack
    long_axis: dict[str, Plane]
    es_phase: int
    noise_rng: np.random.Generator

    @property
    def blur_width_mm(self) -> float:
        """Width of the partial-volume ramp: a pixel, widened by the slice thickness."""
        return float(math.hypot(self.acquisition.pixel_spacing_mm, 0.35 * self.acquisition.slice_thickness_mm))

    def renderer(self, plane: Plane) -> PlaneRenderer:
        """Return a renderer of ``plane`` for this study's heart and chest."""
        return PlaneRenderer(plane, self.frame, self.body, self.heart, self.shading, self.blur_width_mm)


def study_streams(seed: int, index: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for pathology, acquisition and noise of one study."""
    children = np.random.SeedSequence([seed, index]).spawn(3)
    return tuple(np.random.default_rng(child) for child in children)  # type: ignore[return-value]


def plan_study(seed: int, index: int, scenario: str, domain: str = "standard") -> StudyPlan:
    """Plan study ``index`` of the archive made with ``seed``."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    pathology_rng, acquisition_rng, noise_rng = study_streams(seed, index)
    pathology = sample_pathology(scenario, pathology_rng)
    acquisition = sample_acquisition(DOMAINS[domain], acquisition_rng)
    systole, es_phase = end_systole_fraction(acquisition.heart_rate_bpm, acquisition.phases)
    heart = HeartModel(pathology, systole, pathology_rng)
    origin = np.array([25.0, -15.0, 0.0]) + pathology_rng.normal(0.0, 6.0, 3)
    frame = sample_heart_frame(origin, pathology_rng)
    bmi = pathology.weight_kg / pathology.height_m**2
    body = sample_body(bmi, frame.to_patient(heart.surface_points()), pathology_rng)
    shading = _coil_shading(body, acquisition)
    sax = sax_stack(frame, heart, acquisition, acquisition_rng)
    long_axis = {view: long_axis_plane(view, frame, heart, acquisition, acquisition_rng) for view in LONG_AXIS_VIEWS}
    return StudyPlan(seed, index, scenario, pathology, acquisition, heart, frame, body, shading, sax, long_axis, es_phase, noise_rng)


def _coil_shading(body: Body, acquisition: Acquisition) -> Shading:
    """Two anterior and two posterior coil elements on the body surface."""
    cx, cy = body.center_xy
    ax, ay = body.axes_xy
    centers = np.array(
        [
            [cx + 0.25 * ax, cy - ay - 20.0, -20.0],
            [cx - 0.35 * ax, cy - ay - 20.0, -20.0],
            [cx + 0.25 * ax, cy + ay + 20.0, -20.0],
            [cx - 0.35 * ax, cy + ay + 20.0, -20.0],
        ]
    )
    gains = np.array(acquisition.coil_gains)
    return Shading(coil_centers=centers, coil_gains=gains, width_mm=120.0, floor=0.25)
