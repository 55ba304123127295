"""Command-line commands of this stage, registered on the ``cmr-search`` app."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from phantom.domains import DOMAINS
from phantom.pathology import DEFAULT_MIX


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command("demo-data")(demo_data)


def demo_data(
    out: Path = typer.Argument(..., help="Folder to write into, created if missing. OUT/dicom must be empty or absent."),
    studies: int = typer.Option(50, "--studies", min=1, help="Number of studies to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same archive."),
    pathology_mix: str = typer.Option(
        "",
        "--pathology-mix",
        help=f"Scenario weights such as 'normal=0.3,ischemic=0.2'; scenarios left out get 0. Default: {','.join(f'{k}={v}' for k, v in DEFAULT_MIX.items())}",
    ),
    domain: str = typer.Option("standard", "--domain", help=f"Acquisition domain: {' or '.join(DOMAINS)} (shifted = simulated external site)."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, help="Worker processes; each generates whole studies."),
) -> None:
    """Write a synthetic cine CMR archive: DICOM, reports and ground truth."""
    from phantom.archive import generate_archive
    from phantom.pathology import parse_mix

    if domain not in DOMAINS:
        raise typer.BadParameter(f"unknown domain {domain!r}; expected one of {', '.join(DOMAINS)}", param_hint="--domain")
    try:
        mix = parse_mix(pathology_mix) if pathology_mix else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--pathology-mix") from None
    try:
        summary = generate_archive(out, studies, seed, mix=mix, domain=domain, progress=True, workers=workers)
    except FileExistsError as error:
        raise typer.BadParameter(str(error), param_hint="OUT") from None
    typer.echo(
        f"Wrote {summary.studies} studies ({summary.series} series, {summary.files} files, "
        f"{summary.bytes / 1e6:.1f} MB) to {summary.out} in {summary.seconds:.1f} s "
        f"({summary.seconds_per_study:.2f} s per study)."
    )
    typer.echo(f"Reports: {summary.reports_csv}, {summary.reports_jsonl}")
    typer.echo(f"Ground truth: {summary.ground_truth_jsonl}, {summary.ground_truth_csv}")
