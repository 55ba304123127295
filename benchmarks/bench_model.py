"""Benchmark the default model: video-tower clips per second and the cost of one query embedding.

Prints one JSON object. Each figure is paired with a plain alternative measured
in the same run, because the machines are shared and absolute speed varies:

- the (2+1)D video tower against a network of the same widths with full
  3 × 3 × 3 kernels (what the factorisation saves);
- one query through lexicon and text tower against the text tower alone
  (what the lexicon costs).

Run: ``python benchmarks/bench_model.py [--device cuda] [--repeats 9] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from embeddings.clips import VIEW_TYPES
from embeddings.factory import load_encoder
from embeddings.inference import autocast_for
from embeddings.lexicon import Lexicon
from embeddings.video_tower import VideoTower

QUERIES = (
    "dilated LV with reduced EF",
    "HCM with asymmetric septal hypertrophy",
    "inferior MI with transmural LGE",
    "small pericardial effusion",
    "RV dilation and reduced RVEF",
    "normal study",
)


def paired_median_seconds(first: Callable[[], object], second: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Return the median wall times of two functions timed alternately, after one warm-up call each.

    Alternating the two spreads changes in machine load over both figures.
    """
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, bucket in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def full_3d_variant(tower: VideoTower) -> VideoTower:
    """Return a copy of ``tower`` whose (2+1)D convolutions are replaced by full 3 × 3 × 3 convolutions."""
    import copy

    variant = copy.deepcopy(tower)
    for module in variant.modules():
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Sequential) and len(child) == 4 and isinstance(child[0], nn.Conv3d):
                spatial, temporal = child[0], child[3]
                stride = (temporal.stride[0], spatial.stride[1], spatial.stride[2])
                setattr(module, name, nn.Conv3d(spatial.in_channels, temporal.out_channels, 3, stride=stride, padding=1, bias=False))
    return variant


def video_figures(encoder, device: torch.device, batch: int, repeats: int) -> dict[str, float]:
    """Return clips per second for inference and training steps, (2+1)D against full 3-D."""
    settings = encoder.model.config.clip
    tower = encoder.model.video.to(device)
    slots = len(VIEW_TYPES)
    clips = torch.rand(batch, slots, settings.frames, settings.size, settings.size, device=device)
    view_types = torch.arange(slots, device=device).expand(batch, -1)
    present = torch.ones(batch, slots, dtype=torch.bool, device=device)
    clip_count = batch * slots
    figures: dict[str, float] = {"batch_studies": batch, "clips_per_study": slots}
    full_3d = full_3d_variant(tower).to(device)

    def infer(model: VideoTower) -> Callable[[], None]:
        def run() -> None:
            model.eval()
            with torch.no_grad(), autocast_for(device):
                model(clips, view_types, present)
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run

    def step(model: VideoTower) -> Callable[[], None]:
        def run() -> None:
            model.train()
            with autocast_for(device):
                model(clips, view_types, present).float().sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run

    factorised_infer, full_infer = paired_median_seconds(infer(tower), infer(full_3d), repeats)
    factorised_step, full_step = paired_median_seconds(step(tower), step(full_3d), repeats)
    tower.eval()
    figures["factorised_inference_clips_per_s"] = clip_count / factorised_infer
    figures["full_3d_inference_clips_per_s"] = clip_count / full_infer
    figures["factorised_training_clips_per_s"] = clip_count / factorised_step
    figures["full_3d_training_clips_per_s"] = clip_count / full_step
    figures["inference_speedup_vs_full_3d"] = full_infer / factorised_infer
    figures["training_speedup_vs_full_3d"] = full_step / factorised_step
    return figures


def query_figures(encoder, repeats: int) -> dict[str, float]:
    """Return milliseconds per single query with and without the lexicon."""
    text = encoder.model.text
    lexicon = text.lexicon

    def with_lexicon() -> None:
        for query in QUERIES:
            encoder.encode_text([query])

    def without_lexicon() -> None:
        text.lexicon = Lexicon([])
        try:
            for query in QUERIES:
                encoder.encode_text([query])
        finally:
            text.lexicon = lexicon

    expand_seconds, _ = paired_median_seconds(lambda: [lexicon.expand(q) for q in QUERIES], lambda: None, repeats)
    with_seconds, without_seconds = paired_median_seconds(with_lexicon, without_lexicon, repeats)
    with_ms = with_seconds / len(QUERIES) * 1000
    without_ms = without_seconds / len(QUERIES) * 1000
    return {
        "query_ms_with_lexicon": with_ms,
        "query_ms_without_lexicon": without_ms,
        "lexicon_expand_ms": expand_seconds / len(QUERIES) * 1000,
        "lexicon_cost_ratio": with_ms / without_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--batch", type=int, default=8, help="studies per forward pass")
    parser.add_argument("--repeats", type=int, default=9, help="timed repetitions per figure (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads [default: torch's choice]")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    encoder = load_encoder("default", device=str(device))
    result = {
        "model_id": encoder.model_id,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "video": video_figures(encoder, device, args.batch, args.repeats),
        "query": query_figures(encoder, args.repeats),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
