"""Evaluation of a study encoder: retrieval, zero-shot and few-shot findings, domain shift, real data.

Thresholds for zero-shot findings are fitted on the validation split of the
main archive. They are applied unchanged to its test split and to the
shifted archive. Few-shot supports are drawn from the training split only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from embeddings.data import DEFAULT_SPLIT_FRACTIONS, StudyRecord, load_study_records
from embeddings.fewshot import few_shot_auc
from embeddings.ground_truth import label_matrix
from embeddings.metrics import retrieval_metrics, roc_auc
from embeddings.zeroshot import FindingThresholds, fit_thresholds, score_findings

logger = logging.getLogger(__name__)

SHOTS: tuple[int, ...] = (1, 4, 16)


@dataclass
class EncodedArchive:
    """Study vectors of one catalog, with split, impression and labels per study (rows aligned)."""

    name: str
    records: list[StudyRecord]
    vectors: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def rows(self, split: str | None) -> np.ndarray:
        """Return row indices of a split, or of every study when ``split`` is None."""
        if split is None:
            return np.arange(len(self.records))
        return np.array([i for i, r in enumerate(self.records) if r.split == split], dtype=int)


def encode_archive(
    name: str,
    encoder: Any,
    session: Session,
    seed: int,
    ground_truth: Path | None,
    findings: Sequence[str],
    fractions: tuple[float, float] = DEFAULT_SPLIT_FRACTIONS,
) -> EncodedArchive:
    """Encode every study of a catalog and attach labels and zero-shot scores."""
    records = load_study_records(session, seed, fractions=fractions)
    by_pk = {r.study_pk: r for r in records}
    kept: list[StudyRecord] = []
    vectors: list[np.ndarray] = []
    for study in encoder.encode_studies(session, [r.study_pk for r in records]):
        kept.append(by_pk[study.study_pk])
        vectors.append(study.study)
    logger.info("%s: encoded %d of %d studies", name, len(kept), len(records))
    matrix = np.stack(vectors) if vectors else np.zeros((0, encoder.dimension), dtype=np.float32)
    labels = label_matrix(kept, ground_truth, findings) if ground_truth is not None else {}
    return EncodedArchive(name, kept, matrix, labels, score_findings(encoder, matrix) if len(kept) else {})


def _retrieval(encoder: Any, archive: EncodedArchive, rows: np.ndarray) -> dict[str, float]:
    with_text = [i for i in rows if archive.records[i].impression]
    if len(with_text) < 2:
        return {}
    texts = encoder.encode_text([archive.records[i].impression for i in with_text])
    return retrieval_metrics(texts, archive.vectors[with_text])


def _zero_shot(archive: EncodedArchive, rows: np.ndarray, thresholds: FindingThresholds | None) -> dict[str, dict[str, float]]:
    results = {}
    for name, scores in archive.scores.items():
        labels = archive.labels.get(name)
        if labels is None:
            continue
        known = rows[~np.isnan(labels[rows])]
        truth = labels[known].astype(bool)
        entry: dict[str, float] = {
            "auc": roc_auc(truth, scores[known]),
            "positives": int(truth.sum()),
            "negatives": int((~truth).sum()),
        }
        if thresholds is not None and name in thresholds.findings and len(known):
            predicted = scores[known] >= thresholds.findings[name].threshold
            entry["sensitivity"] = float(predicted[truth].mean()) if truth.any() else float("nan")
            entry["specificity"] = float((~predicted[~truth]).mean()) if (~truth).any() else float("nan")
            entry["accuracy"] = float((predicted == truth).mean())
        results[name] = entry
    return results


def _few_shot(
    support: EncodedArchive, support_rows: np.ndarray, target: EncodedArchive, target_rows: np.ndarray, draws: int, seed: int
) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in support.labels:
        if name not in target.labels:
            continue
        train = support_rows[~np.isnan(support.labels[name][support_rows])]
        test = target_rows[~np.isnan(target.labels[name][target_rows])]
        results[name] = {
            str(k): few_shot_auc(
                support.vectors[train], support.labels[name][train].astype(bool),
                target.vectors[test], target.labels[name][test].astype(bool), k, draws, seed,
            )
            for k in SHOTS
        }
    return results


def fit_validation_thresholds(model_id: str, archive: EncodedArchive) -> FindingThresholds:
    """Fit zero-shot thresholds on the validation split of ``archive``."""
    rows = archive.rows("validation")
    scores, labels = {}, {}
    for name, finding_scores in archive.scores.items():
        if name not in archive.labels:
            continue
        known = rows[~np.isnan(archive.labels[name][rows])]
        scores[name] = finding_scores[known]
        labels[name] = archive.labels[name][known].astype(bool)
    return fit_thresholds(model_id, scores, labels)


def evaluate_encoder(
    encoder: Any,
    main: EncodedArchive,
    shifted: EncodedArchive | None = None,
    real: EncodedArchive | None = None,
    draws: int = 50,
    seed: int = 0,
) -> tuple[dict[str, Any], FindingThresholds]:
    """Compute every metric; returns the JSON-ready result and the thresholds fitted on validation."""
    thresholds = fit_validation_thresholds(encoder.model_id, main)
    train_rows, test_rows = main.rows("train"), main.rows("test")
    result: dict[str, Any] = {
        "model_id": encoder.model_id,
        "trained_on_synthetic_data": bool(encoder.trained_on_synthetic_data),
        "split_sizes": {split: int(len(main.rows(split))) for split in ("train", "validation", "test")},
        "thresholds": {name: vars(t) for name, t in thresholds.findings.items()},
        "test": {
            "retrieval": _retrieval(encoder, main, test_rows),
            "zero_shot": _zero_shot(main, test_rows, thresholds),
            "few_shot": _few_shot(main, train_rows, main, test_rows, draws, seed),
        },
    }
    if shifted is not None:
        all_rows = shifted.rows(None)
        result["shifted"] = {
            "studies": int(len(all_rows)),
            "retrieval": _retrieval(encoder, shifted, all_rows),
            "zero_shot": _zero_shot(shifted, all_rows, thresholds),
            "few_shot": _few_shot(main, train_rows, shifted, all_rows, draws, seed),
        }
    if real is not None:
        result["real"] = real_data_check(real, main, thresholds)
    return result, thresholds


def real_data_check(real: EncodedArchive, main: EncodedArchive, thresholds: FindingThresholds) -> dict[str, Any]:
    """Return LV-dysfunction scores of the real studies next to the phantom test distribution."""
    name = "lv_systolic_dysfunction"
    test_rows = main.rows("test")
    labels = main.labels.get(name)
    scores = main.scores[name]
    threshold = thresholds.findings.get(name)
    summary: dict[str, Any] = {
        "finding": name,
        "real_scores": [float(s) for s in real.scores[name]],
        "real_probabilities": [float(p) for p in threshold.probability(real.scores[name])] if threshold else None,
        "threshold": threshold.threshold if threshold else None,
    }
    if labels is not None:
        for value, key in ((1.0, "phantom_test_positive"), (0.0, "phantom_test_negative")):
            group = scores[test_rows][labels[test_rows] == value]
            summary[key] = {
                "count": int(len(group)),
                "median": float(np.median(group)) if len(group) else None,
                "q25": float(np.percentile(group, 25)) if len(group) else None,
                "q75": float(np.percentile(group, 75)) if len(group) else None,
            }
    if threshold:
        summary["real_called_positive"] = int(np.sum(real.scores[name] >= threshold.threshold))
    return summary
