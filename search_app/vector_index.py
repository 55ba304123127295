"""The FAISS index of study vectors, keyed by catalog primary keys.

The index is an ``IndexIDMap2`` whose ids are ``studies.id``. Under it sits an
exact ``IndexFlatIP`` while the archive is small, and an ``IndexHNSWFlat``
(inner product) above :attr:`IndexConfig.exact_max_studies`. Vectors are
L2-normalised, so inner product is cosine similarity. Both inner indexes keep
the raw vectors in a flat array, which this module reads directly to score a
filtered candidate set exactly and to seed "more like this".

When the installed faiss has GPUs, unfiltered searches run on an exact GPU
copy of the vectors. Files are always written from the CPU index.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import faiss
import numpy as np

logger = logging.getLogger(__name__)

KIND_EXACT = "flat"
KIND_HNSW = "hnsw"
# An exact filtered search scans all rows, rather than gathering the kept
# ones, when more than this fraction is kept.
DENSE_SUBSET_FRACTION = 0.1


@dataclass(frozen=True)
class IndexConfig:
    """Build and search parameters of an index.

    Below ``exact_max_studies`` vectors the index is exact. Above it, HNSW is
    built with ``hnsw_m`` links per node and ``hnsw_ef_construction``, and
    ``ef_search`` starts at ``hnsw_ef_search`` and doubles (up to
    ``max_ef_search``) until recall@10 against exact search on probe queries
    reaches ``target_recall_at_10`` on every group of probe queries. A filtered search with at most
    ``filtered_exact_max`` candidates scores every candidate exactly.
    """

    exact_max_studies: int = 50_000
    # M=16, efConstruction=40 builds 10^5 256-d vectors in about 17 s on a
    # loaded 2-core CPU, against 84 s for M=32, efConstruction=80; efSearch
    # tuning then recovers the recall.
    hnsw_m: int = 16
    hnsw_ef_construction: int = 40
    hnsw_ef_search: int = 32
    max_ef_search: int = 4096
    target_recall_at_10: float = 0.95
    recall_probes: int = 200
    filtered_exact_max: int = 20_000
    seed: int = 0


@dataclass(frozen=True)
class IndexStats:
    """Build statistics of an index, stored beside the index file."""

    model_id: str
    dimension: int
    count: int
    kind: str
    hnsw_m: int | None
    ef_construction: int | None
    ef_search: int | None
    recall_at_10: float | None
    recall_probes: int
    build_seconds: float


@dataclass(frozen=True)
class Ranking:
    """Study ids and cosine similarities, best first, and how they were found.

    ``considered`` counts the indexed studies the search ranked (all of them,
    or the candidates that are in the index).
    """

    study_pks: np.ndarray
    scores: np.ndarray
    mode: str
    considered: int


class StudyIndex:
    """A loaded index of one model's study vectors, ready to search."""

    def __init__(self, index: faiss.Index, stats: IndexStats, config: IndexConfig | None = None) -> None:
        self.index = index if isinstance(index, faiss.IndexIDMap2) else faiss.downcast_index(index)
        if not isinstance(self.index, faiss.IndexIDMap2):
            raise TypeError(f"expected an IndexIDMap2, got {type(self.index).__name__}")
        self.stats = stats
        self.config = config or IndexConfig()
        self.ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[self._order]
        self._inner = faiss.downcast_index(self.index.index)
        self._vectors = _flat_vectors(self.index)
        self._gpu_index = _gpu_copy(self._vectors) if faiss.get_num_gpus() > 0 and len(self.ids) else None

    @property
    def model_id(self) -> str:
        return self.stats.model_id

    @property
    def dimension(self) -> int:
        return self.stats.dimension

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def uses_gpu(self) -> bool:
        return self._gpu_index is not None

    def sorted_ids(self) -> np.ndarray:
        """Return the catalog primary keys in the index, ascending."""
        return self._sorted_ids

    def position(self, study_pk: int) -> int | None:
        """Return the index position (row) of ``study_pk``, or None when it is not indexed."""
        positions = self._positions(np.array([study_pk], dtype=np.int64))
        return int(positions[0]) if len(positions) else None

    def vector(self, study_pk: int) -> np.ndarray | None:
        """Return the stored vector of ``study_pk``, or None when it is not indexed."""
        position = self.position(study_pk)
        return None if position is None else np.array(self._vectors[position])

    def search(
        self, query: np.ndarray, k: int, candidates: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> Ranking:
        """Rank the ``k`` studies most similar to ``query`` (dimension,), optionally within a subset.

        ``candidates`` are catalog primary keys, and keys not in the index are
        ignored. ``mask`` is a boolean array over index positions. When both
        are given, a study must pass both. The restriction happens inside
        the search, so the result is the true top-k of the subset: exact when
        the subset has at most ``filtered_exact_max`` studies or the index is
        flat, else HNSW-approximate.
        """
        query = _normalised(query, self.dimension)
        if len(self.ids) == 0:
            return Ranking(np.empty(0, np.int64), np.empty(0, np.float32), "exact", 0)
        if candidates is None and mask is None:
            return self._search_all(query, k)

        if candidates is not None:
            positions = np.sort(self._positions(candidates))
            if mask is not None:
                positions = positions[mask[positions]]
        else:
            positions = np.flatnonzero(mask)
        if len(positions) <= self.config.filtered_exact_max or self.stats.kind == KIND_EXACT:
            return self._search_positions(query, k, positions)
        return self._search_hnsw_filtered(query, k, positions)

    def _search_all(self, query: np.ndarray, k: int) -> Ranking:
        k = max(1, min(k, len(self.ids)))
        if self._gpu_index is not None:
            scores, positions = self._gpu_index.search(query[None, :], k)
            valid = positions[0] >= 0
            return Ranking(self.ids[positions[0][valid]], scores[0][valid], "exact-gpu", len(self.ids))
        if self.stats.kind == KIND_HNSW:
            params = faiss.SearchParametersHNSW(efSearch=max(self.stats.ef_search or 0, k))
            scores, ids = self.index.search(query[None, :], k, params=params)
            valid = ids[0] >= 0
            return Ranking(ids[0][valid], scores[0][valid], "approximate", len(self.ids))
        # One matrix-vector product in numpy takes a quarter of the time of
        # IndexFlatIP.search for a single query (10^4 × 256: 0.35 ms vs 1.5 ms).
        scores = self._vectors @ query
        top = _top_k(scores, k)
        return Ranking(self.ids[top], scores[top], "exact", len(self.ids))

    def _search_positions(self, query: np.ndarray, k: int, positions: np.ndarray) -> Ranking:
        if len(positions) > DENSE_SUBSET_FRACTION * len(self.ids):
            # Scanning every row sequentially is faster than gathering a large
            # share of them (50 000 of 10^5 rows: 29 ms of CPU to gather).
            scores = (self._vectors @ query)[positions]
        else:
            scores = self._vectors[positions] @ query
        top = _top_k(scores, k)
        return Ranking(self.ids[positions[top]], scores[top], "exact", len(positions))

    def _search_hnsw_filtered(self, query: np.ndarray, k: int, positions: np.ndarray) -> Ranking:
        # HNSW visits non-candidates on its way but never returns them. The
        # fewer candidates, the larger the beam must be to collect k of them,
        # so efSearch grows with the inverse of the kept fraction.
        kept = len(positions)
        selectivity = kept / len(self.ids)
        ceiling = 4 * self.config.max_ef_search
        ef_search = min(ceiling, max(self.stats.ef_search or 0, k) * math.ceil(1 / selectivity))
        bits = np.zeros(len(self.ids), dtype=bool)
        bits[positions] = True
        packed = np.packbits(bits, bitorder="little")  # faiss reads bit i of byte i // 8, least significant first
        selector = faiss.IDSelectorBitmap(len(self.ids), faiss.swig_ptr(packed))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef_search)
        # The inner HNSW index numbers vectors by position, which the bitmap uses.
        scores, found = self._inner.search(query[None, :], min(k, kept), params=params)
        valid = found[0] >= 0
        return Ranking(self.ids[found[0][valid]], scores[0][valid], "approximate-filtered", kept)

    def _positions(self, study_pks: np.ndarray) -> np.ndarray:
        study_pks = np.asarray(study_pks, dtype=np.int64)
        slots = np.searchsorted(self._sorted_ids, study_pks)
        slots = np.clip(slots, 0, max(len(self._sorted_ids) - 1, 0))
        found = self._sorted_ids[slots] == study_pks if len(self._sorted_ids) else np.zeros(len(study_pks), bool)
        return self._order[slots[found]]


