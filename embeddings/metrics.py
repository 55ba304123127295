"""Retrieval and classification metrics on embeddings and scores."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

RECALL_KS: tuple[int, ...] = (1, 5, 10)


def ranks_of_pairs(similarity: np.ndarray) -> np.ndarray:
    """Return the 1-based rank of the paired item (the diagonal) in each row of a square similarity matrix.

    Ties count against the pair: a row whose items all score the same ranks
    its pair last, not first.
    """
    diagonal = np.diag(similarity)
    return (similarity >= diagonal[:, None]).sum(axis=1)


def retrieval_metrics(text_embeddings: np.ndarray, study_embeddings: np.ndarray) -> dict[str, float]:
    """Return Recall@1/5/10 and median rank, text→study and study→text, for paired rows.

    Row i of both arrays belongs to the same study. Both are unit vectors,
    so the dot product is the cosine similarity.
    """
    if len(text_embeddings) != len(study_embeddings):
        raise ValueError(f"need paired rows: {len(text_embeddings)} texts, {len(study_embeddings)} studies")
    similarity = text_embeddings @ study_embeddings.T
    metrics: dict[str, float] = {"count": float(len(similarity))}
    for direction, matrix in (("text_to_study", similarity), ("study_to_text", similarity.T)):
        ranks = ranks_of_pairs(matrix)
        for k in RECALL_KS:
            metrics[f"{direction}_r{k}"] = float(np.mean(ranks <= k))
        metrics[f"{direction}_median_rank"] = float(np.median(ranks))
    return metrics


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the area under the ROC curve (Mann–Whitney U with tie correction); NaN without both classes."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return false-positive rates, true-positive rates and thresholds, from the highest threshold down."""
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(-np.asarray(scores), kind="stable")
    sorted_scores = np.asarray(scores)[order]
    sorted_labels = labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    true_positives = np.cumsum(sorted_labels)[distinct]
    false_positives = (distinct + 1) - true_positives
    tpr = np.r_[0.0, true_positives / max(labels.sum(), 1)]
    fpr = np.r_[0.0, false_positives / max((~labels).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, sorted_scores[distinct]]


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the score threshold that maximises sensitivity + specificity − 1 (Youden's J)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    if not np.isfinite(thresholds[best]):
        return float(np.max(scores))
    return float(thresholds[best])


def fit_platt(labels: np.ndarray, scores: np.ndarray, iterations: int = 200) -> tuple[float, float]:
    """Fit P(finding) = sigmoid(a · score + b) by Newton's method on the log-loss; returns (a, b).

    A small ridge penalty keeps a and b finite when the classes separate completely.
    """
    y = np.asarray(labels, dtype=np.float64)
    x = np.asarray(scores, dtype=np.float64)
    scale = float(np.std(x)) or 1.0
    design = np.column_stack([x / scale, np.ones_like(x)])
    weights = np.zeros(2)
    ridge = 1e-2
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ weights)))
        gradient = design.T @ (p - y) + ridge * weights
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + ridge * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return float(weights[0] / scale), float(weights[1])
