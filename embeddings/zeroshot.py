"""Zero-shot finding scores from prompt ensembles, and the thresholds fitted on validation.

A finding's score for a study is the cosine similarity of the study vector
to the mean embedding of the finding's positive prompts minus that to the
mean of its negative prompts (each mean re-normalised). The prompts are
data in ``configs/finding_prompts.json``; the finding names are the label
names of the phantom ground truth.

Thresholds belong to one model id. :func:`fit_thresholds` fits, per finding
on the validation split, Youden's threshold and a Platt scaling from score
to probability. The shipped default model carries its thresholds in
``default_model/thresholds.json``.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.encoder import FindingPrompts, StudyEncoder
from embeddings.metrics import fit_platt, youden_threshold

PROMPTS_PATH = Path(__file__).resolve().parent / "configs" / "finding_prompts.json"


@lru_cache(maxsize=1)
def load_finding_prompts(path: Path = PROMPTS_PATH) -> tuple[FindingPrompts, ...]:
    """Read the prompt ensembles of every finding."""
    data = json.loads(path.read_text())
    return tuple(
        FindingPrompts(entry["name"], entry["label"], tuple(entry["positive"]), tuple(entry.get("negative", ())))
        for entry in data["findings"]
    )


def _centroid(encoder: StudyEncoder, prompts: Sequence[str]) -> np.ndarray:
    vectors = encoder.encode_text(list(prompts))
    mean = vectors.mean(axis=0)
    return mean / np.linalg.norm(mean)


# Prompt embeddings per encoder object, so that scoring many batches encodes the prompts once.
_DIRECTIONS: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, tuple[np.ndarray, np.ndarray | None]]]] = (
    weakref.WeakKeyDictionary()
)


def prompt_directions(encoder: StudyEncoder) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Return per finding the unit mean of its positive and (if any) negative prompt embeddings.

    The result is cached per encoder object and model id.
    """
    try:
        cached = _DIRECTIONS.get(encoder)
    except TypeError:  # an encoder that cannot be weakly referenced is not cached
        cached = None
    if cached is not None and cached[0] == encoder.model_id:
        return cached[1]
    directions = {}
    for finding in encoder.finding_prompts():
        negative = _centroid(encoder, finding.negative) if finding.negative else None
        directions[finding.name] = (_centroid(encoder, finding.positive), negative)
    try:
        _DIRECTIONS[encoder] = (encoder.model_id, directions)
    except TypeError:
        pass
    return directions


def score_findings(encoder: StudyEncoder, study_vectors: np.ndarray) -> dict[str, np.ndarray]:
    """Score every finding of ``encoder`` for unit study vectors (N, dimension); returns finding → (N,) scores."""
    vectors = np.atleast_2d(np.asarray(study_vectors, dtype=np.float32))
    scores = {}
    for name, (positive, negative) in prompt_directions(encoder).items():
        score = vectors @ positive
        if negative is not None:
            score = score - vectors @ negative
        scores[name] = score.astype(np.float32)
    return scores


@dataclass(frozen=True)
class FindingThreshold:
    """Decision threshold and Platt scaling of one finding: P = sigmoid(slope · score + intercept)."""

    threshold: float
    slope: float
    intercept: float
    validation_positives: int
    validation_negatives: int

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Return the calibrated probability of the finding for each score."""
        return 1.0 / (1.0 + np.exp(-(self.slope * np.asarray(scores, dtype=np.float64) + self.intercept)))


@dataclass(frozen=True)
class FindingThresholds:
    """Thresholds of every finding for one model id."""

    model_id: str
    findings: dict[str, FindingThreshold]

    def to_json(self) -> str:
        """Return the JSON form written next to a checkpoint."""
        return json.dumps(
            {"model_id": self.model_id, "findings": {name: asdict(t) for name, t in self.findings.items()}}, indent=2
        )

    @classmethod
    def from_json(cls, text: str) -> FindingThresholds:
        """Parse the JSON form of :meth:`to_json`."""
        data = json.loads(text)
        return cls(data["model_id"], {name: FindingThreshold(**t) for name, t in data["findings"].items()})


def fit_thresholds(
    model_id: str, scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> FindingThresholds:
    """Fit thresholds per finding from validation scores and labels; findings with one class only are skipped."""
    fitted = {}
    for name, finding_scores in scores.items():
        if name not in labels:
            continue
        truth = np.asarray(labels[name], dtype=bool)
        if truth.all() or not truth.any():
            continue
        slope, intercept = fit_platt(truth, finding_scores)
        fitted[name] = FindingThreshold(
            youden_threshold(truth, finding_scores), slope, intercept, int(truth.sum()), int((~truth).sum())
        )
    return FindingThresholds(model_id, fitted)


def finding_probabilities(thresholds: FindingThresholds, scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return calibrated probabilities for the findings that have thresholds."""
    return {name: thresholds.findings[name].probability(s) for name, s in scores.items() if name in thresholds.findings}


def load_thresholds(path: Path, model_id: str) -> FindingThresholds | None:
    """Read thresholds from ``path`` if they exist and belong to ``model_id``; otherwise None."""
    if not path.is_file():
        return None
    thresholds = FindingThresholds.from_json(path.read_text())
    return thresholds if thresholds.model_id == model_id else None
