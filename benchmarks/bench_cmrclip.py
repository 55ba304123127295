"""Benchmark the CMR-CLIP video tower on one 64-frame study: seconds and peak memory.

Each measurement runs in a fresh Python process, so its peak resident memory
(``ru_maxrss``) is its own. The variants alternate over ``--rounds`` rounds,
so a change in the load of a shared machine hits both alike:

- ``sdpa``: the project's path, ``scaled_dot_product_attention`` under
  ``torch.inference_mode``;
- ``eager``: the plain alternative, an explicit softmax(QKᵀ/√d)V in fp32
  under ``torch.no_grad``.

The weights are random (published initialisation), which costs the same as
the real checkpoint. With ``--sunnybrook`` the input is the study video built
from the first Sunnybrook cine study, else random pixels. Run from the
repository root::

    nice -n 10 python benchmarks/bench_cmrclip.py --rounds 3 --threads 2 --sunnybrook
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("sdpa", "eager")


def measure(variant: str, threads: int, frames: int, sunnybrook: bool) -> dict[str, float]:
    """Time one forward pass of one variant after a 4-frame warm-up; return seconds and peak RSS."""
    import torch

    from embeddings.cmrclip.config import PUBLISHED_CONFIG
    from embeddings.cmrclip.model import CMRCLIP

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    video_config = PUBLISHED_CONFIG.video.__class__(attention_backend=variant)
    config = PUBLISHED_CONFIG.__class__(video=video_config)
    model = CMRCLIP(config).eval()
    rss_after_model_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    build_seconds = float("nan")
    if sunnybrook:
        clip, build_seconds = sunnybrook_video(frames)
    else:
        clip = torch.randn(1, frames, 3, 224, 224)

    context = torch.inference_mode if variant == "sdpa" else torch.no_grad
    with context():
        model.encode_video(clip[:, :4])
        started = time.perf_counter()
        embedding = model.encode_video(clip)
        seconds = time.perf_counter() - started
    if tuple(embedding.shape) != (1, 512):
        raise RuntimeError(f"unexpected embedding shape {tuple(embedding.shape)}")
    return {
        "seconds": seconds,
        "rss_after_model_mb": rss_after_model_mb,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "study_video_build_seconds": build_seconds,
    }


def sunnybrook_video(frames: int):  # noqa: ANN201 - (torch.Tensor, float)
    """Catalogue the Sunnybrook archive in a temporary folder and build its first cine study's video."""
    from sqlalchemy import select

    from cmr_search.settings import Settings, sunnybrook_dir
    from embeddings.cmrclip.study_input import build_study_video
    from indexer.catalog.models import Series
    from indexer.catalog.session import create_catalog_engine, session_factory
    from indexer.scan import catalog_archive

    data_dir = Path(tempfile.mkdtemp(prefix="bench-cmrclip-"))
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
    catalog_archive(settings, [sunnybrook_dir()], workers=1, progress=False)
    engine = create_catalog_engine(settings.database_url)
    with session_factory(engine)() as session:
        study_pk = session.scalars(select(Series.study_pk).where(Series.kind == "cine").order_by(Series.id)).first()
        started = time.perf_counter()
        video = build_study_video(session, study_pk, frames)
        build_seconds = time.perf_counter() - started
    engine.dispose()
    return video.frames.unsqueeze(0), build_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed passes per variant, each in a fresh process")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--frames", type=int, default=64, help="frames per study video")
    parser.add_argument("--sunnybrook", action="store_true", help="use a real Sunnybrook study video as input")
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (used internally)")
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(measure(args.variant, args.threads, args.frames, args.sunnybrook)))
        return

    runs: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    for round_index in range(args.rounds):
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--threads", str(args.threads)]
            command += ["--frames", str(args.frames)] + (["--sunnybrook"] if args.sunnybrook else [])
            completed = subprocess.run(command, check=True, capture_output=True, text=True)
            runs[variant].append(json.loads(completed.stdout.strip().splitlines()[-1]))
            print(f"round {round_index + 1} {variant}: {runs[variant][-1]}", flush=True)

    import torch

    summary: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} threads, torch {torch.__version__}",
        "frames": args.frames,
        "rounds": args.rounds,
        "input": "Sunnybrook study video" if args.sunnybrook else "random pixels",
    }
    for variant, results in runs.items():
        seconds = sorted(result["seconds"] for result in results)
        summary[variant] = {
            "seconds_min": seconds[0],
            "seconds_median": statistics.median(seconds),
            "rss_peak_mb": max(result["rss_peak_mb"] for result in results),
            "rss_after_model_mb": max(result["rss_after_model_mb"] for result in results),
        }
    summary["eager_over_sdpa_seconds_median"] = summary["eager"]["seconds_median"] / summary["sdpa"]["seconds_median"]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
