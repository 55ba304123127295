"""Few-shot prototype classification of findings from study embeddings.

With k labelled positive and k labelled negative studies, a finding's
prototype classifier scores a study by its cosine similarity to the mean of
the positive embeddings minus that to the mean of the negative ones. The
examples are drawn at random from the training split, many times, and the
ROC AUC on the test split is averaged over the draws.
"""

from __future__ import annotations

import numpy as np

from embeddings.metrics import roc_auc


def prototype_scores(support: np.ndarray, support_labels: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Score ``query`` vectors (N, D) against the positive and negative prototypes of ``support``."""
    labels = np.asarray(support_labels, dtype=bool)
    positive = support[labels].mean(axis=0)
    negative = support[~labels].mean(axis=0)
    positive /= np.linalg.norm(positive)
    negative /= np.linalg.norm(negative)
    return query @ positive - query @ negative


def few_shot_auc(
    train_vectors: np.ndarray,
    train_labels: np.ndarray,
    test_vectors: np.ndarray,
    test_labels: np.ndarray,
    shots: int,
    draws: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Return the mean and standard deviation of test AUC over ``draws`` random k-shot supports.

    NaN when either split lacks a class or the training split has fewer
    than ``shots`` examples of a class.
    """
    train_labels = np.asarray(train_labels, dtype=bool)
    positives, negatives = np.flatnonzero(train_labels), np.flatnonzero(~train_labels)
    if len(positives) < shots or len(negatives) < shots:
        return {"mean_auc": float("nan"), "std_auc": float("nan"), "draws": 0}
    generator = np.random.default_rng(seed)
    aucs = []
    for _ in range(draws):
        chosen = np.r_[generator.choice(positives, shots, replace=False), generator.choice(negatives, shots, replace=False)]
        scores = prototype_scores(train_vectors[chosen], train_labels[chosen], test_vectors)
        aucs.append(roc_auc(test_labels, scores))
    return {"mean_auc": float(np.nanmean(aucs)), "std_auc": float(np.nanstd(aucs)), "draws": draws}