def build_study_index(
    model_id: str,
    study_pks: np.ndarray,
    vectors: np.ndarray,
    config: IndexConfig | None = None,
    probe_queries: np.ndarray | None = None,
) -> StudyIndex:
    """Build an index over ``vectors`` (n, dimension) with ids ``study_pks`` (n,).

    ``probe_queries`` (m, dimension), for example the model's zero-shot prompt
    embeddings, are added to the recall probes of an HNSW index, because text
    queries sit in a different region of the space than study vectors.
    """
    config = config or IndexConfig()
    started = time.perf_counter()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    study_pks = np.ascontiguousarray(study_pks, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) != len(study_pks):
        raise ValueError(f"vectors have shape {vectors.shape} but there are {len(study_pks)} ids")
    if len(np.unique(study_pks)) != len(study_pks):
        raise ValueError("study ids are not unique")
    dimension = vectors.shape[1]
    faiss.normalize_L2(vectors)

    use_hnsw = len(vectors) > config.exact_max_studies
    if use_hnsw:
        inner = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = config.hnsw_ef_construction
    else:
        inner = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIDMap2(inner)
    # Hand the inner index to the IDMap, so it lives as long as the IDMap and
    # not as long as this function's Python proxy.
    inner.this.disown()
    index.own_fields = True
    index.add_with_ids(vectors, study_pks)
    add_seconds = time.perf_counter() - started

    ef_search, recall, probes = None, None, 0
    if use_hnsw:
        ef_search, recall, probes = tune_ef_search(index, vectors, config, probe_queries)
    stats = IndexStats(
        model_id=model_id,
        dimension=dimension,
        count=len(vectors),
        kind=KIND_HNSW if use_hnsw else KIND_EXACT,
        hnsw_m=config.hnsw_m if use_hnsw else None,
        ef_construction=config.hnsw_ef_construction if use_hnsw else None,
        ef_search=ef_search,
        recall_at_10=recall,
        recall_probes=probes,
        build_seconds=round(time.perf_counter() - started, 3),
    )
    logger.info(
        "built %s index of %d studies (dimension %d) in %.1f s (adding took %.1f s)%s",
        stats.kind, stats.count, dimension, stats.build_seconds, add_seconds,
        f", recall@10 {recall:.3f} at efSearch {ef_search}" if recall is not None else "",
    )  # fmt: skip
    return StudyIndex(index, stats, config)


