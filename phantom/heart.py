"""The time-varying 3-D heart: chamber shapes at any point of the cycle.

The LV cavity is a prolate ellipsoid cut by the base (mitral) plane
``BASE_CUT`` long semi-axes above its centre, with a short-axis radius
``a(theta)`` that may differ by circumferential angle. Its volume is
``pi * c * mean_theta(a²) * BASE_VOLUME_FACTOR`` exactly, so the target
end-diastolic and end-systolic volumes are met exactly. The apex stays
fixed while the base descends in systole (long-axis shortening). The
epicardium keeps each angular sector's wall area times the long axis
constant, so the myocardial volume stays close to constant and the wall
thickens as the cavity empties.

The RV cavity is an ellipsoid beside the LV with the LV epicardium carved
out of it, which gives the crescent on short-axis cuts. Its size and
contraction are solved numerically for the target RV volumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from phantom import shapes
from phantom.motion import volume_fraction
from phantom.pathology import PathologySpec

BASE_CUT = 0.35
BASE_VOLUME_FACTOR = (1.0 + BASE_CUT) - (1.0 + BASE_CUT**3) / 3.0
ANGLE_SAMPLES = 72
ANGLES_RAD = np.linspace(-np.pi, np.pi, ANGLE_SAMPLES, endpoint=False)

# Circumferential extent of each territory: (centre, half-width) in degrees,
# 0° mid-septum, +90° anterior, 180° lateral, -90° inferior.
TERRITORY_ARCS_DEG: dict[str, tuple[float, float]] = {
    "LAD": (55.0, 65.0),
    "RCA": (-60.0, 60.0),
    "LCx": (180.0, 60.0),
    "septal": (0.0, 50.0),
    "lateral": (180.0, 45.0),
}
# Long-axis extent of each territory as fractions of LV length (0 apex, 1 base).
TERRITORY_LEVELS: dict[str, tuple[float, float]] = {
    "LAD": (0.0, 0.85),
    "RCA": (0.3, 1.0),
    "LCx": (0.3, 1.0),
    "septal": (0.25, 0.95),
    "lateral": (0.2, 0.9),
}
# Endocardial excursion in a territory, relative to healthy myocardium.
WMA_MOTION = {"none": 1.0, "hypokinesis": 0.4, "akinesis": 0.0}
RV_WALL_MM = 3.5
ATRIAL_WALL_MM = 2.0
AORTIC_WALL_MM = 1.8
PERICARDIUM_MM = 1.6
AV_OVERLAP_MM = 4.0
RV_SOLVER_VOXEL_MM = 3.0
RV_MAX_SCALE = 1.7


def angular_weight(theta_rad: np.ndarray, territory: str, edge_deg: float = 12.0) -> np.ndarray:
    """Membership (0..1) of angles in a territory's arc, with soft edges."""
    if territory not in TERRITORY_ARCS_DEG:
        return np.zeros_like(theta_rad)
    centre, half = TERRITORY_ARCS_DEG[territory]
    offset = np.abs((np.degrees(theta_rad) - centre + 180.0) % 360.0 - 180.0)
    return np.clip((half + edge_deg / 2 - offset) / edge_deg, 0.0, 1.0)


@dataclass(frozen=True)
class HeartState:
    """Chamber shapes at one moment of the cycle, in heart-frame mm."""

    phase_fraction: float
    lv_center_h3: float
    lv_c: float
    lv_a: np.ndarray  # endocardial short-axis radius per ANGLES_RAD
    epi_a: np.ndarray  # epicardial short-axis radius per ANGLES_RAD
    epi_c: float
    base_h3: float
    rv_scale: float
    atrial_scale: float


@dataclass(frozen=True)
class RVShape:
    """End-diastolic RV ellipsoid in heart-frame mm, before scaling."""

    center: np.ndarray
    axes: np.ndarray
    base_above_lv_mm: float


