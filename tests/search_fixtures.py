"""Shared pytest fixtures of the search tests.

``KeywordEncoder`` is a small deterministic :class:`StudyEncoder` for unit
tests of the index, the filters and the API. It maps each finding to one axis
of the space: a text's vector points along the findings it names, and a
study's vector along the findings its impression names. Tests of ranking
quality with the real model use ``embeddings.factory.load_encoder`` instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from embeddings.encoder import FindingPrompts, StudyVectors
from indexer.catalog.models import Frame, Instance, Patient, ScannedFile, Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database
from phantom.labels import LABEL_NAMES

# The finding names are the phantom ground truth's label keys.
FINDINGS = LABEL_NAMES
KEYWORDS = {
    "lv_systolic_dysfunction": ("reduced ejection fraction", "reduced ef", "systolic dysfunction"),
    "lv_dilation": ("dilated left ventricle", "dilated lv", "lv dilation"),
    "lv_hypertrophy": ("hypertrophy", "hcm"),
    "rv_dilation": ("dilated right ventricle", "rv dilation"),
    "rv_dysfunction": ("rv dysfunction", "right ventricular dysfunction"),
    "regional_wma": ("wall motion abnormality", "wma"),
    "lge": ("late gadolinium enhancement", "lge"),
    "pericardial_effusion": ("pericardial effusion",),
}
DIMENSION = 16


def keyword_vector(text: str, salt: str = "") -> np.ndarray:
    """Return the unit vector of ``text``: one axis per finding it names, plus a small hash-seeded jitter."""
    lowered = text.lower()
    vector = np.zeros(DIMENSION, dtype=np.float32)
    for axis, finding in enumerate(FINDINGS):
        if any(keyword in lowered for keyword in KEYWORDS[finding]):
            vector[axis] = 1.0
    if not vector.any():
        vector[len(FINDINGS)] = 1.0  # "normal" axis
    seed = int.from_bytes(hashlib.sha256((salt + lowered).encode()).digest()[:8], "little")
    vector += np.random.default_rng(seed).normal(scale=0.05, size=DIMENSION).astype(np.float32)
    return vector / np.linalg.norm(vector)


@dataclass
class KeywordEncoder:
    """A deterministic StudyEncoder whose study vectors come from the impression text."""

    model_id: str = "keyword-test-1.0-0000"
    dimension: int = DIMENSION
    trained_on_synthetic_data: bool = True
    encoded: list[int] = field(default_factory=list)
    fail_on: set[int] = field(default_factory=set)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([keyword_vector(text) for text in texts])

    def encode_studies(self, session: Session, study_pks: Sequence[int]) -> list[StudyVectors]:
        results = []
        for study_pk in study_pks:
            if study_pk in self.fail_on:
                raise RuntimeError(f"simulated failure on study {study_pk}")
            study = session.get(Study, study_pk)
            cine = [series for series in study.series if series.kind == "cine"]
            if not cine:
                continue
            self.encoded.append(study_pk)
            vector = keyword_vector(study.impression or "", salt=str(study_pk))
            views = {series.id: keyword_vector(series.view, salt=str(series.id)) for series in cine}
            results.append(StudyVectors(study_pk, vector, views, {"sax": "real"}))
        return results

    def finding_prompts(self) -> Sequence[FindingPrompts]:
        return [FindingPrompts(name, name.replace("_", " "), (KEYWORDS[name][0],)) for name in FINDINGS]


@dataclass(frozen=True)
class StudySpec:
    """One synthetic catalog study for the search tests."""

    findings: tuple[str, ...] = ()
    sex: str = "F"
    age_years: float = 50.0
    study_date: dt.date = dt.date(2024, 1, 1)
    field_strength_t: float = 1.5
    manufacturer: str = "SIEMENS"
    views: tuple[str, ...] = ("sax", "4ch")


def impression_of(findings: Sequence[str]) -> str:
    """Return an impression sentence that names ``findings`` by their first keyword."""
    if not findings:
        return "Normal cardiac MRI."
    return "Findings: " + "; ".join(KEYWORDS[finding][0] for finding in findings) + "."


def add_studies(session: Session, specs: Sequence[StudySpec]) -> list[int]:
    """Insert one patient, study and series rows per spec (no frames) and return the study keys."""
    study_pks = []
    first = session.scalar(select(func.count()).select_from(Study)) or 0
    for number, spec in enumerate(specs, start=first):
        patient = Patient(patient_id=f"TEST^{number:06d}", sex=spec.sex)
        study = Study(
            study_instance_uid=f"1.2.826.0.1.3680043.10.999.{number}",
            patient=patient,
            accession_number=f"ACC{number:06d}",
            study_date=spec.study_date,
            age_years=spec.age_years,
            sex=spec.sex,
            manufacturer=spec.manufacturer,
            field_strength_t=spec.field_strength_t,
            impression=impression_of(spec.findings),
            report_text="FINDINGS: see impression.\nIMPRESSION: " + impression_of(spec.findings),
        )
        for series_number, view in enumerate(spec.views, start=1):
            study.series.append(_series_row(view, series_number))
        session.add(study)
        session.flush()
        study_pks.append(study.id)
    session.commit()
    return study_pks


def _series_row(view: str, series_number: int, kind: str = "cine", slices: int = 1, phases: int = 20) -> Series:
    return Series(
        group_key=f"{kind}-{view}-{series_number}",
        series_instance_uids=[f"1.2.826.0.1.3680043.10.998.{series_number}"],
        series_number=series_number,
        series_description=f"{view} cine",
        kind=kind,
        kind_rule="test",
        view=view,
        view_rule="test",
        order_rule="test",
        slices=slices if view != "sax" else 8,
        phases=phases,
        rows=64,
        columns=64,
        complete=True,
        problems=[],
    )


@pytest.fixture
def catalog(settings: Settings) -> sessionmaker[Session]:
    """A migrated, empty SQLite catalog of ``settings``; returns its session factory."""
    upgrade_database(settings.database_url)
    return session_factory(create_catalog_engine(settings.database_url))


def write_cine_dicom(
    folder: Path,
    session: Session,
    study: Study,
    *,
    slices: int = 3,
    phases: int = 12,
    rows: int = 48,
    columns: int = 40,
    pixel_spacing: tuple[float, float] = (1.5, 1.5),
    rr_interval_ms: float | None = 900.0,
    view: str = "sax",
) -> Series:
    """Write a real single-frame MR cine series to ``folder`` and catalog it under ``study``.

    Pixel values are a disc whose radius follows the phase (a beating
    ventricle) on a dim background, so windowing and frame order are checkable.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series = _series_row(view, len(study.series) + 1)
    series.slices, series.phases, series.rows, series.columns = slices, phases, rows, columns
    series.pixel_spacing_mm = list(pixel_spacing)
    series.rr_interval_ms = rr_interval_ms
    study.series.append(series)
    session.flush()

    yy, xx = np.mgrid[:rows, :columns]
    for slice_index in range(slices):
        for phase in range(phases):
            radius = 6 + 6 * (1 + np.cos(2 * np.pi * phase / phases)) / 2 + slice_index
            image = np.where((yy - rows / 2) ** 2 + (xx - columns / 2) ** 2 < radius**2, 800, 100).astype(np.uint16)
            path = folder / f"s{series.id}_{slice_index}_{phase}.dcm"
            sop_uid = generate_uid()
            _write_mr_image(path, image, sop_uid, study.study_instance_uid, pixel_spacing, phase * 40.0)
            scanned = ScannedFile(path=str(path), size_bytes=path.stat().st_size, mtime_ns=path.stat().st_mtime_ns, status="dicom")
            session.add(scanned)
            session.flush()
            instance = Instance(sop_instance_uid=sop_uid, study_pk=study.id, file_pk=scanned.id, header={"RescaleSlope": 1.0})
            session.add(instance)
            session.flush()
            session.add(
                Frame(series_pk=series.id, slice_index=slice_index, phase_index=phase, instance_pk=instance.id, trigger_time_ms=phase * 40.0)
            )
    session.commit()
    return series


