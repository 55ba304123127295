"""The evaluation page: ``metrics.json``, ``README.md`` and PNG plots in one folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.evaluation import SHOTS, EncodedArchive
from embeddings.metrics import roc_curve


def _format(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def plot_roc(archive: EncodedArchive, rows: np.ndarray, path: Path, title: str) -> None:
    """Draw one ROC curve per finding of ``archive`` on ``rows``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 6))
    for name, scores in archive.scores.items():
        labels = archive.labels.get(name)
        if labels is None:
            continue
        known = rows[~np.isnan(labels[rows])]
        truth = labels[known].astype(bool)
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, scores[known])
        axes.plot(fpr, tpr, label=name)
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.set_xlabel("false-positive rate")
    axes.set_ylabel("true-positive rate")
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_few_shot(result: dict[str, Any], path: Path) -> None:
    """Draw mean test AUC against shots per finding, with zero-shot at 0 shots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    for name, by_shots in result["test"]["few_shot"].items():
        zero = result["test"]["zero_shot"].get(name, {}).get("auc", float("nan"))
        xs = [0, *SHOTS]
        ys = [zero, *(by_shots[str(k)]["mean_auc"] for k in SHOTS)]
        axes.plot(xs, ys, marker="o", label=name)
    axes.set_xscale("symlog", linthresh=1)
    axes.set_xticks([0, *SHOTS], labels=["zero-shot", *map(str, SHOTS)])
    axes.set_xlabel("labelled examples per class")
    axes.set_ylabel("test ROC AUC")
    axes.set_ylim(0.4, 1.01)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_real_scores(main: EncodedArchive, real: EncodedArchive, threshold: float | None, path: Path) -> None:
    """Draw phantom test LV-dysfunction scores by label, with the real studies as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = "lv_systolic_dysfunction"
    rows = main.rows("test")
    labels = main.labels[name][rows]
    scores = main.scores[name][rows]
    figure, axes = plt.subplots(figsize=(7, 4))
    bins = np.linspace(min(scores.min(), real.scores[name].min()), max(scores.max(), real.scores[name].max()), 30)
    axes.hist(scores[labels == 0], bins=bins, alpha=0.6, label="phantom test, EF ≥ 50 %")
    axes.hist(scores[labels == 1], bins=bins, alpha=0.6, label="phantom test, EF < 50 %")
    for value in real.scores[name]:
        axes.axvline(value, color="black", linewidth=1.5)
    axes.plot([], [], color="black", label="Sunnybrook HF-I (EF < 40 %)")
    if threshold is not None:
        axes.axvline(threshold, color="red", linestyle="--", label="threshold (validation)")
    axes.set_xlabel("zero-shot score: LV systolic dysfunction")
    axes.set_ylabel("studies")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _retrieval_table(sections: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| set | studies | text→study R@1 | R@5 | R@10 | median rank | study→text R@1 | R@5 | R@10 | median rank |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, metrics in sections.items():
        if not metrics:
            continue
        cells = [name, _format(int(metrics["count"]))]
        for direction in ("text_to_study", "study_to_text"):
            cells += [_format(metrics[f"{direction}_r{k}"]) for k in (1, 5, 10)]
            cells.append(_format(metrics[f"{direction}_median_rank"], 1))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _zero_shot_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| finding | test AUC | positives / negatives | sensitivity | specificity | shifted AUC | shifted sens. | shifted spec. |",
        "|---|---|---|---|---|---|---|---|",
    ]
    shifted = result.get("shifted", {}).get("zero_shot", {})
    for name, entry in result["test"]["zero_shot"].items():
        other = shifted.get(name, {})
        lines.append(
            f"| {name} | {_format(entry['auc'])} | {entry['positives']} / {entry['negatives']} | "
            f"{_format(entry.get('sensitivity'))} | {_format(entry.get('specificity'))} | {_format(other.get('auc'))} | "
            f"{_format(other.get('sensitivity'))} | {_format(other.get('specificity'))} |"
        )
    return lines


