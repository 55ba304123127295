"""CMR-CLIP's seven published zero-shot findings, and thresholds fitted on a site's labels.

The prompt lists are those of the CMR-CLIP evaluation code
(``comparison/prompt.py`` in ``Makiya11/CMRCLIP``), which has no negative
prompts. The published score of a study is the mean cosine between its video
embedding and each prompt embedding. cmr-search scores every model the same
way (:func:`embeddings.zeroshot.score_findings`): the cosine to the unit mean
of the prompt embeddings, which is that mean cosine divided by the norm of the
prompts' mean. The factor is the same for every study, so rankings and ROC
AUC are unchanged.

The published repository also lists one threshold per finding, but its
evaluation code never reads them, and their size (0.51 to 0.54) fits a
(cosine + 1) / 2 similarity rather than the raw cosine. They are therefore not
used. A yes/no decision needs thresholds fitted on the site's own labelled
studies with :func:`fit_site_thresholds`. Without them only scores are shown.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from embeddings.encoder import FindingPrompts
from embeddings.metrics import fit_platt, roc_curve
from embeddings.zeroshot import FindingThreshold, FindingThresholds

logger = logging.getLogger(__name__)

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

MIN_LABELLED_PER_CLASS = 5  # fewer positive or negative studies than this and no threshold is fitted
FINDING_NAMES: tuple[str, ...] = tuple(finding.name for finding in CMRCLIP_FINDINGS)


def balanced_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the score where sensitivity is closest to specificity, the cut-off rule CMR-CLIP published.

    This is the ROC point minimising |TPR − (1 − FPR)|, which is not Youden's J.
    """
    fpr, tpr, thresholds = roc_curve(labels, scores)
    gaps = np.where(np.isfinite(thresholds), np.abs(tpr - (1.0 - fpr)), np.inf)
    return float(thresholds[int(np.argmin(gaps))])


def fit_finding_threshold(labels: np.ndarray, scores: np.ndarray) -> FindingThreshold:
    """Fit one finding's threshold and a probability curve that crosses 0.5 exactly there.

    ``labels`` are True where the site's report states the finding is present.
    The slope is that of a Platt fit, and the intercept is set so that
    ``probability(score) >= 0.5`` exactly when ``score >= threshold``.
    """
    truth = np.asarray(labels, dtype=bool)
    values = np.asarray(scores, dtype=np.float64)
    threshold = balanced_threshold(truth, values)
    slope = max(fit_platt(truth, values)[0], 0.0)
    return FindingThreshold(threshold, slope, -slope * threshold, int(truth.sum()), int((~truth).sum()))


def fit_site_thresholds(
    model_id: str, scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> FindingThresholds:
    """Fit thresholds for every finding with at least ``MIN_LABELLED_PER_CLASS`` positive and negative studies.

    ``scores[name]`` and ``labels[name]`` are aligned per study. A finding
    with too few labelled studies of either class gets no threshold (and so
    only a score), and the skip is logged.
    """
    fitted = {}
    for name, finding_scores in scores.items():
        if name not in labels:
            continue
        truth = np.asarray(labels[name], dtype=bool)
        positives, negatives = int(truth.sum()), int((~truth).sum())
        if positives < MIN_LABELLED_PER_CLASS or negatives < MIN_LABELLED_PER_CLASS:
            logger.info(
                "no threshold for %s: %d positive and %d negative labelled studies, %d of each needed",
                name,
                positives,
                negatives,
                MIN_LABELLED_PER_CLASS,
            )
            continue
        fitted[name] = fit_finding_threshold(truth, finding_scores)
    return FindingThresholds(model_id, fitted)