def _write_mr_image(path: Path, image: np.ndarray, sop_uid: str, study_uid: str, spacing: tuple[float, float], trigger_ms: float) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = MRImageStorage
    dataset.SOPInstanceUID = sop_uid
    dataset.StudyInstanceUID = study_uid
    dataset.Modality = "MR"
    dataset.Rows, dataset.Columns = image.shape
    dataset.PixelSpacing = [str(value) for value in spacing]
    dataset.TriggerTime = str(trigger_ms)
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 0
    dataset.PixelData = image.tobytes()
    dataset.save_as(path, enforce_file_format=True)


def keyword_finding_scores(vector: np.ndarray) -> list[tuple[str, float, float | None]]:
    """Finding scores of the keyword encoder: the vector's component on each finding axis."""
    return [(name, float(vector[axis]), float(vector[axis] > 0.5)) for axis, name in enumerate(FINDINGS)]


def embed_with_keyword_encoder(sessions: sessionmaker[Session], encoder: KeywordEncoder) -> int:
    """Store vectors and finding scores of every catalogued study, as the build stage does; return the count."""
    from search_app.build import pending_study_pks, store_study_vectors

    with sessions() as session:
        pending = pending_study_pks(session, encoder.model_id)
        vectors = encoder.encode_studies(session, pending)
        for item in vectors:
            store_study_vectors(session, encoder, item, keyword_finding_scores(item.study))
        session.commit()
    return len(vectors)


def index_catalog(settings: Settings, sessions: sessionmaker[Session], encoder: KeywordEncoder, **config: int) -> None:
    """Embed pending studies with ``encoder`` and rebuild its index from the catalog."""
    from search_app.index_store import rebuild_index
    from search_app.vector_index import IndexConfig

    embed_with_keyword_encoder(sessions, encoder)
    with sessions() as session:
        rebuild_index(settings, session, encoder.model_id, encoder.dimension, IndexConfig(**config))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def module_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings over one migrated catalog shared by a test module, on SQLite or PostgreSQL.

    Module scope keeps read-only search tests fast: the catalog is filled
    once per module and database. Tests that change rows use ``settings``.
    """
    data_dir = tmp_path_factory.mktemp("search-module")
    if request.param == "sqlite":
        resolved = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
        resolved.ensure_dirs()
        upgrade_database(resolved.database_url)
        yield resolved
        return

    admin_url = os.environ.get("CMR_SEARCH_TEST_PG_URL")
    if not admin_url:
        if os.environ.get("CI"):
            raise RuntimeError("CMR_SEARCH_TEST_PG_URL is not set; .ci/run starts PostgreSQL and sets it")
        pytest.skip("CMR_SEARCH_TEST_PG_URL is not set")
    name = f"cmr_search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        resolved = Settings(data_dir=data_dir, database_url=make_url(admin_url).set(database=name).render_as_string(hide_password=False))
        resolved.ensure_dirs()
        upgrade_database(resolved.database_url)
        yield resolved
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