def _few_shot_table(section: dict[str, Any]) -> list[str]:
    lines = ["| finding | " + " | ".join(f"{k}-shot AUC" for k in SHOTS) + " |", "|---" * (len(SHOTS) + 1) + "|"]
    for name, by_shots in section.items():
        cells = [f"{_format(by_shots[str(k)]['mean_auc'])} ± {_format(by_shots[str(k)]['std_auc'])}" for k in SHOTS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def write_report(
    result: dict[str, Any],
    output_dir: Path,
    main: EncodedArchive,
    shifted: EncodedArchive | None,
    real: EncodedArchive | None,
    command: str,
) -> Path:
    """Write metrics.json, the plots and README.md to ``output_dir``; returns the markdown path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(result, indent=2, allow_nan=True))
    plot_roc(main, main.rows("test"), output_dir / "roc_test.png", "Zero-shot ROC, phantom test split")
    plot_few_shot(result, output_dir / "few_shot.png")
    if shifted is not None and shifted.labels:
        plot_roc(shifted, shifted.rows(None), output_dir / "roc_shifted.png", "Zero-shot ROC, shifted domain")
    if real is not None and main.labels:
        threshold = result["real"].get("threshold")
        plot_real_scores(main, real, threshold, output_dir / "real_lv_dysfunction.png")

    sizes = result["split_sizes"]
    lines = [
        f"# Evaluation of `{result['model_id']}`",
        "",
        "Written by `cmr-search evaluate`. Every number is measured on studies the model never trained on:",
        f"the phantom test split ({sizes['test']} studies; train {sizes['train']}, validation {sizes['validation']}),",
        "split by patient, and a separately generated phantom archive from a shifted domain. Zero-shot",
        "thresholds are fitted on the validation split only. Command:",
        "",
        f"    {command}",
        "",
        "## Retrieval",
        "",
        "A query is the report impression of one study; the paired study is the only correct answer, so",
        "studies with equivalent impressions (for example several normal studies) count as misses.",
        "",
        *_retrieval_table(
            {"phantom test": result["test"]["retrieval"], "shifted domain": result.get("shifted", {}).get("retrieval", {})}
        ),
        "",
        "## Zero-shot findings",
        "",
        "Score: cosine similarity to the positive prompt ensemble minus that to the negative one",
        "(`embeddings/configs/finding_prompts.json`). Sensitivity and specificity use the threshold fitted on",
        "validation (Youden's J).",
        "",
        *_zero_shot_table(result),
        "",
        "![ROC on the test split](roc_test.png)",
        "",
    ]
    if shifted is not None and shifted.labels:
        lines += ["![ROC on the shifted domain](roc_shifted.png)", ""]
    lines += [
        "## Few-shot prototype classification",
        "",
        "k positive and k negative training studies form two prototypes; mean ± SD test AUC over random draws.",
        "",
        *_few_shot_table(result["test"]["few_shot"]),
        "",
        "![AUC against shots](few_shot.png)",
        "",
    ]
    if "shifted" in result:
        lines += ["Shifted domain, supports from the standard training split:", "", *_few_shot_table(result["shifted"]["few_shot"]), ""]
    if "real" in result:
        real_result = result["real"]
        scores = ", ".join(_format(s, 3) for s in real_result["real_scores"])
        probabilities = real_result.get("real_probabilities")
        lines += [
            "## Real-data check: Sunnybrook",
            "",
            "The five Sunnybrook cine studies are heart failure with infarction, all with EF < 40 %, and have",
            "only a SAX cine (no long-axis views, no LGE), so the model sees a third of the inputs it trained on.",
            f"Zero-shot LV systolic dysfunction scores: {scores}.",
        ]
        if probabilities:
            lines.append(
                "Calibrated probabilities: " + ", ".join(_format(p) for p in probabilities) + f"; "
                f"{real_result.get('real_called_positive')} of {len(real_result['real_scores'])} are above the threshold "
                f"{_format(real_result['threshold'], 3)}."
            )
        positive = real_result.get("phantom_test_positive", {})
        negative = real_result.get("phantom_test_negative", {})
        lines += [
            f"Phantom test medians: {_format(positive.get('median'), 3)} with EF < 50 % "
            f"(n = {positive.get('count')}), {_format(negative.get('median'), 3)} without (n = {negative.get('count')}).",
            "",
            "![Sunnybrook scores against the phantom distribution](real_lv_dysfunction.png)",
            "",
        ]
    markdown = output_dir / "README.md"
    markdown.write_text("\n".join(lines) + "\n")
    return markdown
