"""Generate a whole synthetic archive: DICOM folders, reports and ground truth."""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from phantom.domains import DOMAINS
from phantom.labels import LABEL_NAMES
from phantom.pathology import DEFAULT_MIX, normalise_mix, scenario_sequence
from phantom.writer import StudyResult, write_study

logger = logging.getLogger(__name__)

REPORT_COLUMNS = ("accession_number", "study_instance_uid", "report_text")
SCENARIO_STREAM = 0x5CE7A  # distinguishes the scenario shuffle from per-study streams


@dataclass(frozen=True)
class ArchiveSummary:
    """Counts, timing and output paths of one :func:`generate_archive` run."""

    out: Path
    studies: int
    series: int
    files: int
    bytes: int
    seconds: float
    domain: str
    seed: int
    reports_csv: Path
    reports_jsonl: Path
    ground_truth_jsonl: Path
    ground_truth_csv: Path

    @property
    def seconds_per_study(self) -> float:
        """Mean wall-clock time per study."""
        return self.seconds / max(self.studies, 1)


def generate_archive(
    out: Path,
    studies: int,
    seed: int,
    mix: Mapping[str, float] | None = None,
    domain: str = "standard",
    progress: bool = True,
    workers: int = 1,
) -> ArchiveSummary:
    """Write ``studies`` synthetic cine CMR studies under ``out``.

    Layout: ``out/dicom/<study>/<series>/<file>.dcm``, ``out/reports.csv`` and
    ``.jsonl`` (accession_number, study_instance_uid, report_text), and
    ``out/ground_truth.jsonl`` and ``.csv`` (one row per study with every
    parameter and label). The same arguments give the same files.

    Raises:
        ValueError: ``studies`` < 1, an unknown domain, or an invalid mix.
        FileExistsError: ``out/dicom`` already contains files, which would mix
            two archives.
    """
    if studies < 1:
        raise ValueError(f"studies must be at least 1, got {studies}")
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}")
    weights = normalise_mix(mix if mix is not None else DEFAULT_MIX)
    out = Path(out)
    dicom_root = out / "dicom"
    if dicom_root.is_dir() and any(dicom_root.iterdir()):
        raise FileExistsError(f"{dicom_root} is not empty; delete it or choose another output folder")
    dicom_root.mkdir(parents=True, exist_ok=True)
    scenarios = scenario_sequence(studies, weights, np.random.default_rng([seed, SCENARIO_STREAM]))
    started = time.perf_counter()
    logger.info("generating %d %s-domain studies with seed %d into %s", studies, domain, seed, out)
    results = _run(seed, scenarios, domain, dicom_root, progress, workers)
    seconds = time.perf_counter() - started
    summary = _write_tables(out, results, seed, domain, seconds)
    logger.info("wrote %d studies, %d files, %.1f MB in %.1f s", summary.studies, summary.files, summary.bytes / 1e6, seconds)
    return summary


def _run(seed: int, scenarios: list[str], domain: str, dicom_root: Path, progress: bool, workers: int) -> list[StudyResult]:
    jobs = [(seed, index, scenario, domain, dicom_root) for index, scenario in enumerate(scenarios)]
    if workers <= 1:
        iterator = (write_study(*job) for job in jobs)
        return list(_with_progress(iterator, len(jobs), progress))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(write_study, *job) for job in jobs]
        return list(_with_progress((future.result() for future in futures), len(jobs), progress))


def _with_progress(results, total: int, progress: bool):
    if not progress:
        yield from results
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("Generating studies", total=total)
        for result in results:
            yield result
            bar.advance(task)


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {key: row[key] for key in ("study_instance_uid", "accession_number", "patient_id", "domain", "seed", "study_index", "scenario")}
    flat.update(row["parameters"])
    flat.update({label: row["labels"][label] for label in LABEL_NAMES})
    return flat


def _write_tables(out: Path, results: list[StudyResult], seed: int, domain: str, seconds: float) -> ArchiveSummary:
    results = sorted(results, key=lambda result: result.index)
    reports_csv, reports_jsonl = out / "reports.csv", out / "reports.jsonl"
    truth_jsonl, truth_csv = out / "ground_truth.jsonl", out / "ground_truth.csv"
    with reports_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(result.report for result in results)
    with reports_jsonl.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(result.report, ensure_ascii=False) + "\n" for result in results)
    with truth_jsonl.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(result.ground_truth, ensure_ascii=False) + "\n" for result in results)
    flat_rows = [_flat_row(result.ground_truth) for result in results]
    with truth_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(flat_rows[0]))
        writer.writeheader()
        writer.writerows(flat_rows)
    return ArchiveSummary(
        out=out,
        studies=len(results),
        series=sum(result.series for result in results),
        files=sum(result.files for result in results),
        bytes=sum(result.bytes for result in results),
        seconds=seconds,
        domain=domain,
        seed=seed,
        reports_csv=reports_csv,
        reports_jsonl=reports_jsonl,
        ground_truth_jsonl=truth_jsonl,
        ground_truth_csv=truth_csv,
    )


def read_ground_truth(out: Path) -> list[dict[str, Any]]:
    """Parse ``out/ground_truth.jsonl`` into one dict per study."""
    with (Path(out) / "ground_truth.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
