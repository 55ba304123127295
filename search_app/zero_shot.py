"""Zero-shot finding scores of embedded studies, in the form the catalog stores them.

Scores come from ``embeddings.zeroshot.score_findings``. A calibrated
probability is added for each finding that the encoder's optional
``thresholds`` attribute (an ``embeddings.zeroshot.FindingThresholds``,
fitted on the validation split and shipped with the default model) covers.
"""

from __future__ import annotations

import numpy as np

from embeddings.encoder import StudyEncoder
from embeddings.zeroshot import FindingThresholds, finding_probabilities, score_findings


def encoder_thresholds(encoder: StudyEncoder) -> FindingThresholds | None:
    """Return the encoder's fitted thresholds, or None when it ships none (the attribute is optional)."""
    thresholds = getattr(encoder, "thresholds", None)
    return thresholds if isinstance(thresholds, FindingThresholds) else None


def zero_shot_scores(encoder: StudyEncoder, study_vectors: np.ndarray) -> list[list[tuple[str, float, float | None]]]:
    """Score every finding of ``encoder`` for each row of ``study_vectors`` (studies, dimension).

    Returns, per study, (finding name, score, probability) tuples. The score is
    the cosine-similarity margin of positive over negative prompts, and the
    probability is None for findings without a fitted threshold.
    """
    scores = score_findings(encoder, np.asarray(study_vectors, dtype=np.float32))
    thresholds = encoder_thresholds(encoder)
    probabilities = finding_probabilities(thresholds, scores) if thresholds is not None else {}
    per_study: list[list[tuple[str, float, float | None]]] = [[] for _ in range(len(study_vectors))]
    for finding, values in scores.items():
        finding_probability = probabilities.get(finding)
        for row, value in enumerate(np.asarray(values, dtype=np.float64).reshape(-1)):
            probability = None if finding_probability is None else float(finding_probability[row])
            per_study[row].append((finding, float(value), probability))
    return per_study


def is_positive(thresholds: FindingThresholds | None, finding: str, score: float, probability: float | None) -> bool | None:
    """Return the yes/no call of a finding: score ≥ its fitted threshold, else probability ≥ 0.5, else None."""
    if thresholds is not None and finding in thresholds.findings:
        return score >= thresholds.findings[finding].threshold
    if probability is not None:
        return probability >= 0.5
    return None
