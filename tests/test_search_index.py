"""FAISS index: exact and HNSW search, filtered search, files on disk."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from cmr_search.settings import Settings
from search_app.errors import IndexMismatchError
from search_app.index_store import index_paths, load_index, save_index
from search_app.vector_index import IndexConfig, build_study_index, exact_top_k, recall_at_k

DIMENSION = 32


def clustered_vectors(count: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres, a stand-in for embeddings that cluster by finding."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIMENSION))
    vectors = centres[rng.integers(clusters, size=count)] + rng.normal(scale=0.6, size=(count, DIMENSION))
    vectors = vectors.astype(np.float32)
    faiss.normalize_L2(vectors)
    return vectors


def sparse_ids(count: int, seed: int = 1) -> np.ndarray:
    """Catalog-like primary keys: increasing with gaps, not 0..n-1."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(1, 5, size=count)).astype(np.int64)


def brute_force(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[int]:
    scores = vectors @ (query / np.linalg.norm(query))
    order = np.lexsort((ids, -scores))
    ranked = ids[order]
    if allowed is not None:
        ranked = ranked[np.isin(ranked, allowed)]
    return ranked[:k].tolist()


def test_flat_index_matches_brute_force() -> None:
    vectors, ids = clustered_vectors(2_000), sparse_ids(2_000)
    index = build_study_index("model-a", ids, vectors)
    query = clustered_vectors(1, seed=9)[0]

    ranking = index.search(query, 20)

    assert index.stats.kind == "flat"
    assert ranking.mode == "exact"
    assert ranking.study_pks.tolist() == brute_force(vectors, ids, query, 20)
    assert ranking.considered == 2_000
    np.testing.assert_allclose(ranking.scores, np.sort(vectors @ query)[::-1][:20], rtol=1e-5)


def test_hnsw_above_threshold_meets_recall() -> None:
    vectors, ids = clustered_vectors(6_000), sparse_ids(6_000)
    config = IndexConfig(exact_max_studies=1_000, hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=16)

    index = build_study_index("model-a", ids, vectors, config)

    assert index.stats.kind == "hnsw"
    assert index.stats.recall_at_10 is not None
    assert index.stats.recall_at_10 >= 0.95
    assert index.stats.ef_search >= 16
    queries = clustered_vectors(50, seed=5)
    truth = ids[exact_top_k(vectors, queries, 10)]
    found = np.stack([index.search(query, 10).study_pks for query in queries])
    assert recall_at_k(truth, found) >= 0.9


@pytest.mark.parametrize("kind_threshold", [100_000, 1_000], ids=["flat", "hnsw"])
def test_filter_keeping_one_percent_returns_its_true_top(kind_threshold: int) -> None:
    vectors, ids = clustered_vectors(8_000), sparse_ids(8_000)
    config = IndexConfig(exact_max_studies=kind_threshold, hnsw_m=16, hnsw_ef_construction=40)
    index = build_study_index("model-a", ids, vectors, config)
    allowed = np.sort(np.random.default_rng(3).choice(ids, size=80, replace=False))
    query = clustered_vectors(1, seed=11)[0]

    ranking = index.search(query, 30, candidates=allowed)

    assert set(ranking.study_pks.tolist()) <= set(allowed.tolist())
    assert ranking.study_pks.tolist() == brute_force(vectors, ids, query, 30, allowed)
    assert ranking.considered == 80


def test_large_filter_on_hnsw_uses_selector_without_leaks() -> None:
    vectors, ids = clustered_vectors(8_000), sparse_ids(8_000)
    config = IndexConfig(exact_max_studies=1_000, filtered_exact_max=500, hnsw_m=16, hnsw_ef_construction=40)
    index = build_study_index("model-a", ids, vectors, config)
    allowed = ids[::5]  # 20 % of the studies: above filtered_exact_max, so HNSW with an IDSelector
    queries = clustered_vectors(20, seed=12)

    rankings = [index.search(query, 10, candidates=allowed) for query in queries]

    assert {ranking.mode for ranking in rankings} == {"approximate-filtered"}
    for ranking in rankings:
        assert np.isin(ranking.study_pks, allowed).all()
        assert len(ranking.study_pks) == 10
    truth = np.array([brute_force(vectors, ids, query, 10, allowed) for query in queries])
    assert recall_at_k(truth, np.stack([ranking.study_pks for ranking in rankings])) >= 0.9


def test_candidates_outside_index_are_ignored() -> None:
    vectors, ids = clustered_vectors(100), sparse_ids(100)
    index = build_study_index("model-a", ids, vectors)

    ranking = index.search(vectors[0], 10, candidates=np.array([ids[0], ids[-1] + 1000, -5], dtype=np.int64))

    assert ranking.study_pks.tolist() == [ids[0]]
    assert ranking.considered == 1


def test_vector_lookup_by_study_pk() -> None:
    vectors, ids = clustered_vectors(50), sparse_ids(50)
    index = build_study_index("model-a", ids, vectors)

    np.testing.assert_allclose(index.vector(int(ids[7])), vectors[7], rtol=1e-6)
    assert index.vector(int(ids[-1]) + 1) is None


def test_build_rejects_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="not unique"):
        build_study_index("model-a", np.array([1, 1]), clustered_vectors(2))


