"""Tests of the CMR-CLIP StudyEncoder, site thresholds and the factory branch, on a real catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from pydicom.uid import generate_uid
from typer.testing import CliRunner

from cmr_search.cli import app
from embeddings.cmrclip.calibration import SiteLabelError, fit_thresholds_from_catalog, read_site_labels
from embeddings.cmrclip.checkpoint import save_checkpoint
from embeddings.cmrclip.config import CMRCLIPConfig, TextTowerConfig, VideoTowerConfig
from embeddings.cmrclip.encoder import THRESHOLDS_FILE, CMRCLIPEncoder, load_cmrclip_encoder, model_id_for
from embeddings.cmrclip.model import CMRCLIP
from embeddings.cmrclip.prompts import (
    CMRCLIP_FINDINGS,
    FINDING_NAMES,
    MIN_LABELLED_PER_CLASS,
    balanced_threshold,
    fit_finding_threshold,
    fit_site_thresholds,
)
from embeddings.cmrclip.study_input import FILLED, REAL, SEGMENTS, build_study_video
from embeddings.cmrclip.tokenizer import load_tokenizer
from embeddings.factory import load_encoder
from embeddings.metrics import youden_threshold
from embeddings.zeroshot import FindingThresholds
from indexer.catalog.models import Study, StudyEmbedding
from indexer.catalog.session import upgrade_database
from tests.test_cmrclip_study_input import (
    APEX_LAST_ORIENTATION,
    CatalogBuilder,
    add_full_study,
    open_catalog,
    beating_cine,
    single_image,
)
from tests.test_cmrclip_text import write_vocabulary

SMALL = CMRCLIPConfig(
    video=VideoTowerConfig(width=32, depth=1, heads=2, max_frames=8),
    text=TextTowerConfig(vocab_size=300, hidden_size=32, layers=1, heads=2, intermediate_size=64),
    embed_dim=16,
    frames_per_study=8,
)


def small_model(seed: int = 0) -> CMRCLIP:
    torch.manual_seed(seed)
    return CMRCLIP(SMALL).eval()


@pytest.fixture
def vocabulary(tmp_path: Path) -> Path:
    return write_vocabulary(tmp_path / "tokenizer", size=SMALL.text.vocab_size)


@pytest.fixture
def encoder(vocabulary: Path) -> CMRCLIPEncoder:
    return CMRCLIPEncoder(small_model(), "ab" * 32, load_tokenizer(vocabulary, SMALL.text), device="cpu")


@pytest.fixture
def catalog(tmp_path: Path, sqlite_url: str) -> Iterator[CatalogBuilder]:
    with open_catalog(sqlite_url, tmp_path) as builder:
        yield builder


def add_study(catalog: CatalogBuilder, accession: str) -> CatalogBuilder:
    study = Study(study_instance_uid=generate_uid(), patient=catalog.study.patient, accession_number=accession)
    catalog.session.add(study)
    catalog.session.flush()
    return CatalogBuilder(catalog.session, catalog.folder, study)


def test_encode_studies_records_segments(catalog: CatalogBuilder, encoder: CMRCLIPEncoder) -> None:
    add_full_study(catalog)
    sax_only = add_study(catalog, "ACC-1")
    sax_only.add_series("cine", "sax", beating_cine(4, 20, 30, 30), APEX_LAST_ORIENTATION)
    lge_only = add_study(catalog, "ACC-2")
    lge_only.add_series("lge", "4ch", single_image(30, 30))

    results = encoder.encode_studies(catalog.session, [catalog.study.id, sax_only.study.id, lge_only.study.id])

    assert [result.study_pk for result in results] == [catalog.study.id, sax_only.study.id]
    assert results[0].segments == {name: REAL for name in SEGMENTS}
    assert results[1].segments["cine_sax"] == REAL
    assert results[1].segments["lge_sax"] == FILLED
    for result in results:
        assert result.study.shape == (16,)
        assert result.study.dtype == np.float32
        assert np.linalg.norm(result.study) == pytest.approx(1.0, abs=1e-5)
        assert result.views == {}


def test_study_vector_equals_model_output(catalog: CatalogBuilder, encoder: CMRCLIPEncoder) -> None:
    add_full_study(catalog)

    [result] = encoder.encode_studies(catalog.session, [catalog.study.id])

    video = build_study_video(catalog.session, catalog.study.id, SMALL.frames_per_study)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(encoder.model.encode_video(video.frames[None]), dim=-1)[0]
    assert np.allclose(result.study, expected.numpy(), atol=1e-5)


def test_batched_studies_match_single(catalog: CatalogBuilder, vocabulary: Path) -> None:
    add_full_study(catalog)
    other = add_study(catalog, "ACC-1")
    other.add_series("cine", "sax", beating_cine(4, 20, 30, 30), APEX_LAST_ORIENTATION)
    tokenizer = load_tokenizer(vocabulary, SMALL.text)
    single = CMRCLIPEncoder(small_model(), "ab" * 32, tokenizer, device="cpu", study_batch_size=1)
    batched = CMRCLIPEncoder(small_model(), "ab" * 32, tokenizer, device="cpu", study_batch_size=2)
    study_pks = [catalog.study.id, other.study.id]

    one_by_one = single.encode_studies(catalog.session, study_pks)
    together = batched.encode_studies(catalog.session, study_pks)

    for alone, batch in zip(one_by_one, together, strict=True):
        assert np.allclose(alone.study, batch.study, atol=1e-5)


def test_encode_text_unit_and_case_blind(encoder: CMRCLIPEncoder) -> None:
    vectors = encoder.encode_text(["Dilated LV", "dilated lv", "normal left ventricle"])

    assert vectors.shape == (3, 16)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[1])
    assert not np.allclose(vectors[0], vectors[2])
    assert encoder.encode_text([]).shape == (0, 16)


def test_finding_prompts_are_published_seven(encoder: CMRCLIPEncoder) -> None:
    findings = encoder.finding_prompts()

    assert [finding.name for finding in findings] == list(FINDING_NAMES)
    assert len(findings) == 7
    assert all(finding.negative == () for finding in findings)
    assert sum(len(finding.positive) for finding in findings) == 15
    assert encoder.trained_on_synthetic_data is False


def test_scores_only_without_thresholds(encoder: CMRCLIPEncoder) -> None:
    assert encoder.thresholds is None
    assert encoder.finding_probability("lv_dilation", 0.3) is None


def test_from_files_sets_model_id_and_thresholds(tmp_path: Path, vocabulary: Path) -> None:
    weights = tmp_path / "weights" / "pytorch_model.bin"
    weights.parent.mkdir()
    save_checkpoint(small_model(), weights, legacy_position_ids=True)

    first = CMRCLIPEncoder.from_files(weights, vocabulary, device="cpu", config=SMALL)
    save_checkpoint(small_model(seed=1), weights)
    second = CMRCLIPEncoder.from_files(weights, vocabulary, device="cpu", config=SMALL)

    assert first.model_id.startswith("cmrclip-vitb16-")
    assert len(first.model_id) == len("cmrclip-vitb16-") + 16
    assert first.model_id != second.model_id
    assert first.thresholds is None

    fitted = FindingThresholds(second.model_id, {"lv_dilation": fit_finding_threshold(*separable_labels())})
    (weights.parent / THRESHOLDS_FILE).write_text(fitted.to_json(), encoding="utf-8")
    reloaded = CMRCLIPEncoder.from_files(weights, vocabulary, device="cpu", config=SMALL)
    assert reloaded.thresholds is not None
    assert reloaded.finding_probability("lv_dilation", 0.9) > 0.5
    assert reloaded.finding_probability("rv_dilation", 0.9) is None


def test_factory_requires_weights_and_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs --weights"):
        load_encoder("cmrclip", weights=tmp_path / "pytorch_model.bin", tokenizer=None)
    with pytest.raises(ValueError, match="needs --weights"):
        load_cmrclip_encoder(None, tmp_path)


def test_factory_rejects_wrong_layout(tmp_path: Path, vocabulary: Path) -> None:
    weights = tmp_path / "pytorch_model.bin"
    save_checkpoint(small_model(), weights)
    full_vocabulary = write_vocabulary(tmp_path / "full-vocab")

    from embeddings.cmrclip.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="missing keys"):
        load_encoder("cmrclip", weights=weights, tokenizer=full_vocabulary, device="cpu")


def separable_labels() -> tuple[np.ndarray, np.ndarray]:
    """Twenty studies: higher scores for positives, with two overlapping pairs."""
    scores = np.linspace(0.1, 0.6, 20)
    labels = scores > 0.35
    labels[[8, 12]] = ~labels[[8, 12]]
    return labels, scores


def test_balanced_threshold_differs_from_youden() -> None:
    labels = np.array([0] * 10 + [1] * 4, dtype=bool)
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.81, 0.82, 0.55, 0.83, 0.84, 0.85])

    balanced = balanced_threshold(labels, scores)

    # At 0.81 sensitivity is 0.75 and specificity 0.8; Youden's J prefers 0.83 (0.75 and 1.0).
    assert balanced == pytest.approx(0.81)
    assert youden_threshold(labels, scores) == pytest.approx(0.83)


def test_probability_crosses_half_at_threshold() -> None:
    labels, scores = separable_labels()

    fitted = fit_finding_threshold(labels, scores)

    assert fitted.slope > 0
    assert fitted.probability(np.array([fitted.threshold]))[0] == pytest.approx(0.5)
    assert fitted.probability(np.array([fitted.threshold + 0.05]))[0] > 0.5
    assert fitted.probability(np.array([fitted.threshold - 0.05]))[0] < 0.5
    assert fitted.validation_positives == int(labels.sum())


def test_too_few_labels_give_no_threshold() -> None:
    labels, scores = separable_labels()
    few = np.array([True] * (MIN_LABELLED_PER_CLASS - 1) + [False] * 10)

    fitted = fit_site_thresholds(
        "model", {"lv_dilation": scores, "rv_dilation": scores[: len(few)]}, {"lv_dilation": labels, "rv_dilation": few}
    )

    assert set(fitted.findings) == {"lv_dilation"}
    assert fitted.model_id == "model"


def write_labels(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["accession_number,finding,present"] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_site_labels_map_to_catalog_ids(catalog: CatalogBuilder, tmp_path: Path) -> None:
    other = add_study(catalog, "ACC-1")
    path = write_labels(
        tmp_path / "labels.csv",
        [("ACC-0", "lv_dilation", "1"), ("ACC-1", "lv_dilation", "no"), ("ACC-9", "lv_dilation", "1")],
    )

    labels = read_site_labels(catalog.session, path)

    assert labels == {"lv_dilation": {catalog.study.id: True, other.study.id: False}}


@pytest.mark.parametrize(
    ("row", "message"),
    [(("ACC-0", "dilated", "1"), "row 2: unknown finding 'dilated'"), (("ACC-0", "lv_dilation", "maybe"), "row 2: present is 'maybe'")],
)
def test_invalid_label_rows_raise(catalog: CatalogBuilder, tmp_path: Path, row: tuple[str, str, str], message: str) -> None:
    path = write_labels(tmp_path / "labels.csv", [row])

    with pytest.raises(SiteLabelError, match=message):
        read_site_labels(catalog.session, path)


def test_label_file_needs_study_column(catalog: CatalogBuilder, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("patient,finding,present\nx,lv_dilation,1\n", encoding="utf-8")

    with pytest.raises(SiteLabelError, match="needs the columns"):
        read_site_labels(catalog.session, path)


def add_labelled_vectors(catalog: CatalogBuilder, encoder: CMRCLIPEncoder, count: int) -> dict[int, bool]:
    """Store study vectors that lean towards the lv_dilation prompts for the positive half."""
    [direction] = encoder.encode_text([" ".join(CMRCLIP_FINDINGS[2].positive)])
    generator = np.random.default_rng(0)
    labels = {}
    for index in range(count):
        builder = add_study(catalog, f"ACC-{index + 10}")
        present = index % 2 == 0
        vector = generator.normal(size=16) + (3.0 if present else -3.0) * direction
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)
        catalog.session.add(
            StudyEmbedding(study_pk=builder.study.id, model_id=encoder.model_id, vector=vector.tobytes(), dimension=16)
        )
        labels[builder.study.id] = present
    catalog.session.flush()
    return labels


def test_thresholds_fitted_from_stored_vectors(database_url: str, tmp_path: Path, encoder: CMRCLIPEncoder) -> None:
    with open_catalog(database_url, tmp_path) as catalog:
        labels = add_labelled_vectors(catalog, encoder, 16)
        catalog.session.commit()

        thresholds = fit_thresholds_from_catalog(catalog.session, encoder, {"lv_dilation": labels})

    fitted = thresholds.findings["lv_dilation"]
    assert thresholds.model_id == encoder.model_id
    assert fitted.validation_positives == 8
    assert fitted.validation_negatives == 8
    assert fitted.slope > 0


def test_thresholds_command_writes_file(tmp_path: Path, vocabulary: Path, sqlite_url: str) -> None:
    weights = tmp_path / "model" / "pytorch_model.bin"
    weights.parent.mkdir(parents=True)
    save_checkpoint(small_model(), weights)
    labels_path = write_labels(tmp_path / "labels.csv", [("ACC-0", "lv_dilation", "1")])
    upgrade_database(sqlite_url)

    # The command builds the published configuration, which these small weights do not match.
    result = CliRunner().invoke(
        app,
        ["cmrclip-thresholds", "--weights", str(weights), "--tokenizer", str(vocabulary), "--labels", str(labels_path),
         "--database-url", sqlite_url],
    )

    assert result.exit_code == 2
    assert not (weights.parent / THRESHOLDS_FILE).exists()


def test_thresholds_command_fits_site_labels(
    catalog: CatalogBuilder, encoder: CMRCLIPEncoder, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = add_labelled_vectors(catalog, encoder, 12)
    accessions = {study.id: study.accession_number for study in catalog.session.query(Study)}
    rows = [(accessions[pk], "lv_dilation", "1" if present else "0") for pk, present in labels.items()]
    labels_path = write_labels(tmp_path / "labels.csv", rows)
    catalog.session.commit()
    weights = tmp_path / "model" / "pytorch_model.bin"
    weights.parent.mkdir()
    monkeypatch.setattr("embeddings.cmrclip.encoder.load_cmrclip_encoder", lambda *args, **kwargs: encoder)

    result = CliRunner().invoke(
        app,
        ["cmrclip-thresholds", "--weights", str(weights), "--tokenizer", str(tmp_path), "--labels", str(labels_path),
         "--database-url", sqlite_url],
    )

    assert result.exit_code == 0, result.output
    stored = FindingThresholds.from_json((weights.parent / THRESHOLDS_FILE).read_text(encoding="utf-8"))
    assert stored.model_id == encoder.model_id
    assert set(stored.findings) == {"lv_dilation"}
    assert stored.findings["lv_dilation"].validation_positives == 6


def test_model_id_uses_weight_digest() -> None:
    assert model_id_for("0123456789abcdef" * 4) == "cmrclip-vitb16-0123456789abcdef"