def tune_ef_search(
    index: faiss.IndexIDMap2, vectors: np.ndarray, config: IndexConfig, probe_queries: np.ndarray | None = None
) -> tuple[int, float, int]:
    """Find the smallest efSearch whose recall@10 against exact search meets the target.

    Recall is measured per probe group (see :func:`recall_probes`) and the
    worst group counts, because queries that fall between clusters need a
    wider beam than queries next to a stored vector. Returns efSearch, the
    worst-group recall@10 at it and the number of probes. When even
    ``max_ef_search`` misses the target, that value and its recall are
    returned and a warning is logged.
    """
    groups = recall_probes(vectors, config.recall_probes, config.seed, probe_queries)
    ids = faiss.vector_to_array(index.id_map)
    truths = {name: ids[exact_top_k(vectors, probes, 10)] for name, probes in groups.items()}
    ef_search, recall = config.hnsw_ef_search, 0.0
    while True:
        params = faiss.SearchParametersHNSW(efSearch=ef_search)
        recall = min(recall_at_k(truths[name], index.search(probes, 10, params=params)[1]) for name, probes in groups.items())
        if recall >= config.target_recall_at_10 or ef_search >= config.max_ef_search:
            break
        ef_search = min(ef_search * 2, config.max_ef_search)
    if recall < config.target_recall_at_10:
        logger.warning(
            "HNSW recall@10 is %.3f at the maximum efSearch %d, below the target %.2f",
            recall, ef_search, config.target_recall_at_10,
        )  # fmt: skip
    return ef_search, recall, sum(len(probes) for probes in groups.values())


