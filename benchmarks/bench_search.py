"""Benchmark search at 10^4–10^6 studies: /api/search end to end against FAISS alone.

For each size the script builds a synthetic SQLite catalog (see
bench_search_data.py). It builds and saves the index with the code that
``cmr-search reindex`` runs: flat below ``IndexConfig.exact_max_studies``,
HNSW above, with efSearch tuned to recall@10 ≥ 0.95 on probes. Then it
starts the real app with uvicorn on 127.0.0.1 and times, over the same
queries:

- ``faiss``: ``StudyIndex.search`` alone (top 20);
- ``service``: ``SearchService.search`` (FAISS plus three SQL hydration queries);
- ``http``: ``GET /api/search`` through uvicorn and httpx, JSON included.

Query vectors come from a synthetic encoder, so the text tower is not in
these numbers; ``--text-tower`` also times the default model's
``encode_text`` on the query strings. Run from the repository root::

    nice -n 10 python benchmarks/bench_search.py --sizes 10000 100000 1000000 --json /tmp/search.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search_data import RARE_MANUFACTURER, SyntheticEncoder, SyntheticSpace, fill_catalog  # noqa: E402

from cmr_search.settings import Settings  # noqa: E402
from search_app.vector_index import IndexConfig, exact_top_k, recall_at_k  # noqa: E402

FILTERS = {"none": {}, "sex (50 %)": {"sex": "F"}, "manufacturer (1 %)": {"manufacturer": RARE_MANUFACTURER}}


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """Return p50 and p95 in ms."""
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
    }


def rss_mib() -> float:
    """Return this process's resident set size in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_size(size: int, args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Build one catalog and index of ``size`` studies and time the three layers."""
    import httpx
    import uvicorn

    from indexer.catalog.session import upgrade_database
    from search_app.app import create_app
    from search_app.filters import SearchFilters
    from search_app.index_store import index_paths, save_index
    from search_app.query import SearchService
    from search_app.vector_index import build_study_index

    result: dict[str, object] = {"studies": size, "dimension": args.dimension}
    space = SyntheticSpace(args.dimension, clusters=max(50, size // 500), seed=size)
    encoder = SyntheticEncoder(space)
    settings = Settings(data_dir=work / f"n{size}", database_url=f"sqlite:///{work / f'n{size}' / 'catalog.sqlite'}")
    settings.ensure_dirs()

    vectors = space.study_vectors(size)
    upgrade_database(settings.database_url)
    result["catalog_fill_s"] = round(fill_catalog(str(settings.data_dir / "catalog.sqlite"), vectors, encoder.model_id), 1)
    print(f"[{size}] catalog filled in {result['catalog_fill_s']} s", flush=True)

    config = IndexConfig(hnsw_m=args.hnsw_m, hnsw_ef_construction=args.ef_construction, max_ef_search=args.max_ef_search)
    ids = np.arange(1, size + 1, dtype=np.int64)
    started = time.perf_counter()
    built = build_study_index(encoder.model_id, ids, vectors.copy(), config)
    result["index_build_s"] = round(time.perf_counter() - started, 1)
    save_index(settings, built)
    result["index"] = {key: getattr(built.stats, key) for key in ("kind", "hnsw_m", "ef_construction", "ef_search", "recall_at_10")}
    result["index_file_bytes_per_study"] = round(index_paths(settings, encoder.model_id)[0].stat().st_size / size, 1)
    print(f"[{size}] index built in {result['index_build_s']} s: {result['index']}", flush=True)
    del built

    rss_before = rss_mib()
    started = time.perf_counter()
    app = create_app(settings, encoder, index_config=config, migrate=False, threads_per_query=1)
    result["app_start_s"] = round(time.perf_counter() - started, 2)
    result["index_ram_bytes_per_study"] = round((rss_mib() - rss_before) * 2**20 / size, 1)
    backend = app.state.backend
    index = backend.index

    queries = [f"benchmark query {number}" for number in range(args.queries)]
    query_vectors = encoder.encode_text(queries)
    for text in queries:
        backend.query_vector(text)  # fill the query cache, so no timed layer includes the encoder

    if index.stats.kind == "hnsw":
        truth = ids[exact_top_k(vectors, query_vectors, 10)]
        found = np.stack([index.search(vector, 10).study_pks for vector in query_vectors])
        result["recall_at_10_on_queries"] = round(recall_at_k(truth, found), 4)
        with app.state.session_factory() as session:
            mask = backend.filters_mask(session, SearchFilters(sex="F"))
        kept_rows = np.flatnonzero(mask)
        truth = ids[kept_rows[exact_top_k(vectors[kept_rows], query_vectors, 10)]]
        found = np.stack([index.search(vector, 10, mask=mask).study_pks for vector in query_vectors])
        result["recall_at_10_filtered_50_percent"] = round(recall_at_k(truth, found), 4)
    del vectors

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{server.config.port}"

    timings: dict[str, dict[str, object]] = {}
    try:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            for name, params in FILTERS.items():
                filters = SearchFilters(**params)
                timings[name] = time_layers(app, index, client, queries, query_vectors, filters, params, SearchService)
                print(f"[{size}] {name}: {timings[name]}", flush=True)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    result["latency"] = timings
    app.state.engine.dispose()
    return result


def time_layers(app, index, client, queries, query_vectors, filters, params, service_type) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Time FAISS alone, the service and HTTP over the same queries; filtered FAISS includes computing the mask.

    Each layer gets wall-clock and process CPU percentiles. The CPU time
    counts every thread of this process (the uvicorn server runs in one), so
    it shows the cost of a query even when other jobs share the CPU.
    """
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in ("faiss", "service", "http")}
    backend = app.state.backend
    with app.state.session_factory() as session:
        service = service_type(session, backend)

        def run_faiss(text: str, vector: np.ndarray) -> None:
            index.search(vector, 20, mask=backend.filters_mask(session, filters))

        def run_service(text: str, vector: np.ndarray) -> None:
            service.search(text, filters, limit=20)

        def run_http(text: str, vector: np.ndarray) -> None:
            response = client.get("/api/search", params={"q": text, "limit": 20, **params})
            if response.status_code != 200:
                raise RuntimeError(f"/api/search returned {response.status_code}: {response.text[:200]}")

        layers = {"faiss": run_faiss, "service": run_service, "http": run_http}
        for text, vector in zip(queries, query_vectors):
            for name, run in layers.items():
                wall, cpu = time.perf_counter(), time.process_time()
                run(text, vector)
                samples[name][0].append((time.perf_counter() - wall) * 1000)
                samples[name][1].append((time.process_time() - cpu) * 1000)
        mode = service.search(queries[0], filters, limit=20).mode

    result: dict[str, object] = {}
    for name, (wall_ms, cpu_ms) in samples.items():
        result[name] = {**percentiles(wall_ms), "cpu_p50_ms": round(statistics.median(cpu_ms), 3)}
    result["http_over_faiss_p50"] = round(result["http"]["p50_ms"] / result["faiss"]["p50_ms"], 2)  # type: ignore[index]
    result["http_over_faiss_cpu_p50"] = round(result["http"]["cpu_p50_ms"] / max(result["faiss"]["cpu_p50_ms"], 1e-3), 2)  # type: ignore[index]
    result["mode"] = mode
    return result


def time_text_tower(queries: list[str]) -> dict[str, float]:
    """Time the default model's encode_text, one query at a time, after one warm-up call."""
    from embeddings.factory import load_encoder
    from search_app.app import limit_search_threads

    encoder = load_encoder("default", device="cpu")
    limit_search_threads(1)  # as create_app does for the server
    encoder.encode_text(["warm up"])
    samples = []
    for text in queries:
        started = time.perf_counter()
        encoder.encode_text([text])
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--dimension", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-m", type=int, default=IndexConfig().hnsw_m)
    parser.add_argument("--ef-construction", type=int, default=IndexConfig().hnsw_ef_construction)
    parser.add_argument("--max-ef-search", type=int, default=IndexConfig().max_ef_search)
    parser.add_argument("--text-tower", action="store_true", help="Also time the default model's text tower.")
    parser.add_argument("--json", type=Path, help="Write the results to this file.")
    parser.add_argument("--work-dir", type=Path, help="Folder for the throw-away catalogs (default: a temporary folder).")
    args = parser.parse_args()

    import faiss

    report: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "command": " ".join(sys.argv),
        "results": [],
    }
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        for size in args.sizes:
            report["results"].append(run_size(size, args, Path(work)))  # type: ignore[union-attr]
            if args.json:
                args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.text_tower:
        report["text_tower"] = time_text_tower([f"dilated LV with reduced EF, case {number}" for number in range(50)])
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
