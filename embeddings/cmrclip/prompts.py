"""CMR-CLIP's seven published zero-shot findings, and thresholds fitted on a site's labels.

The prompt lists are those of the CMR-CLIP evaluation code
(``comparison/prompt.py`` in ``Makiya11/CMRCLIP``). A study's score for a
finding is the mean cosine similarity between its video embedding and each
prompt's text embedding. There are no negative prompts.

The published repository also lists one threshold per finding, but its
evaluation code never reads them, and their size (0.51 to 0.54) fits a
(cosine + 1) / 2 similarity rather than the raw cosine. They are therefore not
used. A yes/no answer needs a threshold fitted on the site's own labelled
studies with :func:`fit_threshold`. Without one, only scores are shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embeddings.encoder import FindingPrompts
from embeddings.metrics import fit_platt, roc_auc, roc_curve

CMRCLIP_FINDINGS: tuple[FindingPrompts, ...] = (
    FindingPrompts("lv_dysfunc", "Left ventricle dysfunction", ("Left ventricle with systolic dysfunction",)),
    FindingPrompts("rv_dysfunc", "Right ventricle dysfunction", ("Right ventricle with systolic dysfunction",)),
    FindingPrompts(
        "lv_dilation", "Left ventricle dilation", ("Left ventricle is dilated", "Left ventricle is enlarged in size")
    ),
    FindingPrompts(
        "rv_dilation", "Right ventricle dilation", ("Right ventricle is dilated", "Right ventricle is enlarged in size")
    ),
    FindingPrompts(
        "lv_hypertrophy",
        "Left ventricle hypertrophy",
        ("There is left ventricular hypertrophy", "There is septal hypertrophy", "LV is thickened"),
    ),
    FindingPrompts(
        "lv_lge_pattern",
        "LGE",
        (
            "Delayed-enhancement imaging reveals transmural enhancement",
            "Delayed-enhancement imaging reveals patchy enhancement",
            "There is a large area of LAD scar",
        ),
    ),
    FindingPrompts(
        "aortic_dilation",
        "Aortic dilation",
        ("Aortic root is ectatic", "Ascending aortic is dilated", "Descending aorta is dilated"),
    ),
)

MIN_LABELLED_PER_CLASS = 5  # fewer positives or negatives than this and no threshold is fitted


class ThresholdError(ValueError):
    """Site labels are too few, or a thresholds file is invalid."""


@dataclass(frozen=True)
class FindingThreshold:
    """A decision threshold on a finding's mean cosine, fitted on one site's labelled studies.

    ``probability`` is a logistic curve that passes 0.5 at ``threshold``, with
    the slope of a Platt fit (``slope`` per unit of cosine), so
    ``probability(score) >= 0.5`` exactly when ``score >= threshold``.
    """

    finding: str
    threshold: float
    slope: float
    positives: int
    negatives: int
    auc: float

    def probability(self, score: float) -> float:
        """Return the calibrated probability of the finding for a mean-cosine ``score``."""
        return 1.0 / (1.0 + math.exp(-self.slope * (score - self.threshold)))


def finding_scores(study_vectors: np.ndarray, prompt_vectors: np.ndarray) -> np.ndarray:
    """Return each study's mean cosine over a finding's prompts, (studies,).

    Both arguments hold unit vectors: ``study_vectors`` (studies, dim) and
    ``prompt_vectors`` (prompts, dim).
    """
    return (np.asarray(study_vectors) @ np.asarray(prompt_vectors).T).mean(axis=1)


def balanced_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the score where sensitivity is closest to specificity, the published cut-off rule.

    This is the ROC point minimising |TPR − (1 − FPR)|, which is not Youden's J.
    """
    fpr, tpr, thresholds = roc_curve(labels, scores)
    finite = np.isfinite(thresholds)
    gaps = np.abs(tpr - (1.0 - fpr))
    best = int(np.argmin(np.where(finite, gaps, np.inf)))
    return float(thresholds[best])


def fit_threshold(finding: str, labels: np.ndarray, scores: np.ndarray) -> FindingThreshold:
    """Fit a :class:`FindingThreshold` from a site's labels (True = finding present) and scores.

    Raises:
        ThresholdError: fewer than ``MIN_LABELLED_PER_CLASS`` positive or
            negative studies.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives < MIN_LABELLED_PER_CLASS or negatives < MIN_LABELLED_PER_CLASS:
        raise ThresholdError(
            f"finding {finding}: {positives} positive and {negatives} negative labelled studies; "
            f"at least {MIN_LABELLED_PER_CLASS} of each are needed to fit a threshold"
        )
    threshold = balanced_threshold(labels, scores)
    slope, _ = fit_platt(labels, scores)
    return FindingThreshold(finding, threshold, max(slope, 0.0), positives, negatives, roc_auc(labels, scores))


def save_thresholds(path: Path, thresholds: Mapping[str, FindingThreshold], model_id: str) -> None:
    """Write thresholds as JSON, tagged with the model id they were fitted for."""
    payload = {"model_id": model_id, "findings": {name: asdict(value) for name, value in thresholds.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")


def load_thresholds(path: Path, model_id: str) -> dict[str, FindingThreshold]:
    """Read thresholds written by :func:`save_thresholds`; a missing file gives no thresholds.

    Raises:
        ThresholdError: the file is not valid JSON, or was fitted for
            another model id (other weights give other cosines).
    """
    if not path.is_file():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        stored_model = payload["model_id"]
        findings = {name: FindingThreshold(**values) for name, values in payload["findings"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ThresholdError(f"thresholds file {path} is invalid: {error}") from error
    if stored_model != model_id:
        raise ThresholdError(f"thresholds file {path} was fitted for {stored_model}, not {model_id}; fit it again")
    return findings