def test_empty_index_returns_nothing(settings: Settings) -> None:
    index = build_study_index("model-a", np.empty(0, np.int64), np.empty((0, DIMENSION), np.float32))
    save_index(settings, index)

    loaded = load_index(settings, "model-a")

    assert loaded is not None
    assert len(loaded) == 0
    assert loaded.search(np.ones(DIMENSION), 5).study_pks.size == 0


@pytest.mark.parametrize("kind_threshold", [100_000, 100], ids=["flat", "hnsw"])
def test_save_and_load_round_trip(settings: Settings, kind_threshold: int) -> None:
    vectors, ids = clustered_vectors(500), sparse_ids(500)
    index = build_study_index("model-a/1.0", ids, vectors, IndexConfig(exact_max_studies=kind_threshold, hnsw_m=8))
    path = save_index(settings, index)

    loaded = load_index(settings, "model-a/1.0")

    assert path.parent == settings.index_dir
    assert "/" not in path.name
    assert loaded is not None
    assert loaded.stats == index.stats
    np.testing.assert_array_equal(loaded.sorted_ids(), np.sort(ids))
    assert loaded.search(vectors[3], 5).study_pks.tolist() == index.search(vectors[3], 5).study_pks.tolist()
    assert [item.name for item in settings.index_dir.iterdir() if item.name.startswith(".")] == []


def test_load_missing_index_returns_none(settings: Settings) -> None:
    assert load_index(settings, "never-built") is None


def test_index_of_other_model_is_rejected(settings: Settings) -> None:
    other = build_study_index("model-b", sparse_ids(20), clustered_vectors(20))
    save_index(settings, other)
    for source, target in zip(index_paths(settings, "model-b"), index_paths(settings, "model-a")):
        target.write_bytes(source.read_bytes())

    with pytest.raises(IndexMismatchError, match="built by model model-b") as raised:
        load_index(settings, "model-a")

    assert "cmr-search reindex" in raised.value.message


def test_torn_write_is_detected(settings: Settings) -> None:
    save_index(settings, build_study_index("model-a", sparse_ids(20), clustered_vectors(20)))
    index_path, sidecar_path = index_paths(settings, "model-a")
    newer = build_study_index("model-a", sparse_ids(30), clustered_vectors(30))
    faiss.write_index(newer.index, str(index_path))  # the index moved in, the sidecar did not

    with pytest.raises(IndexMismatchError, match="different builds"):
        load_index(settings, "model-a")

    sidecar_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="missing or invalid"):
        load_index(settings, "model-a")


def test_sidecar_records_recall_and_build(settings: Settings) -> None:
    index = build_study_index("model-a", sparse_ids(400), clustered_vectors(400), IndexConfig(exact_max_studies=100, hnsw_m=8))
    save_index(settings, index)

    sidecar = json.loads(index_paths(settings, "model-a")[1].read_text())

    assert sidecar["stats"]["kind"] == "hnsw"
    assert sidecar["stats"]["recall_at_10"] >= 0.95
    assert sidecar["stats"]["count"] == 400
    assert sidecar["faiss_version"] == faiss.__version__


def test_mask_and_candidates_agree_on_hnsw() -> None:
    vectors, ids = clustered_vectors(8_000), sparse_ids(8_000)
    index = build_study_index("model-a", ids, vectors, IndexConfig(exact_max_studies=1_000, filtered_exact_max=500, hnsw_m=16))
    mask = np.zeros(len(ids), dtype=bool)
    mask[::3] = True
    query = clustered_vectors(1, seed=21)[0]

    by_mask = index.search(query, 15, mask=mask)
    by_ids = index.search(query, 15, candidates=ids[mask])
    both = index.search(query, 15, candidates=ids[:4000], mask=mask)

    assert by_mask.mode == "approximate-filtered"
    assert by_mask.study_pks.tolist() == by_ids.study_pks.tolist()
    assert np.isin(by_mask.study_pks, ids[mask]).all()
    assert np.isin(both.study_pks, ids[:4000][mask[:4000]]).all()
    assert both.considered == int(mask[:4000].sum())


def test_dense_filter_on_flat_matches_brute_force() -> None:
    vectors, ids = clustered_vectors(3_000), sparse_ids(3_000)
    index = build_study_index("model-a", ids, vectors)
    mask = np.random.default_rng(8).random(3_000) < 0.6  # above the dense fraction: full scan, then subset
    query = clustered_vectors(1, seed=13)[0]

    ranking = index.search(query, 25, mask=mask)

    assert ranking.mode == "exact"
    assert ranking.considered == int(mask.sum())
    assert ranking.study_pks.tolist() == brute_force(vectors, ids, query, 25, ids[mask])
