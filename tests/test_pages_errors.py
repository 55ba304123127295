"""Error, empty-archive and mismatch pages, and the static files, of the real app."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from indexer.catalog.models import StudyEmbedding
from search_app.app import create_app
from search_app.pages.assets import HTMX_PATH
from search_app.query import SearchService
from tests.pages_fixtures import HTMX_HEADERS, card_study_pks, embed_catalog, migrated_catalog, study_specs
from tests.search_fixtures import KeywordEncoder, add_studies

STACK_TRACE_MARKERS = ("Traceback", 'File "', "RuntimeError", "secret-detail")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings, sessions = migrated_catalog(tmp_path_factory.mktemp("errors"))
    with sessions() as session:
        add_studies(session, study_specs(4))
    embed_catalog(settings, sessions, KeywordEncoder())
    with TestClient(create_app(settings, model=KeywordEncoder()), raise_server_exceptions=False) as test_client:
        yield test_client


def assert_html_page(response_text: str) -> None:
    assert response_text.startswith("<!doctype html>")
    for marker in STACK_TRACE_MARKERS:
        assert marker not in response_text


def test_missing_study_page(client: TestClient) -> None:
    response = client.get("/studies/999999")

    assert response.status_code == 404
    assert_html_page(response.text)
    assert "Study not found" in response.text
    assert "Study 999999 is not in the catalog." in response.text


def test_invalid_study_id_page(client: TestClient) -> None:
    response = client.get("/studies/abc")

    assert response.status_code == 400
    assert_html_page(response.text)
    assert "study_pk" in response.text


def test_unknown_path_page(client: TestClient) -> None:
    response = client.get("/no/such/page")

    assert response.status_code == 404
    assert_html_page(response.text)
    assert "Page not found" in response.text


def test_api_errors_stay_json(client: TestClient) -> None:
    missing_study = client.get("/api/studies/999999")
    unknown_path = client.get("/api/no-such-endpoint")

    assert missing_study.status_code == 404
    assert missing_study.headers["content-type"] == "application/json"
    assert "999999" in missing_study.json()["detail"]
    assert unknown_path.status_code == 404
    assert unknown_path.headers["content-type"] == "application/json"


def test_server_error_page_hides_trace(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret-detail")

    monkeypatch.setattr(SearchService, "search", fail)
    with caplog.at_level(logging.ERROR, logger="search_app.pages.errors"):
        response = client.get("/", params={"q": "lge"})

    assert response.status_code == 500
    assert_html_page(response.text)
    assert "Something went wrong on the server" in response.text
    reference = re.search(r"reference <code>([0-9a-f]{8})</code>", response.text)
    assert reference is not None
    logged = [record for record in caplog.records if reference.group(1) in record.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


def test_server_error_fragment_for_htmx(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret-detail")

    monkeypatch.setattr(SearchService, "search", fail)
    response = client.get("/results", params={"q": "lge"}, headers=HTMX_HEADERS)

    assert response.status_code == 500
    assert "<html" not in response.text
    assert 'role="alert"' in response.text
    for marker in STACK_TRACE_MARKERS:
        assert marker not in response.text


def test_server_error_in_api_is_json(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret-detail")

    monkeypatch.setattr(SearchService, "search", fail)
    response = client.get("/api/search", params={"q": "lge"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert "secret-detail" not in response.text


def test_static_files_served_locally(client: TestClient) -> None:
    htmx = client.get("/static/vendor/htmx.min.js")
    stylesheet = client.get("/static/app.css")
    script = client.get("/static/app.js")

    assert htmx.status_code == 200
    assert htmx.headers["content-type"].startswith("text/javascript")
    assert htmx.content == HTMX_PATH.read_bytes()
    assert 'version:"2.0.4"' in htmx.text
    assert stylesheet.status_code == 200
    assert ":focus-visible" in stylesheet.text
    assert script.status_code == 200


def test_missing_htmx_logged_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings, _sessions = migrated_catalog(tmp_path)
    monkeypatch.setattr("search_app.pages.assets.HTMX_PATH", tmp_path / "node_modules" / "htmx.min.js")

    with caplog.at_level(logging.ERROR, logger="search_app.pages.assets"):
        app = create_app(settings, model=KeywordEncoder())
    with TestClient(app, raise_server_exceptions=False) as bare_client:
        script = bare_client.get("/static/vendor/htmx.min.js")
        page = bare_client.get("/")

    assert "run `npm install`" in caplog.text
    assert script.status_code == 404
    assert "npm install" in script.json()["detail"]
    assert page.status_code == 200


def test_empty_catalog_page(tmp_path: Path) -> None:
    settings, _sessions = migrated_catalog(tmp_path)

    with TestClient(create_app(settings, model=KeywordEncoder()), raise_server_exceptions=False) as empty_client:
        response = empty_client.get("/", params={"q": "lge"})

    assert response.status_code == 200
    assert_html_page(response.text)
    assert "No studies indexed yet" in response.text
    assert f"cmr-search index /path/to/dicom --data-dir {settings.data_dir}" in response.text
    assert f"cmr-search demo --data-dir {settings.data_dir}" in response.text


def test_catalog_without_embeddings_page(tmp_path: Path) -> None:
    settings, sessions = migrated_catalog(tmp_path)
    with sessions() as session:
        add_studies(session, study_specs(3))

    with TestClient(create_app(settings, model=KeywordEncoder()), raise_server_exceptions=False) as bare_client:
        response = bare_client.get("/")

    assert response.status_code == 200
    assert "The catalog contains 3 studies, but none has an embedding" in response.text
    assert KeywordEncoder().model_id in response.text


def test_index_mismatch_page(tmp_path: Path) -> None:
    settings, sessions = migrated_catalog(tmp_path)
    with sessions() as session:
        add_studies(session, study_specs(4))
    embed_catalog(settings, sessions, KeywordEncoder())
    with sessions() as session:
        first = session.scalars(select(StudyEmbedding.id).order_by(StudyEmbedding.id)).first()
        session.execute(delete(StudyEmbedding).where(StudyEmbedding.id == first))
        session.commit()

    app = create_app(settings, model=KeywordEncoder(), allow_mismatch=True)
    with TestClient(app, raise_server_exceptions=False) as mismatch_client:
        page = mismatch_client.get("/", params={"q": "lge"})
        fragment = mismatch_client.get("/results", params={"q": "lge"}, headers=HTMX_HEADERS)
        api = mismatch_client.get("/api/search", params={"q": "lge"})

    assert page.status_code == 503
    assert_html_page(page.text)
    assert "The search index does not match the catalog" in page.text
    assert f"cmr-search reindex --data-dir {settings.data_dir}" in page.text
    assert card_study_pks(page.text) == []
    assert fragment.status_code == 503
    assert "<html" not in fragment.text
    assert "cmr-search reindex" in fragment.text
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/json"
