"""JSON API over a real app and catalog: responses, errors, and the start-up consistency check."""

from __future__ import annotations

import re

import json
import shutil

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cmr_search.cli import app as cli_app
from cmr_search.settings import Settings
from indexer.catalog.models import Study
from search_app.app import create_app
from search_app.commands import is_loopback
from search_app.errors import IndexMismatchError
from search_app.index_store import index_paths
from tests.search_fixtures import FINDINGS, KeywordEncoder, StudySpec, add_studies, index_catalog


@pytest.fixture
def indexed(settings: Settings, catalog: sessionmaker[Session]) -> tuple[Settings, sessionmaker[Session], list[int]]:
    specs = [StudySpec(findings=(finding,), sex="FM"[number % 2]) for number, finding in enumerate(FINDINGS * 3)]
    with catalog() as session:
        study_pks = add_studies(session, specs + [StudySpec()])
    index_catalog(settings, catalog, KeywordEncoder())
    return settings, catalog, study_pks


@pytest.fixture
def client(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> TestClient:
    return TestClient(create_app(indexed[0], KeywordEncoder()))


def test_search_returns_ranked_hits(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "pericardial effusion", "limit": 3})

    body = response.json()
    assert response.status_code == 200
    assert len(body["hits"]) == 3
    assert body["hits"][0]["top_findings"][0]["name"] == "pericardial_effusion"
    assert body["total"] == 25
    assert body["has_more"] is True
    assert body["trained_on_synthetic_data"] is True
    assert body["hits"][0]["score"] >= body["hits"][1]["score"] >= body["hits"][2]["score"]


def test_search_filters_from_query_string(client: TestClient) -> None:
    response = client.get("/api/search", params=[("q", "lge"), ("sex", "m"), ("view", "sax,4ch"), ("age_min", ""), ("limit", "100")])

    body = response.json()
    assert response.status_code == 200
    assert {hit["sex"] for hit in body["hits"]} == {"M"}
    assert body["total"] == 12


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "lge", "age_min": "old"}, "age_min must be a number, not 'old'"),
        ({"q": "lge", "date_from": "2024-13-01"}, "date_from must be a date as YYYY-MM-DD"),
        ({"q": "lge", "limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"q": "lge", "view": "apex"}, "unknown view(s) apex"),
        ({"q": "lge", "real_segments_only": "maybe"}, "real_segments_only must be true or false"),
    ],
)
def test_invalid_parameters_are_json_422(client: TestClient, params: dict[str, str], message: str) -> None:
    response = client.get("/api/search", params=params)

    assert response.status_code == 422
    assert set(response.json()) == {"detail"}
    assert message in response.json()["detail"]