def recall_probes(vectors: np.ndarray, count: int, seed: int, extra: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Return groups of unit probe queries for measuring recall.

    ``near``: stored vectors plus Gaussian noise of norm about 0.5, so a probe
    is not its own nearest neighbour. ``between``: sums of two random stored
    vectors, which land between clusters as cross-modal text queries tend to.
    ``extra``: caller-supplied queries such as prompt embeddings.
    """
    rng = np.random.default_rng(seed)
    size = min(count, len(vectors))
    near = vectors[rng.choice(len(vectors), size=size, replace=False)]
    near = near + rng.normal(scale=0.5 / math.sqrt(vectors.shape[1]), size=near.shape)
    between = vectors[rng.integers(len(vectors), size=size)] + vectors[rng.integers(len(vectors), size=size)]
    groups = {"near": near, "between": between}
    if extra is not None and len(extra):
        groups["extra"] = np.asarray(extra)
    for name, probes in groups.items():
        probes = np.ascontiguousarray(probes, dtype=np.float32)
        faiss.normalize_L2(probes)
        groups[name] = probes
    return groups


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 65_536) -> np.ndarray:
    """Return the row numbers (queries, k) of the exact top-k inner products, in chunks of ``chunk`` rows."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        scores = queries @ vectors[start : start + chunk].T
        rows = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        merged_scores = np.hstack([best_scores, scores])
        merged_rows = np.hstack([best_rows, rows])
        keep = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(merged_scores, keep, axis=1)
        best_rows = np.take_along_axis(merged_rows, keep, axis=1)
    return best_rows


def recall_at_k(truth: np.ndarray, found: np.ndarray) -> float:
    """Return the mean fraction of each row of ``truth`` that appears in the same row of ``found``."""
    hits = sum(len(set(row_truth.tolist()) & set(row_found.tolist())) for row_truth, row_found in zip(truth, found))
    return hits / truth.size if truth.size else 1.0


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the k largest scores, best first, ties broken by position."""
    k = min(k, len(scores))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


def _normalised(query: np.ndarray, dimension: int) -> np.ndarray:
    query = np.asarray(query, dtype=np.float32).reshape(-1)
    if query.shape[0] != dimension:
        raise ValueError(f"query vector has dimension {query.shape[0]}, the index has {dimension}")
    norm = float(np.linalg.norm(query))
    return np.ascontiguousarray(query / norm if norm > 0 else query)


def _flat_vectors(index: faiss.IndexIDMap2) -> np.ndarray:
    """Return a zero-copy (n, d) view of the vectors stored by the flat or HNSW index under ``index``."""
    inner = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    if not isinstance(storage, faiss.IndexFlat):
        raise TypeError(f"unsupported inner index {type(inner).__name__}; expected IndexFlatIP or IndexHNSWFlat")
    count, dimension = storage.ntotal, storage.d
    if count == 0:
        return np.empty((0, dimension), dtype=np.float32)
    return faiss.rev_swig_ptr(storage.get_xb(), count * dimension).reshape(count, dimension)


def _gpu_copy(vectors: np.ndarray) -> faiss.Index | None:
    # NOTE: this path needs a faiss build with CUDA; the project's tests run on
    # faiss-cpu, where get_num_gpus() is 0 and this function is never called.
    try:
        resources = faiss.StandardGpuResources()
        gpu_index = faiss.GpuIndexFlatIP(resources, vectors.shape[1])
        gpu_index.add(np.ascontiguousarray(vectors))
        gpu_index.referenced_resources = resources  # keep the resources alive with the index
    except (AttributeError, RuntimeError) as error:
        logger.warning("faiss reports GPUs but the GPU index could not be built, searching on the CPU: %s", error)
        return None
    logger.info("searching %d vectors on the GPU", vectors.shape[0])
    return gpu_index
