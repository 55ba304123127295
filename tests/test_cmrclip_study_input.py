"""Tests of the CMR-CLIP study video, on DICOM files in a real SQLite catalog."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from sqlalchemy.orm import Session

from embeddings.cmrclip.study_input import (
    FILLED,
    REAL,
    SEGMENTS,
    StudyInputError,
    assemble_video,
    build_study_video,
    sample_frame_indices,
    segment_lengths,
)
from indexer.catalog.models import Frame, Instance, Patient, ScannedFile, Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database

SIZE = 64  # pixels of the test images; the video resizes them to 224
# Row × column cosine gives (0, 0, -1), which points towards the apex, so catalog slice 0 is basal.
APEX_LAST_ORIENTATION = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
APEX_FIRST_ORIENTATION = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@dataclass
class CatalogBuilder:
    """Writes single-frame MR DICOM files and the catalog rows that point at them."""

    session: Session
    folder: Path
    study: Study

    def add_series(
        self, kind: str, view: str, images: np.ndarray, orientation: list[float] | None = None, complete: bool = True
    ) -> Series:
        """Add a series from ``images`` (slices, phases, rows, cols) of non-negative integers."""
        slices, phases = images.shape[:2]
        series = Series(
            study=self.study,
            group_key=f"{kind}-{view}-{len(self.study.series)}",
            series_instance_uids=[],
            kind=kind,
            kind_rule="test",
            view=view,
            view_rule="test",
            slices=slices,
            phases=phases,
            rows=images.shape[2],
            columns=images.shape[3],
            pixel_spacing_mm=[1.5, 1.5],
            image_orientation=orientation,
            complete=complete,
            problems=[],
        )
        self.session.add(series)
        self.session.flush()
        for slice_index in range(slices):
            for phase in range(phases):
                path = self.folder / f"series{series.id}-{slice_index}-{phase}.dcm"
                instance = self._write_instance(path, images[slice_index, phase])
                self.session.add(
                    Frame(
                        series_pk=series.id,
                        slice_index=slice_index,
                        phase_index=phase,
                        instance_pk=instance.id,
                        frame_number=1,
                        trigger_time_ms=40.0 * phase,
                    )
                )
        self.session.flush()
        return series

    def _write_instance(self, path: Path, pixels: np.ndarray) -> Instance:
        uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset = pydicom.Dataset()
        dataset.file_meta = meta
        dataset.SOPClassUID = MRImageStorage
        dataset.SOPInstanceUID = uid
        dataset.Rows, dataset.Columns = pixels.shape
        dataset.SamplesPerPixel = 1
        dataset.PhotometricInterpretation = "MONOCHROME2"
        dataset.BitsAllocated = 16
        dataset.BitsStored = 16
        dataset.HighBit = 15
        dataset.PixelRepresentation = 0
        dataset.PixelData = pixels.astype(np.uint16).tobytes()
        dataset.save_as(path, enforce_file_format=True)

        stat = path.stat()
        scanned = ScannedFile(path=str(path), size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns, status="dicom")
        self.session.add(scanned)
        self.session.flush()
        instance = Instance(sop_instance_uid=uid, study_pk=self.study.id, file_pk=scanned.id, header={})
        self.session.add(instance)
        self.session.flush()
        return instance


def square_image(row: int, column: int, half_width: int, value: float) -> np.ndarray:
    """A dark image with a bright square centred at (row, column)."""
    image = np.full((SIZE, SIZE), 10.0)
    image[row - half_width : row + half_width, column - half_width : column + half_width] = value
    return image


def beating_cine(slices: int, phases: int, row: int, column: int) -> np.ndarray:
    """A cine whose bright square shrinks and grows once over the cycle."""
    cine = np.zeros((slices, phases, SIZE, SIZE))
    for phase in range(phases):
        half_width = 6 + round(4 * np.cos(2 * np.pi * phase / phases))
        cine[:, phase] = square_image(row, column, half_width, 1000.0)
    return cine


def lge_stack(slices: int) -> np.ndarray:
    """An LGE stack whose square gets brighter from slice 0 to the last slice."""
    return np.stack([square_image(32, 32, 10, 200.0 * (index + 1))[np.newaxis] for index in range(slices)])


def single_image(row: int, column: int) -> np.ndarray:
    return square_image(row, column, 8, 800.0)[np.newaxis, np.newaxis]


@contextmanager
def open_catalog(database_url: str, folder: Path) -> Iterator[CatalogBuilder]:
    """An empty study in a migrated catalog, with a folder for its DICOM files."""
    upgrade_database(database_url)
    engine = create_catalog_engine(database_url)
    try:
        with session_factory(engine)() as session:
            patient = Patient(patient_id="TEST-0001")
            study = Study(study_instance_uid=generate_uid(), patient=patient, accession_number="ACC-0")
            session.add_all([patient, study])
            session.flush()
            yield CatalogBuilder(session, folder, study)
    finally:
        engine.dispose()


@pytest.fixture
def catalog(tmp_path: Path, sqlite_url: str) -> Iterator[CatalogBuilder]:
    """An empty study in a migrated SQLite catalog."""
    with open_catalog(sqlite_url, tmp_path) as builder:
        yield builder


def add_full_study(catalog: CatalogBuilder, lge_slices: int = 12, orientation: list[float] = APEX_LAST_ORIENTATION) -> None:
    catalog.add_series("cine", "4ch", beating_cine(1, 20, 20, 20))
    catalog.add_series("cine", "sax", beating_cine(3, 25, 44, 44), orientation)
    catalog.add_series("lge", "sax", lge_stack(lge_slices), orientation)
    catalog.add_series("lge", "4ch", single_image(16, 48))
    catalog.add_series("lge", "2ch", single_image(48, 16))
    catalog.add_series("lge", "3ch", single_image(48, 48))


def segment_frames(video, name: str) -> torch.Tensor:  # noqa: ANN001 - StudyVideo
    rows = [row for row, segment in enumerate(video.frame_segments) if segment == name]
    return video.frames[rows]


@pytest.mark.parametrize(
    ("lge_slices", "expected"),
    [(10, [20, 19, 6, 7, 6, 6]), (12, [18, 18, 7, 7, 7, 7]), (15, [16, 16, 8, 8, 8, 8])],
)
def test_sampling_matches_published_counts(lge_slices: int, expected: list[int]) -> None:
    lengths = segment_lengths(lge_slices)
    labels = [name for name in SEGMENTS for _ in range(lengths[name])]

    counts = Counter(labels[index] for index in sample_frame_indices(len(labels), 64))

    assert len(labels) == 60 + 4 * lge_slices
    assert [counts[name] for name in SEGMENTS] == expected


def test_sampling_short_video_takes_every_frame() -> None:
    assert sample_frame_indices(5, 64).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="length 0"):
        sample_frame_indices(0, 64)


def test_full_study_has_every_segment_real(catalog: CatalogBuilder) -> None:
    add_full_study(catalog)

    video = build_study_video(catalog.session, catalog.study.id)

    assert video.frames.shape == (64, 3, 224, 224)
    assert video.frames.dtype == torch.float32
    assert video.segments == {name: REAL for name in SEGMENTS}
    assert video.source_length == 108
    assert [video.frame_segments.count(name) for name in SEGMENTS] == [18, 18, 7, 7, 7, 7]
    assert set(video.series_pks) == set(SEGMENTS)
    assert video.real_frames == 64


def test_full_study_on_sqlite_and_postgresql(database_url: str, tmp_path: Path) -> None:
    with open_catalog(database_url, tmp_path) as catalog:
        add_full_study(catalog)
        catalog.session.commit()

        video = build_study_video(catalog.session, catalog.study.id)

    assert video.segments == {name: REAL for name in SEGMENTS}
    assert [video.frame_segments.count(name) for name in SEGMENTS] == [18, 18, 7, 7, 7, 7]


def test_frames_are_grey_in_three_channels(catalog: CatalogBuilder) -> None:
    add_full_study(catalog)

    video = build_study_video(catalog.session, catalog.study.id)

    # Undo the ImageNet normalisation per channel: the three channels must be the same grey image.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    grey = video.frames * std + mean
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5)
    assert torch.allclose(grey[:, 0], grey[:, 2], atol=1e-5)
    assert grey.min() >= -1e-5
    assert grey.max() <= 1 + 1e-5


def test_cine_segment_moves_and_lge_repeats(catalog: CatalogBuilder) -> None:
    add_full_study(catalog)

    video = build_study_video(catalog.session, catalog.study.id)

    cine = segment_frames(video, "cine_sax")
    two_chamber = segment_frames(video, "lge_2ch")
    three_chamber = segment_frames(video, "lge_3ch")
    assert cine.std(dim=0).max() > 0.5
    assert torch.equal(two_chamber, two_chamber[:1].expand_as(two_chamber))
    assert not torch.allclose(two_chamber[0], three_chamber[0])


@pytest.mark.parametrize(("orientation", "increasing"), [(APEX_LAST_ORIENTATION, True), (APEX_FIRST_ORIENTATION, False)])
def test_lge_stack_runs_base_to_apex(catalog: CatalogBuilder, orientation: list[float], increasing: bool) -> None:
    add_full_study(catalog, orientation=orientation)

    video = build_study_video(catalog.session, catalog.study.id)

    brightness = segment_frames(video, "lge_sax").mean(dim=(1, 2, 3))
    steps = brightness.diff()
    assert bool((steps > 0).all()) is increasing
    assert bool((steps < 0).all()) is not increasing


def test_sax_only_study_fills_other_segments(catalog: CatalogBuilder) -> None:
    catalog.add_series("cine", "sax", beating_cine(5, 20, 30, 30), APEX_LAST_ORIENTATION)

    video = build_study_video(catalog.session, catalog.study.id)

    assert video.segments["cine_sax"] == REAL
    assert [video.segments[name] for name in SEGMENTS if name != "cine_sax"] == [FILLED] * 5
    assert video.source_length == 60 + 4 * 12
    filled_rows = [row for row, name in enumerate(video.frame_segments) if name != "cine_sax"]
    assert torch.count_nonzero(video.frames[filled_rows]) == 0
    assert torch.count_nonzero(segment_frames(video, "cine_sax")) > 0
    assert video.real_frames == 18


def test_lge_stack_length_sets_video_length(catalog: CatalogBuilder) -> None:
    add_full_study(catalog, lge_slices=15)

    video = build_study_video(catalog.session, catalog.study.id)

    assert video.source_length == 120
    assert video.frame_segments.count("lge_sax") == 8


def test_incomplete_and_scout_series_ignored(catalog: CatalogBuilder) -> None:
    catalog.add_series("cine", "sax", beating_cine(3, 20, 30, 30), APEX_LAST_ORIENTATION, complete=False)
    catalog.add_series("scout", "other", beating_cine(1, 1, 30, 30))

    with pytest.raises(StudyInputError, match=f"study {catalog.study.id} has no complete short- or long-axis cine"):
        build_study_video(catalog.session, catalog.study.id)


def test_preferred_long_axis_view_chosen(catalog: CatalogBuilder) -> None:
    two_chamber = catalog.add_series("cine", "2ch", beating_cine(1, 20, 20, 20))
    four_chamber = catalog.add_series("cine", "4ch", beating_cine(1, 20, 40, 40))

    video = build_study_video(catalog.session, catalog.study.id)

    assert video.series_pks["cine_lax"] == four_chamber.id
    assert video.series_pks["cine_lax"] != two_chamber.id
    assert video.segments["cine_sax"] == FILLED


def test_unknown_segment_name_rejected() -> None:
    with pytest.raises(ValueError, match="unknown segments"):
        assemble_video({"cine_4ch": np.zeros((30, 224, 224), dtype=np.uint8)})


def test_sunnybrook_study_has_real_short_axis(sunnybrook_catalog) -> None:  # noqa: ANN001 - ScannedArchive
    engine = create_catalog_engine(sunnybrook_catalog.settings.database_url)
    with session_factory(engine)() as session:
        cine_studies = sorted({series.study_pk for series in session.query(Series).filter_by(kind="cine", view="sax")})
        video = build_study_video(session, cine_studies[0])
    engine.dispose()

    assert len(cine_studies) == 5
    assert video.segments["cine_sax"] == REAL
    assert video.segments["cine_lax"] == FILLED
    assert video.segments["lge_sax"] == FILLED
    cine = segment_frames(video, "cine_sax")
    assert cine.shape == (18, 3, 224, 224)
    assert cine.std() > 0.3
    assert cine.std(dim=0).mean() > 0.01  # the heart moves between sampled phases
