"""Cine previews: real DICOM files rendered to animated WebP and served by the app."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from indexer.catalog.models import Series, Study
from search_app.app import create_app
from search_app.build import BuildSummary, render_pending_previews
from search_app.previews import (
    PreviewSettings,
    cycle_length_ms,
    display_size,
    frame_durations_ms,
    preview_path,
    render_preview,
    window_to_uint8,
)
from tests.search_fixtures import KeywordEncoder, StudySpec, add_studies, index_catalog, write_cine_dicom


def webp_frames(data: bytes) -> tuple[int, list[int], tuple[int, int], list[np.ndarray]]:
    with Image.open(io.BytesIO(data)) as image:
        durations, frames = [], []
        for number in range(image.n_frames):
            image.seek(number)
            image.load()  # Pillow fills info["duration"] when the frame is decoded
            durations.append(image.info["duration"])
            frames.append(np.asarray(image.convert("L"), dtype=np.float32))
        return image.n_frames, durations, image.size, frames


@pytest.fixture
def cine_study(tmp_path: Path, catalog: sessionmaker[Session]) -> tuple[int, int]:
    """One study with a 3-slice, 12-phase short-axis cine of real DICOM files; returns (study pk, series pk)."""
    with catalog() as session:
        (study_pk,) = add_studies(session, [StudySpec(views=())])
        study = session.get(Study, study_pk)
        series = write_cine_dicom(tmp_path / "dicom", session, study, rr_interval_ms=900.0, pixel_spacing=(1.5, 1.0))
        return study_pk, series.id


def test_preview_plays_one_cycle_in_real_time(settings: Settings, catalog: sessionmaker[Session], cine_study: tuple[int, int]) -> None:
    _, series_pk = cine_study
    with catalog() as session:
        series = session.get(Series, series_pk)
        path = render_preview(session, settings, series)

    count, durations, size, frames = webp_frames(path.read_bytes())

    assert count == 12
    assert sum(durations) == pytest.approx(900, abs=12)
    assert max(durations) - min(durations) <= 1
    # 48 rows × 1.5 mm tall and 40 columns × 1.0 mm wide: 72 mm × 40 mm, drawn at square pixels.
    assert size == (27, 48)
    # The disc is largest at phase 0 (end-diastole) and smallest half a cycle later.
    bright = [float((frame > 128).sum()) for frame in frames]
    assert bright[0] > bright[6] * 1.5


def test_preview_windowed_from_percentiles() -> None:
    frames = np.full((2, 10, 10), 100.0, dtype=np.float32)
    frames[:, 4:6, 4:6] = 900.0
    frames[0, 0, 0] = 1e6  # one hot pixel must not flatten the window

    mapped = window_to_uint8(frames, 1.0, 99.0)

    assert mapped[1, 5, 5] == 255
    assert mapped[1, 0, 1] == 0
    assert mapped.dtype == np.uint8
    assert window_to_uint8(np.zeros((1, 4, 4), np.float32), 1, 99).max() == 0


@pytest.mark.parametrize(
    ("rr", "heart_rate", "trigger_times", "expected"),
    [
        (850.0, None, None, 850.0),
        (None, 75.0, None, 800.0),
        (None, None, [0.0, 40.0, 80.0, 120.0], 160.0),
        (None, None, None, 1000.0),
    ],
)
def test_cycle_length_sources(rr: float | None, heart_rate: float | None, trigger_times: list[float] | None, expected: float) -> None:
    series = Series(rr_interval_ms=rr, heart_rate_bpm=heart_rate, phases=4)
    times = None if trigger_times is None else np.array([trigger_times])

    assert cycle_length_ms(series, times) == pytest.approx(expected)


def test_frame_durations_sum_to_cycle() -> None:
    assert sum(frame_durations_ms(1000.0, 30)) == 1000
    assert frame_durations_ms(1000.0, 1) == [1000]
    assert min(frame_durations_ms(100.0, 25)) == 20  # browsers slow frames of 10 ms or less


def test_display_size_never_enlarges() -> None:
    assert display_size(64, 64, (1.0, 1.0), 192) == (64, 64)
    assert display_size(256, 256, None, 192) == (192, 192)
    assert display_size(200, 100, (1.0, 2.0), 192) == (192, 192)


def test_preview_cache_reused_and_keyed_by_settings(settings: Settings, catalog: sessionmaker[Session], cine_study: tuple[int, int]) -> None:
    _, series_pk = cine_study
    with catalog() as session:
        series = session.get(Series, series_pk)
        first = render_preview(session, settings, series)
        stamp = first.stat().st_mtime_ns
        again = render_preview(session, settings, series)
        again_stamp = again.stat().st_mtime_ns
        smaller = render_preview(session, settings, series, PreviewSettings(max_size_px=32))

    assert again == first
    assert again_stamp == stamp
    assert smaller != first
    assert not first.exists()  # the older key of the same series was removed
    assert webp_frames(smaller.read_bytes())[2] == (18, 32)


def test_preview_key_changes_with_series(settings: Settings, catalog: sessionmaker[Session], cine_study: tuple[int, int]) -> None:
    _, series_pk = cine_study
    with catalog() as session:
        series = session.get(Series, series_pk)
        before = preview_path(settings, series)
        series.phases = 11

        assert preview_path(settings, series) != before


def test_pending_previews_rendered_once(settings: Settings, catalog: sessionmaker[Session], cine_study: tuple[int, int], caplog: pytest.LogCaptureFixture) -> None:
    first, second = BuildSummary("keyword"), BuildSummary("keyword")
    with catalog() as session:
        (broken_pk,) = add_studies(session, [StudySpec(views=("4ch",))])  # series rows without frames

    render_pending_previews(catalog, settings, first, progress=False)
    render_pending_previews(catalog, settings, second, progress=False)

    assert first.previews_rendered == 1
    assert first.preview_failures == 1
    assert second.previews_rendered == 0
    assert second.previews_cached == 1
    assert any("preview of series" in record.message and "failed" in record.message for record in caplog.records)


def test_preview_route_serves_webp(settings: Settings, catalog: sessionmaker[Session], cine_study: tuple[int, int]) -> None:
    _, series_pk = cine_study
    render_pending_previews(catalog, settings, BuildSummary("keyword"), progress=False)
    index_catalog(settings, catalog, KeywordEncoder())
    client = TestClient(create_app(settings, KeywordEncoder()))

    response = client.get(f"/previews/{series_pk}.webp")
    missing = client.get("/previews/999999.webp")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    assert webp_frames(response.content)[0] == 12
    assert missing.status_code == 404
    assert missing.json() == {"detail": "series 999999 is not in the catalog"}
