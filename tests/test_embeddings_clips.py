"""Clips: cycle resampling, heart-centred crop, scaling, cache, and real Sunnybrook series through the catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from embeddings.clips import (
    ClipCache,
    ClipSettings,
    build_series_clip,
    build_study_clips,
    crop_box_size,
    crop_centred,
    locate_heart,
    make_clip,
    normalise_intensity,
    resample_cycle,
    sax_slice_indices,
    select_study_series,
)
from indexer.catalog.models import Frame, Instance, ScannedFile, Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory

# Sunnybrook short-axis orientation (SCD0000101): its slice normal points from apex to base.
SUNNYBROOK_ORIENTATION = [-0.104592, 0.346381, -0.932245, -0.733192, -0.660188, -0.163037]


def beating_disc(phases: int = 20, size: int = 128, centre: tuple[int, int] = (40, 90)) -> np.ndarray:
    """A bright disc whose radius follows one cosine cycle over ``phases``, on a static noisy background."""
    rows, cols = np.mgrid[:size, :size]
    distance = np.hypot(rows - centre[0], cols - centre[1])
    generator = np.random.default_rng(0)
    frames = []
    for phase in range(phases):
        radius = 14 + 6 * np.cos(2 * np.pi * phase / phases)
        frames.append((distance < radius) * 100.0 + generator.normal(0, 2, (size, size)))
    return np.stack(frames).astype(np.float32)


def test_resample_cycle_even_phases() -> None:
    signal = np.arange(20, dtype=np.float32).reshape(20, 1)
    out = resample_cycle(signal, 10)
    np.testing.assert_allclose(out[:, 0], np.arange(0, 20, 2))


def test_resample_cycle_wraps_around() -> None:
    signal = np.array([[0.0], [10.0], [20.0], [30.0]], dtype=np.float32)
    out = resample_cycle(signal, 8)
    # The sample half-way after the last phase lies between phase 3 (30) and phase 0 (0).
    assert out[-1, 0] == pytest.approx(15.0)


def test_resample_cycle_uses_trigger_times() -> None:
    # Phases bunched early in the cycle: 0, 100, 200, 300 ms and then 600 ms; cycle length 600 + 150 = 750 ms.
    times = np.array([0.0, 100.0, 200.0, 300.0, 600.0])
    signal = times.reshape(-1, 1).astype(np.float32)
    out = resample_cycle(signal, 5, times)
    np.testing.assert_allclose(out[:4, 0], [0.0, 150.0, 300.0, 450.0], atol=1e-4)


def test_resample_cycle_single_phase_repeats() -> None:
    out = resample_cycle(np.ones((1, 4, 4), dtype=np.float32), 16)
    assert out.shape == (16, 4, 4)


def test_locate_heart_finds_moving_disc() -> None:
    row, col = locate_heart(beating_disc(), (1.5, 1.5))
    assert abs(row - 40) <= 3
    assert abs(col - 90) <= 3


def test_locate_heart_without_motion_uses_centre() -> None:
    assert locate_heart(np.ones((1, 10, 20), dtype=np.float32), None) == (5, 10)


def test_crop_box_size_follows_pixel_spacing() -> None:
    settings = ClipSettings(fov_mm=180.0)
    assert crop_box_size((256, 256), (1.5, 2.0), settings) == (120, 90)
    assert crop_box_size((200, 300), None, settings) == (120, 120)


def test_crop_centred_pads_outside_image() -> None:
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = crop_centred(image, (0, 0), (4, 4), fill=-1.0)
    assert out.shape == (4, 4)
    assert out[0, 0] == -1.0
    assert out[2, 2] == image[0, 0]


def test_normalise_intensity_clips_outliers() -> None:
    values = np.linspace(0, 100, 1001, dtype=np.float32)
    values[-1] = 1e6
    out = normalise_intensity(values, 1.0, 99.0)
    assert out.min() == 0.0
    assert out.max() == 1.0
    assert out[500] == pytest.approx(0.5, abs=0.01)


def test_make_clip_centres_heart_at_fixed_fov() -> None:
    settings = ClipSettings(frames=8, size=32, fov_mm=96.0)
    stack = beating_disc()[np.newaxis]
    clip = make_clip(stack, (1.5, 1.5), settings)
    assert clip.shape == (1, 8, 32, 32)
    assert clip.dtype == np.float32
    # 96 mm at 1.5 mm/pixel is a 64-pixel crop; the disc (diameter 40 pixels at end-diastole) fills its middle.
    centre_value = clip[0, 0, 16, 16]
    corner_value = clip[0, 0, 1, 1]
    assert centre_value > 0.8
    assert corner_value < 0.2
    # End-diastole (frame 0) has a larger bright area than end-systole (frame 4).
    assert (clip[0, 0] > 0.5).sum() > (clip[0, 4] > 0.5).sum() * 1.5


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (SUNNYBROOK_ORIENTATION, [9, 5, 2]),  # the normal points towards the base, so the last slice is basal
        ([1, 0, 0, 0, 1, 0], [9, 5, 2]),  # normal +z (head): slice 0 is the most inferior, the apex
        ([0, 1, 0, 1, 0, 0], [2, 6, 9]),  # normal -z (feet): slice 0 is the most superior, the base
        (None, [2, 6, 9]),  # no orientation: slice 0 is taken as basal
    ],
)
def test_sax_slice_indices_base_to_apex(orientation: list[float] | None, expected: list[int]) -> None:
    assert sax_slice_indices(12, orientation, (0.2, 0.5, 0.8)) == expected


@pytest.fixture
def sunnybrook_session(sunnybrook_catalog):
    engine = create_catalog_engine(sunnybrook_catalog.settings.database_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def test_sunnybrook_study_clips(sunnybrook_session) -> None:
    settings = ClipSettings()
    study_pks = sunnybrook_session.scalars(select(Study.id).order_by(Study.id)).all()
    cine_studies = 0
    for study_pk in study_pks:
        clips = build_study_clips(sunnybrook_session, study_pk, settings)
        if not clips:
            continue
        cine_studies += 1
        assert len(clips) == 1
        clip = clips[0]
        assert clip.kind == "cine"
        assert clip.view_types == ("sax_basal", "sax_mid", "sax_apical")
        assert clip.array.shape == (3, 16, 64, 64)
        assert clip.array.min() >= 0.0
        assert clip.array.max() <= 1.0
        # The heart is in the middle: the central quarter moves more over the cycle than the border.
        motion = clip.array[1].std(axis=0)
        assert motion[16:48, 16:48].mean() > 1.5 * np.concatenate([motion[:8].ravel(), motion[-8:].ravel()]).mean()
    assert cine_studies == 5


def test_clip_cache_hit_and_invalidation(sunnybrook_session, tmp_path: Path) -> None:
    settings = ClipSettings()
    series = sunnybrook_session.scalars(select(Series).where(Series.kind == "cine").order_by(Series.id)).first()
    cache = ClipCache(tmp_path / "clips")
    first = cache.load_or_build(sunnybrook_session, series.id, settings)
    path = cache.path_for(sunnybrook_session, series.id, settings)
    assert path.is_file()
    stored = np.load(path)["array"]
    assert stored.dtype == np.float16

    again = cache.load_or_build(sunnybrook_session, series.id, settings)
    np.testing.assert_allclose(again.array, first.array, atol=1e-3)
    assert again.view_types == first.view_types

    other_settings = ClipSettings(size=48)
    assert cache.path_for(sunnybrook_session, series.id, other_settings) != path

    # A changed file behind one frame gives a new key, so the clip is decoded again.
    file_row = sunnybrook_session.execute(
        select(ScannedFile)
        .join(Instance, Instance.file_pk == ScannedFile.id)
        .join(Frame, Frame.instance_pk == Instance.id)
        .where(Frame.series_pk == series.id)
        .limit(1)
    ).scalar_one()
    file_row.mtime_ns += 1
    sunnybrook_session.flush()
    assert cache.path_for(sunnybrook_session, series.id, settings) != path
    sunnybrook_session.rollback()


def test_clip_cache_rebuilds_corrupt_file(sunnybrook_session, tmp_path: Path) -> None:
    settings = ClipSettings()
    series = sunnybrook_session.scalars(select(Series).where(Series.kind == "cine").order_by(Series.id)).first()
    cache = ClipCache(tmp_path / "clips")
    path = cache.path_for(sunnybrook_session, series.id, settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a numpy file")
    clip = cache.load_or_build(sunnybrook_session, series.id, settings)
    assert clip.array.shape == (3, 16, 64, 64)
    assert np.load(path)["array"].shape == (3, 16, 64, 64)


def test_scout_series_have_no_clip(sunnybrook_session) -> None:
    scouts = sunnybrook_session.scalars(select(Series).where(Series.kind == "scout")).all()
    assert scouts
    for series in scouts:
        assert series.id not in [s.id for s in select_study_series(sunnybrook_session, series.study_pk)]
