"""Benchmark the CMR-CLIP video tower on one 64-frame study: seconds and peak memory.

Each variant runs in its own Python process, so its peak resident memory
(``ru_maxrss``) is its own:

- ``sdpa``: the project's path, ``scaled_dot_product_attention`` under
  ``torch.inference_mode``;
- ``eager``: the plain alternative, an explicit softmax(QKᵀ/√d)V in fp32
  under ``torch.no_grad``.

The weights are random (published initialisation), which costs the same as
the real checkpoint. With ``--sunnybrook`` the input is the study video built
from the first Sunnybrook cine study, else random pixels. Run from the
repository root::

    nice -n 10 python benchmarks/bench_cmrclip.py --repeats 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("sdpa", "eager")


def measure(variant: str, repeats: int, threads: int, frames: int, sunnybrook: bool) -> dict[str, float]:
    """Time ``repeats`` forward passes of one variant in this process; return seconds and peak RSS."""
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
    seconds = []
    with context():
        for _ in range(repeats):
            started = time.perf_counter()
            embedding = model.encode_video(clip)
            seconds.append(time.perf_counter() - started)
    if tuple(embedding.shape) != (1, 512):
        raise RuntimeError(f"unexpected embedding shape {tuple(embedding.shape)}")
    return {
        "seconds_min": min(seconds),
        "seconds_mean": sum(seconds) / len(seconds),
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
    parser.add_argument("--repeats", type=int, default=2, help="forward passes per variant; the minimum is reported")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--frames", type=int, default=64, help="frames per study video")
    parser.add_argument("--sunnybrook", action="store_true", help="use a real Sunnybrook study video as input")
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (used internally)")
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(measure(args.variant, args.repeats, args.threads, args.frames, args.sunnybrook)))
        return

    results = {}
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--variant", variant, "--repeats", str(args.repeats)]
        command += ["--threads", str(args.threads), "--frames", str(args.frames)]
        if args.sunnybrook:
            command.append("--sunnybrook")
        completed = subprocess.run(command, check=True, capture_output=True, text=True)
        results[variant] = json.loads(completed.stdout.strip().splitlines()[-1])
        print(variant, results[variant], flush=True)

    import torch

    summary = {
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}",
        "frames": args.frames,
        "repeats": args.repeats,
        "results": results,
        "eager_over_sdpa_seconds": results["eager"]["seconds_min"] / results["sdpa"]["seconds_min"],
        "eager_over_sdpa_peak_memory": results["eager"]["rss_peak_mb"] / results["sdpa"]["rss_peak_mb"],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
