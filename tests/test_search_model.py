"""Search with the shipped default model over the phantom archive, whose labels are known.

The archive is catalogued by the indexer, its reports imported, and then the
build stage embeds it with ``load_encoder("default")``, scores findings,
renders previews and builds the index, as ``cmr-search index`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from indexer.catalog.models import Study
from indexer.catalog.session import create_catalog_engine, session_factory
from search_app.build import BuildSummary, run_build
from search_app.filters import SearchFilters
from search_app.index_store import load_index
from search_app.query import SearchBackend, SearchService

# One plain radiologist's query per phantom finding label.
FINDING_QUERIES = {
    "lv_systolic_dysfunction": "reduced left ventricular ejection fraction",
    "lv_dilation": "dilated left ventricle",
    "lv_hypertrophy": "left ventricular hypertrophy",
    "rv_dilation": "dilated right ventricle",
    "rv_dysfunction": "impaired right ventricular systolic function",
    "regional_wma": "regional wall motion abnormality",
    "lge": "late gadolinium enhancement",
    "pericardial_effusion": "pericardial effusion",
}


@dataclass
class IndexedPhantom:
    settings: Settings
    sessions: sessionmaker[Session]
    encoder: Any
    summary: BuildSummary
    labels: dict[int, dict[str, bool]]  # study pk → phantom labels
    ground_truth: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def indexed_phantom(
    phantom_archive: Path, phantom_ground_truth: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexedPhantom]:
    from embeddings.factory import load_encoder
    from indexer.reports import import_reports
    from indexer.scan import catalog_archive

    data_dir = tmp_path_factory.mktemp("search-model")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'catalog.sqlite'}")
    settings.ensure_dirs()
    catalog_archive(settings, [phantom_archive / "dicom"], workers=1, progress=False)
    engine = create_catalog_engine(settings.database_url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        import_reports(session, phantom_archive / "reports.csv")
    encoder = load_encoder("default", device="cpu", clip_cache_dir=settings.clip_cache_dir)
    summary = run_build(settings, sessions, encoder, progress=False)

    truth_by_uid = {row["study_instance_uid"]: row for row in phantom_ground_truth}
    with sessions() as session:
        pks = {uid: pk for uid, pk in session.execute(select(Study.study_instance_uid, Study.id))}
    ground_truth = {pks[uid]: row for uid, row in truth_by_uid.items() if uid in pks}
    labels = {pk: row["labels"] for pk, row in ground_truth.items()}
    yield IndexedPhantom(settings, sessions, encoder, summary, labels, ground_truth)
    engine.dispose()


def service(phantom: IndexedPhantom, session: Session) -> SearchService:
    index = load_index(phantom.settings, phantom.encoder.model_id)
    return SearchService(session, SearchBackend(phantom.settings, phantom.encoder, index))


def test_build_embedded_every_study(indexed_phantom: IndexedPhantom) -> None:
    summary = indexed_phantom.summary

    assert summary.embedded == len(indexed_phantom.labels)
    assert summary.embedding_failures == 0
    assert summary.preview_failures == 0
    assert summary.previews_rendered > 0
    assert summary.indexed == len(indexed_phantom.labels)


# The shipped default model does not rank a positive study first for these
# findings on this fixture; its zero-shot test AUCs in docs/evaluation are
# 0.90 (LV dilation), 0.47 (RV dysfunction), 0.42 (regional WMA) and 0.61 (LGE).
# strict=True turns an unexpected pass into a failure, so a better model
# forces these marks to be removed.
MODEL_LIMITED_FINDINGS = {
    "lv_dilation": "top hit lacks LV dilation; hits 2-5 have it",
    "rv_dysfunction": "zero-shot AUC 0.47 on the phantom test split",
    "regional_wma": "zero-shot AUC 0.42 on the phantom test split",
    "lge": "zero-shot AUC 0.61 on the phantom test split",
}


@pytest.mark.parametrize(
    "finding",
    [
        pytest.param(name, marks=pytest.mark.xfail(reason=MODEL_LIMITED_FINDINGS[name], strict=True))
        if name in MODEL_LIMITED_FINDINGS
        else name
        for name in FINDING_QUERIES
    ],
)
def test_finding_query_ranks_study_with_finding_first(indexed_phantom: IndexedPhantom, finding: str) -> None:
    if not any(labels[finding] for labels in indexed_phantom.labels.values()):
        pytest.fail(f"the phantom fixture has no study with {finding}; it must cover every finding")

    with indexed_phantom.sessions() as session:
        page = service(indexed_phantom, session).search(FINDING_QUERIES[finding], limit=5)

    top = page.hits[0]
    ranked = [(hit.study_pk, indexed_phantom.labels[hit.study_pk][finding]) for hit in page.hits]
    assert indexed_phantom.labels[top.study_pk][finding], f"{FINDING_QUERIES[finding]!r} ranked {ranked}"


def test_abbreviated_query_matches_spelled_out(indexed_phantom: IndexedPhantom) -> None:
    with indexed_phantom.sessions() as session:
        search = service(indexed_phantom, session)
        short = search.search("dilated LV with reduced EF", limit=3)
        long = search.search("dilated left ventricle with reduced ejection fraction", limit=3)

    assert short.expanded_query is not None
    assert [hit.study_pk for hit in short.hits] == [hit.study_pk for hit in long.hits]
    top_labels = indexed_phantom.labels[short.hits[0].study_pk]
    assert top_labels["lv_dilation"] or top_labels["lv_systolic_dysfunction"]


def test_filter_never_leaks_with_real_model(indexed_phantom: IndexedPhantom) -> None:
    sexes = {pk: row.get("sex") for pk, row in indexed_phantom.ground_truth.items()}
    with indexed_phantom.sessions() as session:
        search = service(indexed_phantom, session)
        for sex in ("F", "M"):
            page = search.search("dilated left ventricle", SearchFilters(sex=sex), limit=100)
            stored = {pk: session.get(Study, pk).sex for pk in indexed_phantom.labels}
            assert {hit.study_pk for hit in page.hits} == {pk for pk, value in stored.items() if value == sex}
            assert all(hit.sex == sex for hit in page.hits)
    assert sexes  # ground truth rows were matched to catalog studies


def test_cards_link_rendered_previews(indexed_phantom: IndexedPhantom) -> None:
    from search_app.app import create_app

    client = TestClient(create_app(indexed_phantom.settings, indexed_phantom.encoder, migrate=False))
    body = client.get("/api/search", params={"q": "pericardial effusion", "limit": 3}).json()

    previews = [preview for hit in body["hits"] for preview in hit["previews"]]
    assert previews, "no card links a preview"
    assert {preview["view"] for preview in previews} & {"sax"}
    for preview in previews:
        response = client.get(preview["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
    first = body["hits"][0]
    assert first["top_findings"], "no zero-shot findings on the card"
    assert body["trained_on_synthetic_data"] is True


def test_study_page_lists_series_in_anatomical_order(indexed_phantom: IndexedPhantom) -> None:
    study_pk = next(iter(indexed_phantom.labels))
    with indexed_phantom.sessions() as session:
        detail = service(indexed_phantom, session).study_detail(study_pk)

    kinds = [series.kind for series in detail.series]
    assert kinds[0] == "cine"
    assert kinds == sorted(kinds, key=lambda kind: ("cine", "lge", "mapping", "perfusion", "flow", "scout", "other").index(kind))
    assert all(series.preview_url for series in detail.series if series.kind == "cine")
    assert detail.impression
    assert {finding.name for finding in detail.findings} == set(FINDING_QUERIES)