class HeartModel:
    """One patient's heart over the cardiac cycle, built from a :class:`PathologySpec`."""

    def __init__(self, spec: PathologySpec, systole_fraction: float, rng: np.random.Generator) -> None:
        self.spec = spec
        self.systole_fraction = systole_fraction
        self.lv_edv_ml = spec.lv_edvi_ml_m2 * spec.bsa_m2
        self.lv_esv_ml = self.lv_edv_ml * (1.0 - spec.lv_ef_pct / 100.0)
        self._build_lv(rng)
        self._build_rv(rng)
        self._build_atria_and_aorta(rng)

    # -- construction -------------------------------------------------------

    def _build_lv(self, rng: np.random.Generator) -> None:
        spec = self.spec
        self.a_ed = (self.lv_edv_ml * 1000.0 / (math.pi * spec.sphericity * BASE_VOLUME_FACTOR)) ** (1.0 / 3.0)
        self.c_ed = spec.sphericity * self.a_ed
        self.apex_h3 = -(1.0 + BASE_CUT) * self.c_ed
        self.wall_ed = self._wall_profile(rng)
        self.apex_wall_ed = 0.75 * float(np.min(self.wall_ed))

        long_axis_shortening = float(np.clip(0.17 * spec.lv_ef_pct / 62.0, 0.05, 0.2))
        self.c_es = self.c_ed * (1.0 - long_axis_shortening)
        motion = 1.0 - (1.0 - WMA_MOTION[spec.wma_severity]) * angular_weight(ANGLES_RAD, spec.wma_territory)
        target = self.lv_esv_ml * 1000.0 / (math.pi * self.c_es * BASE_VOLUME_FACTOR)
        # mean((a_ed - d * motion)²) = target, solved for the excursion d.
        qa, qb, qc = float(np.mean(motion**2)), -2.0 * self.a_ed * float(np.mean(motion)), self.a_ed**2 - target
        excursion = (-qb - math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))) / (2 * qa)
        excursion = min(excursion, 0.8 * self.a_ed)
        self.a_es = self.a_ed - excursion * motion
        self.lv_esv_ml = math.pi * self.c_es * float(np.mean(self.a_es**2)) * BASE_VOLUME_FACTOR / 1000.0

    def _wall_profile(self, rng: np.random.Generator) -> np.ndarray:
        spec = self.spec
        width = 70.0 if spec.hypertrophy_pattern == "asymmetric_septal" else 60.0
        bump = np.exp(-((np.degrees(ANGLES_RAD) - 15.0) / width) ** 2)
        wall = spec.lateral_thickness_mm + (spec.septal_thickness_mm - spec.lateral_thickness_mm) * bump
        if spec.lge_pattern == "transmural":
            wall = wall * (1.0 - 0.4 * angular_weight(ANGLES_RAD, spec.lge_territory))
        return wall * (1.0 + rng.normal(0.0, 0.02, ANGLE_SAMPLES))

    def _build_rv(self, rng: np.random.Generator) -> None:
        outer = self.a_ed + float(self.wall_ed[np.argmin(np.abs(ANGLES_RAD))])
        self.rv_shape = RVShape(
            center=np.array([0.8 * outer, rng.uniform(-4.0, 4.0), 0.0]),
            axes=np.array([0.95 * outer, 1.25 * outer, 0.8 * self.c_ed]),
            base_above_lv_mm=float(rng.uniform(2.0, 8.0)),
        )
        spec = self.spec
        self.rv_edv_target_ml = spec.rv_edvi_ml_m2 * spec.bsa_m2
        self.rv_esv_target_ml = self.rv_edv_target_ml * (1.0 - spec.rv_ef_pct / 100.0)
        self.rv_scale_ed = self.rv_scale_es = 1.0
        grid = self.voxel_grid(RV_SOLVER_VOXEL_MM)
        ed_state = self.state(0.0)
        ed_lv = self.lv_epi(grid, ed_state)
        self.rv_scale_ed = _solve_scale(lambda s: self._rv_volume(grid, ed_lv, ed_state, s), self.rv_edv_target_ml, 0.4, RV_MAX_SCALE)
        es_state = self.state(self.systole_fraction)
        es_lv = self.lv_epi(grid, es_state)
        self.rv_scale_es = _solve_scale(lambda s: self._rv_volume(grid, es_lv, es_state, s), self.rv_esv_target_ml, 0.2, self.rv_scale_ed)

    def _build_atria_and_aorta(self, rng: np.random.Generator) -> None:
        size = (self.lv_edv_ml / 140.0) ** (1.0 / 3.0)
        self.la_center = np.array([-8.0, -14.0, 0.0])
        self.la_axes = np.array([20.0, 22.0, 27.0]) * np.clip(size, 0.85, 1.3) * rng.uniform(0.9, 1.1)
        rv = self.rv_shape
        self.ra_center = np.array([rv.center[0] + 4.0, -10.0, 0.0])
        self.ra_axes = np.array([21.0, 21.0, 25.0]) * rng.uniform(0.9, 1.15)
        toward_outflow = np.array([math.cos(math.radians(30)), math.sin(math.radians(30)), 0.0])
        self.aortic_root = 0.5 * self.a_ed * toward_outflow
        self.aortic_direction = np.array([0.8 * toward_outflow[0], 0.8 * toward_outflow[1], 0.6])
        self.aortic_direction /= np.linalg.norm(self.aortic_direction)
        self.aortic_radius = float(rng.uniform(12.0, 16.5))

    # -- state over the cycle ----------------------------------------------

    def state(self, phase_fraction: float) -> HeartState:
        """Return the chamber shapes at ``phase_fraction`` of the R-R interval."""
        f = float(volume_fraction(phase_fraction, self.systole_fraction))
        c = self.c_es + (self.c_ed - self.c_es) * f
        a = self.a_es + (self.a_ed - self.a_es) * f
        center = self.apex_h3 + c
        wall_area = (self.a_ed + self.wall_ed) ** 2 - self.a_ed**2
        epi_a = np.sqrt(a**2 + wall_area * self.c_ed / c)
        epi_c = c + self.apex_wall_ed * math.sqrt(self.c_ed / c)
        rv_scale = self.rv_scale_es + (self.rv_scale_ed - self.rv_scale_es) * f
        return HeartState(
            phase_fraction=float(phase_fraction),
            lv_center_h3=center,
            lv_c=c,
            lv_a=a,
            epi_a=epi_a,
            epi_c=epi_c,
            base_h3=center + BASE_CUT * c,
            rv_scale=rv_scale,
            atrial_scale=1.0 + 0.22 * (1.0 - f),
        )

    def lv_volume_ml(self, state: HeartState) -> float:
        """Analytic LV cavity (blood pool incl. papillary muscles) volume in ml."""
        return math.pi * state.lv_c * float(np.mean(state.lv_a**2)) * BASE_VOLUME_FACTOR / 1000.0

    # -- signed distances in heart-frame mm -------------------------------

    def lv_endo(self, points: np.ndarray, state: HeartState) -> np.ndarray:
        """Signed distance to the LV cavity."""
        theta = np.arctan2(points[..., 1], points[..., 0])
        a = np.interp(theta, ANGLES_RAD, state.lv_a, period=2 * np.pi).astype(points.dtype)
        axes = np.stack([a, a, np.full_like(a, state.lv_c)], axis=-1)
        center = np.array([0.0, 0.0, state.lv_center_h3])
        return shapes.intersect(shapes.ellipsoid(points, center, axes), points[..., 2] - state.base_h3)

    def lv_epi(self, points: np.ndarray, state: HeartState) -> np.ndarray:
        """Signed distance to the LV epicardial surface (cavity plus myocardium)."""
        theta = np.arctan2(points[..., 1], points[..., 0])
        a = np.interp(theta, ANGLES_RAD, state.epi_a, period=2 * np.pi).astype(points.dtype)
        axes = np.stack([a, a, np.full_like(a, state.epi_c)], axis=-1)
        center = np.array([0.0, 0.0, state.lv_center_h3])
        return shapes.intersect(shapes.ellipsoid(points, center, axes), points[..., 2] - state.base_h3)

    def _rv_ellipsoid(self, points: np.ndarray, state: HeartState, scale: float, grow_mm: float = 0.0) -> np.ndarray:
        rv = self.rv_shape
        axes = rv.axes * np.array([scale, scale, 0.5 + 0.5 * scale]) + grow_mm
        top = state.base_h3 + rv.base_above_lv_mm
        center = np.array([rv.center[0] - rv.axes[0] * (1.0 - scale), rv.center[1], top - 0.35 * axes[2]])
        cut = points[..., 2] - (top + grow_mm)
        return shapes.intersect(shapes.ellipsoid(points, center, axes), cut)

    def rv_cavity(self, points: np.ndarray, state: HeartState, lv_epi: np.ndarray | None = None) -> np.ndarray:
        """Signed distance to the RV cavity (the RV ellipsoid minus the LV)."""
        if lv_epi is None:
            lv_epi = self.lv_epi(points, state)
        return shapes.subtract(self._rv_ellipsoid(points, state, state.rv_scale), lv_epi)

    def rv_outer(self, points: np.ndarray, state: HeartState) -> np.ndarray:
        """Signed distance to the RV including its free wall."""
        return self._rv_ellipsoid(points, state, state.rv_scale, RV_WALL_MM)

    def _rv_volume(self, grid: np.ndarray, lv_epi: np.ndarray, state: HeartState, scale: float) -> float:
        cavity = shapes.subtract(self._rv_ellipsoid(grid, state, scale), lv_epi)
        return voxel_volume_ml(cavity, RV_SOLVER_VOXEL_MM)

    def surface_points(self) -> np.ndarray:
        """Heart-frame points (N, 3) inside the end-diastolic ventricles, on a 4 mm grid."""
        grid = self.voxel_grid(4.0)
        state = self.state(0.0)
        inside = (self.lv_epi(grid, state) < 0) | (self.rv_outer(grid, state) < 0)
        return grid[inside]

    def voxel_grid(self, voxel_mm: float) -> np.ndarray:
        """Voxel centres (N, 3) of a heart-frame box around both ventricles at any scale up to RV_MAX_SCALE."""
        extent = self.a_ed + float(np.max(self.wall_ed)) + 4.0
        rv = self.rv_shape
        h1 = np.arange(-extent, rv.center[0] + (2.0 * RV_MAX_SCALE - 1.0) * rv.axes[0] + RV_WALL_MM, voxel_mm)
        h2 = np.arange(-RV_MAX_SCALE * rv.axes[1] - 5.0, RV_MAX_SCALE * rv.axes[1] + 5.0, voxel_mm)
        h3 = np.arange(self.apex_h3 - 20.0, rv.base_above_lv_mm + 5.0, voxel_mm)
        mesh = np.meshgrid(h1, h2, h3, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1).astype(np.float32)

    def atria(self, points: np.ndarray, state: HeartState, grow_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Signed distances to the LA and RA blood pools (grown by ``grow_mm`` for the walls)."""
        # The atria reach AV_OVERLAP_MM below the AV plane, so no gap opens
        # between atrial and ventricular blood at the valve plane.
        below = state.base_h3 - AV_OVERLAP_MM - points[..., 2] + grow_mm
        la_axes = self.la_axes * np.array([1.0, 1.0, state.atrial_scale]) + grow_mm
        ra_axes = self.ra_axes * np.array([1.0, 1.0, state.atrial_scale]) + grow_mm
        la_center = self.la_center + np.array([0.0, 0.0, state.base_h3 + 0.8 * la_axes[2]])
        ra_center = self.ra_center + np.array([0.0, 0.0, state.base_h3 + self.rv_shape.base_above_lv_mm + 0.8 * ra_axes[2]])
        la = shapes.intersect(shapes.ellipsoid(points, la_center, la_axes), below)
        ra = shapes.intersect(shapes.ellipsoid(points, ra_center, ra_axes), below - self.rv_shape.base_above_lv_mm)
        return la, ra

    def aorta(self, points: np.ndarray, state: HeartState, grow_mm: float = 0.0) -> np.ndarray:
        """Signed distance to the aortic root and ascending aorta lumen."""
        start = self.aortic_root + np.array([0.0, 0.0, state.base_h3 + 2.0])
        end = start + 75.0 * self.aortic_direction
        return shapes.capsule(points, start, end, self.aortic_radius + grow_mm)

    def envelope(self, points: np.ndarray, state: HeartState) -> np.ndarray:
        """Signed distance to the outside of the heart: ventricles, atria and aortic root with their walls."""
        la_outer, ra_outer = self.atria(points, state, ATRIAL_WALL_MM)
        return np.minimum.reduce([self.lv_epi(points, state), self.rv_outer(points, state), la_outer, ra_outer, self.aorta(points, state, AORTIC_WALL_MM)])

    def papillary_muscles(self, points: np.ndarray, state: HeartState) -> np.ndarray:
        """Signed distance to the anterolateral and posteromedial papillary muscles."""
        length = state.base_h3 - self.apex_h3
        distances = []
        # Anterolateral and posteromedial muscles, rooted in the wall and
        # leaning inwards towards the mitral leaflets.
        for angle_deg in (140.0, -115.0):
            theta = math.radians(angle_deg)
            radius = float(np.interp(theta, ANGLES_RAD, state.lv_a, period=2 * np.pi))
            direction = np.array([math.cos(theta), math.sin(theta), 0.0])
            foot = 0.85 * radius * direction + np.array([0.0, 0.0, self.apex_h3 + 0.22 * length])
            head = 0.62 * radius * direction + np.array([0.0, 0.0, self.apex_h3 + 0.6 * length])
            distances.append(shapes.capsule(points, foot, head, 5.0))
        return np.minimum(*distances)

    def scar_weight(self, points: np.ndarray, state: HeartState, endo: np.ndarray, epi: np.ndarray) -> np.ndarray:
        """Fraction (0..1) of scar at each point of the LV myocardium."""
        spec = self.spec
        if spec.lge_pattern == "none":
            return np.zeros(points.shape[:-1])
        theta = np.arctan2(points[..., 1], points[..., 0])
        depth = np.clip(endo / np.maximum(endo - epi, 1e-6), 0.0, 1.0)  # 0 endocardium .. 1 epicardium
        if spec.lge_pattern == "midwall":
            transmural = np.clip(1.0 - np.abs(depth - 0.5) / 0.2, 0.0, 1.0)
        else:
            transmural = np.clip((spec.lge_transmurality - depth) / 0.1 + 0.5, 0.0, 1.0)
        low, high = TERRITORY_LEVELS[spec.lge_territory]
        level = (points[..., 2] - self.apex_h3) / max(state.base_h3 - self.apex_h3, 1e-6)
        longitudinal = np.clip(np.minimum(level - low, high - level) / 0.08 + 0.5, 0.0, 1.0)
        weight = angular_weight(theta, spec.lge_territory) * longitudinal
        if spec.lge_territory == "LAD":
            weight = np.maximum(weight, np.clip((0.2 - level) / 0.08, 0.0, 1.0))
        return weight * transmural


def voxel_volume_ml(distance: np.ndarray, voxel_mm: float) -> float:
    """Volume in ml of the shape whose signed distances on a voxel grid are ``distance``.

    Each voxel counts with the fraction of it that lies inside (the
    partial-volume ramp), which is far less sensitive to the grid than
    counting voxel centres.
    """
    return float(np.sum(shapes.coverage(distance, voxel_mm), dtype=np.float64)) * voxel_mm**3 / 1000.0


def _solve_scale(volume_of, target_ml: float, low: float, high: float, steps: int = 10) -> float:
    """Bisect for the scale whose volume equals ``target_ml`` (volume grows with scale)."""
    for _ in range(steps):
        middle = 0.5 * (low + high)
        if volume_of(middle) < target_ml:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)