def test_study_and_similar_endpoints(client: TestClient, indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    study_pk = indexed[2][0]

    study = client.get(f"/api/studies/{study_pk}")
    similar = client.get(f"/api/studies/{study_pk}/similar", params={"limit": 2})

    assert study.status_code == 200
    assert study.json()["study_instance_uid"].startswith("1.2.826.0.1.3680043.10.999.")
    assert study.json()["series"][0]["view"] == "sax"
    assert similar.status_code == 200
    assert similar.json()["seed_study_pk"] == study_pk
    assert study_pk not in [hit["study_pk"] for hit in similar.json()["hits"]]


def test_missing_study_is_json_404(client: TestClient) -> None:
    response = client.get("/api/studies/424242")

    assert response.status_code == 404
    assert response.json() == {"detail": "study 424242 is not in the catalog"}


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert {"/api/search", "/api/studies/{study_pk}", "/api/studies/{study_pk}/similar", "/api/stats"} <= set(paths)
    parameters = {item["name"] for item in paths["/api/search"]["get"]["parameters"]}
    assert {"q", "sex", "age_min", "age_max", "date_from", "date_to", "field_strength_t", "manufacturer", "view"} <= parameters
    assert client.get("/docs").status_code == 200


def test_stats_and_health(client: TestClient) -> None:
    stats = client.get("/api/stats").json()
    health = client.get("/api/health").json()

    assert stats["studies"] == 25
    assert stats["indexed_studies"] == 25
    assert health == {
        "status": "ok",
        "model_id": KeywordEncoder().model_id,
        "indexed_studies": 25,
        "index_kind": "flat",
        "detail": None,
    }


def test_server_error_is_json_without_trace(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    class BrokenEncoder(KeywordEncoder):
        def encode_text(self, texts):  # type: ignore[no-untyped-def]
            raise RuntimeError("secret internal state")

    client = TestClient(create_app(indexed[0], BrokenEncoder()), raise_server_exceptions=False)

    response = client.get("/api/search", params={"q": "lge"})

    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error; the server log has the details"}


def test_deleted_row_refused_at_start(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    settings, sessions, study_pks = indexed
    with sessions() as session:
        session.execute(delete(Study).where(Study.id == study_pks[5]))
        session.commit()

    with pytest.raises(IndexMismatchError) as raised:
        create_app(settings, KeywordEncoder())

    assert "1 indexed studies are no longer in the catalog" in raised.value.message
    assert f"cmr-search reindex --data-dir {settings.data_dir}" in raised.value.message


def test_new_embedding_missing_from_index_refused(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    settings, sessions, _ = indexed
    with sessions() as session:
        add_studies(session, [StudySpec(findings=("lge",))])
    from tests.search_fixtures import embed_with_keyword_encoder

    embed_with_keyword_encoder(sessions, KeywordEncoder())

    with pytest.raises(IndexMismatchError, match="1 embedded studies are missing from the index"):
        create_app(settings, KeywordEncoder())


def test_index_from_other_model_refused(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    settings, _, _ = indexed
    other = KeywordEncoder(model_id="keyword-test-2.0-ffff")
    for source, target in zip(index_paths(settings, KeywordEncoder().model_id), index_paths(settings, other.model_id)):
        shutil.copyfile(source, target)

    with pytest.raises(IndexMismatchError, match="built by model keyword-test-1.0-0000"):
        create_app(settings, other)


def test_embeddings_without_index_refused(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    settings, _, _ = indexed
    for path in index_paths(settings, KeywordEncoder().model_id):
        path.unlink()

    with pytest.raises(IndexMismatchError, match="no index file exists"):
        create_app(settings, KeywordEncoder())


def test_mismatch_served_as_503_when_allowed(indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    settings, sessions, study_pks = indexed
    with sessions() as session:
        session.execute(delete(Study).where(Study.id == study_pks[0]))
        session.commit()
    client = TestClient(create_app(settings, KeywordEncoder(), allow_mismatch=True))

    search = client.get("/api/search", params={"q": "lge"})
    health = client.get("/api/health").json()

    assert search.status_code == 503
    assert "cmr-search reindex" in search.json()["detail"]
    assert health["status"] == "index_mismatch"
    assert "cmr-search reindex" in health["detail"]


def test_empty_archive_serves_empty_results(settings: Settings) -> None:
    client = TestClient(create_app(settings, KeywordEncoder()))

    body = client.get("/api/search", params={"q": "lge"}).json()
    stats = client.get("/api/stats").json()

    assert body["hits"] == []
    assert body["total"] == 0
    assert stats["studies"] == 0


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("example.org", False)],
)
def test_loopback_detection(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_serve_refuses_remote_bind_without_flag(settings: Settings) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--data-dir", str(settings.data_dir), "--host", "0.0.0.0"])

    assert result.exit_code == 2


def test_serve_refuses_mismatch(indexed: tuple[Settings, sessionmaker[Session], list[int]], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, sessions, study_pks = indexed
    with sessions() as session:
        session.execute(delete(Study).where(Study.id == study_pks[0]))
        session.commit()
    monkeypatch.setattr("embeddings.factory.load_encoder", lambda *args, **kwargs: KeywordEncoder())
    served = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: served.append(args))

    result = CliRunner().invoke(
        cli_app, ["serve", "--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    )

    assert result.exit_code == 3
    assert served == []


def test_serve_remote_bind_warns(indexed: tuple[Settings, sessionmaker[Session], list[int]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    settings = indexed[0]
    monkeypatch.setattr("embeddings.factory.load_encoder", lambda *args, **kwargs: KeywordEncoder())
    served: list[dict[str, object]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: served.append(kwargs))

    result = CliRunner().invoke(
        cli_app,
        ["serve", "--data-dir", str(settings.data_dir), "--database-url", settings.database_url, "--host", "0.0.0.0", "--port", "8123", "--allow-remote"],
    )

    assert result.exit_code == 0, result.output
    assert served == [{"host": "0.0.0.0", "port": 8123, "log_level": "info", "access_log": False}]
    assert "login and audit are not built yet" in caplog.text


def test_reindex_rebuilds_after_drift(indexed: tuple[Settings, sessionmaker[Session], list[int]], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, sessions, study_pks = indexed
    with sessions() as session:
        session.execute(delete(Study).where(Study.id == study_pks[1]))
        session.commit()
    monkeypatch.setattr("embeddings.factory.load_encoder", lambda *args, **kwargs: KeywordEncoder())

    result = CliRunner().invoke(
        cli_app, ["reindex", "--data-dir", str(settings.data_dir), "--database-url", settings.database_url, "--index-only", "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["indexed"] == 24
    client = TestClient(create_app(settings, KeywordEncoder()))
    assert client.get("/api/stats").json()["indexed_studies"] == 24


def test_similar_for_study_without_vector_is_409(client: TestClient, indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    _, sessions, _ = indexed
    with sessions() as session:
        (without_cine,) = add_studies(session, [StudySpec(views=())])

    response = client.get(f"/api/studies/{without_cine}/similar")

    assert response.status_code == 409
    assert "has no embedding" in response.json()["detail"]


def test_unrendered_preview_is_json_404(client: TestClient, indexed: tuple[Settings, sessionmaker[Session], list[int]]) -> None:
    response = client.get("/previews/1.webp")

    assert response.status_code == 404
    assert "has not been rendered" in response.json()["detail"]
    assert "cmr-search reindex" in response.json()["detail"]


def test_api_docs_load_nothing_from_outside(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.status_code == 200
    assert re.findall(r"https?://[^\s\"'<>]+", page.text) == []
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in page.text
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert client.get("/docs/assets/package.json").status_code == 404
    assert client.get("/redoc").status_code == 404
