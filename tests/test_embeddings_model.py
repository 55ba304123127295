"""Towers, checkpoints, the shipped default encoder, zero-shot scoring and metrics."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import select

from embeddings.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from embeddings.clips import VIEW_TYPES
from embeddings.factory import load_encoder
from embeddings.fewshot import few_shot_auc, prototype_scores
from embeddings.metrics import fit_platt, retrieval_metrics, roc_auc, youden_threshold
from embeddings.model import VideoTextModel, load_model_config
from embeddings.video_tower import VideoTower
from embeddings.zeroshot import FindingThresholds, fit_thresholds, load_thresholds, score_findings
from indexer.catalog.models import Series, Study
from indexer.catalog.session import create_catalog_engine, session_factory

FINDINGS = (
    "lv_systolic_dysfunction",
    "lv_dilation",
    "lv_hypertrophy",
    "rv_dilation",
    "rv_dysfunction",
    "regional_wma",
    "lge",
    "pericardial_effusion",
)


@pytest.fixture(scope="module")
def default_encoder():
    return load_encoder("default", device="cpu")


@pytest.fixture(scope="module")
def small_model() -> VideoTextModel:
    torch.manual_seed(0)
    return VideoTextModel(load_model_config("cmr-video-text-small")).eval()


def test_video_tower_ignores_absent_slots() -> None:
    torch.manual_seed(0)
    tower = VideoTower((8, 8, 16, 16), ((1, 2, 2), (2, 2, 2), (2, 2, 2)), output_dim=8).eval()
    clips = torch.rand(2, len(VIEW_TYPES), 8, 32, 32)
    view_types = torch.arange(len(VIEW_TYPES)).expand(2, -1)
    present = torch.zeros(2, len(VIEW_TYPES), dtype=torch.bool)
    present[:, :3] = True  # a SAX-only study, as in the real Sunnybrook data
    with torch.no_grad():
        first = tower(clips, view_types, present)
        clips[:, 3:] = torch.rand(2, len(VIEW_TYPES) - 3, 8, 32, 32)
        second = tower(clips, view_types, present)
    torch.testing.assert_close(first, second)
    assert torch.isfinite(first).all()


def test_video_tower_uses_view_type() -> None:
    torch.manual_seed(0)
    tower = VideoTower((8, 8, 16, 16), ((1, 2, 2), (2, 2, 2), (2, 2, 2)), output_dim=8).eval()
    with torch.no_grad():
        tower.view_embedding.weight.normal_(std=1.0)
    clips = torch.rand(1, len(VIEW_TYPES), 8, 32, 32)
    present = torch.zeros(1, len(VIEW_TYPES), dtype=torch.bool)
    present[0, 0] = True
    with torch.no_grad():
        as_basal = tower(clips, torch.arange(len(VIEW_TYPES)).unsqueeze(0), present)
        relabelled = torch.arange(len(VIEW_TYPES)).unsqueeze(0).clone()
        relabelled[0, 0] = VIEW_TYPES.index("4ch")
        as_four_chamber = tower(clips, relabelled, present)
    assert not torch.allclose(as_basal, as_four_chamber)


def test_checkpoint_round_trip(small_model: VideoTextModel, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    model_id = save_checkpoint(path, small_model, {"trained_on_synthetic_data": True})
    assert re.fullmatch(r"cmr-search-default-0\.1\.0-[0-9a-f]{8}", model_id)
    loaded = load_checkpoint(path)
    assert loaded.model_id == model_id
    assert loaded.metadata["trained_on_synthetic_data"] is True
    texts = ["dilated LV", "normal study"]
    torch.testing.assert_close(loaded.model.encode_text(texts), small_model.encode_text(texts))


def test_checkpoint_id_changes_with_weights(small_model: VideoTextModel, tmp_path: Path) -> None:
    first = save_checkpoint(tmp_path / "a.pt", small_model)
    with torch.no_grad():
        small_model.logit_scale.add_(0.001)
    try:
        second = save_checkpoint(tmp_path / "b.pt", small_model)
    finally:
        with torch.no_grad():
            small_model.logit_scale.sub_(0.001)
    assert first != second


def test_checkpoint_detects_tampering(small_model: VideoTextModel, tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(path, small_model)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["logit_scale"] = payload["state_dict"]["logit_scale"] + 1.0
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="content hash"):
        load_checkpoint(path)


def test_checkpoint_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_default_encoder_identity(default_encoder) -> None:
    assert re.fullmatch(r"cmr-search-default-\d+\.\d+\.\d+-[0-9a-f]{8}", default_encoder.model_id)
    assert default_encoder.dimension == 128
    assert default_encoder.trained_on_synthetic_data is True
    assert [f.name for f in default_encoder.finding_prompts()] == list(FINDINGS)


def test_default_encoder_text_vectors(default_encoder) -> None:
    vectors = default_encoder.encode_text(["dilated LV with reduced EF", "no pericardial effusion"])
    assert vectors.shape == (2, 128)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        load_encoder("no-such-model")


def test_default_encoder_sunnybrook_studies(default_encoder, sunnybrook_catalog) -> None:
    engine = create_catalog_engine(sunnybrook_catalog.settings.database_url)
    with session_factory(engine)() as session:
        study_pks = session.scalars(select(Study.id).order_by(Study.id)).all()
        vectors = default_encoder.encode_studies(session, study_pks)
        cine_series = {s.study_pk: s.id for s in session.scalars(select(Series).where(Series.kind == "cine"))}
    engine.dispose()

    assert len(study_pks) == 8
    assert sorted(v.study_pk for v in vectors) == sorted(cine_series)
    for study in vectors:
        assert study.study.shape == (128,)
        assert np.linalg.norm(study.study) == pytest.approx(1.0, abs=1e-5)
        assert list(study.views) == [cine_series[study.study_pk]]
        assert study.segments["sax_mid"] == "real"
        assert study.segments["4ch"] == "filled"

    scores = score_findings(default_encoder, np.stack([v.study for v in vectors]))
    assert sorted(scores) == sorted(FINDINGS)
    assert all(s.shape == (5,) and np.isfinite(s).all() for s in scores.values())


def test_fitted_thresholds_separate_classes() -> None:
    generator = np.random.default_rng(0)
    labels = np.r_[np.ones(40, bool), np.zeros(60, bool)]
    scores = np.r_[generator.normal(0.2, 0.05, 40), generator.normal(0.0, 0.05, 60)]
    thresholds = fit_thresholds("model-x", {"lge": scores}, {"lge": labels, "lv_dilation": labels})
    lge = thresholds.findings["lge"]
    assert 0.0 < lge.threshold < 0.2
    probabilities = lge.probability(np.array([-0.1, 0.1, 0.3]))
    assert probabilities[0] < 0.1 < 0.9 < probabilities[2]
    assert np.all(np.diff(probabilities) > 0)


def test_thresholds_belong_to_one_model(tmp_path: Path) -> None:
    thresholds = fit_thresholds("model-a", {"lge": np.array([0.0, 1.0, 0.1, 0.9])}, {"lge": np.array([0, 1, 0, 1], bool)})
    path = tmp_path / "thresholds.json"
    path.write_text(thresholds.to_json())
    assert load_thresholds(path, "model-a") == FindingThresholds.from_json(path.read_text())
    assert load_thresholds(path, "model-b") is None


def test_retrieval_metrics_identity_and_reversed() -> None:
    vectors = np.eye(12, dtype=np.float32)
    perfect = retrieval_metrics(vectors, vectors)
    assert perfect["text_to_study_r1"] == 1.0
    assert perfect["study_to_text_median_rank"] == 1.0
    shuffled = retrieval_metrics(vectors, vectors[::-1])
    assert shuffled["text_to_study_r10"] == 0.0


def test_retrieval_ties_count_against_pair() -> None:
    vectors = np.ones((4, 3), dtype=np.float32) / np.sqrt(3)
    assert retrieval_metrics(vectors, vectors)["text_to_study_r1"] == 0.0


def test_roc_auc_known_values() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 0.75
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_youden_and_platt() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1], bool)
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    assert youden_threshold(labels, scores) == pytest.approx(0.6)
    slope, intercept = fit_platt(labels, scores)
    assert slope > 0
    assert 1 / (1 + np.exp(-(slope * 0.45 + intercept))) == pytest.approx(0.5, abs=0.1)


def test_few_shot_prototypes_separate_clusters() -> None:
    generator = np.random.default_rng(0)
    centre_a, centre_b = np.eye(16)[0], np.eye(16)[1]
    train = np.r_[centre_a + generator.normal(0, 0.2, (30, 16)), centre_b + generator.normal(0, 0.2, (30, 16))]
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    labels = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    result = few_shot_auc(train, labels, train, labels, shots=4, draws=10)
    assert result["mean_auc"] > 0.95
    assert prototype_scores(train[:2], np.array([True, False]), train[:1])[0] > 0
    assert np.isnan(few_shot_auc(train, labels, train, labels, shots=31)["mean_auc"])
