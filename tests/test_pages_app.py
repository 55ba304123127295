"""The search and study pages, rendered by the real app over an indexed SQLite catalog.

The catalog contains 25 studies with known findings, demographics and views, and
the deterministic ``KeywordEncoder`` of the search fixtures embeds them, so
each query has a known best match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from indexer.catalog.models import Study
from search_app.app import create_app
from search_app.pages.forms import PAGE_SIZE
from search_app.pages.study import SIMILAR_PAGE_SIZE
from search_app.pages.templating import SYNTHETIC_MODEL_NOTE
from tests.pages_fixtures import HTMX_HEADERS as HTMX
from tests.pages_fixtures import card_html, card_study_pks, embed_catalog, migrated_catalog, study_specs
from tests.search_fixtures import FINDINGS, KeywordEncoder, StudySpec, add_studies, impression_of

STUDY_COUNT = 25


@dataclass
class IndexedApp:
    """A test client of the app, with the catalog it serves."""

    client: TestClient
    sessions: sessionmaker[Session]
    study_pks: list[int]
    specs: list[StudySpec]

    def spec_of(self, study_pk: int) -> StudySpec:
        return self.specs[self.study_pks.index(study_pk)]


@pytest.fixture(scope="module")
def indexed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexedApp]:
    settings, sessions = migrated_catalog(tmp_path_factory.mktemp("pages"))
    specs = study_specs(STUDY_COUNT)
    with sessions() as session:
        study_pks = add_studies(session, specs)
    encoder = KeywordEncoder()
    embed_catalog(settings, sessions, encoder)

    app = create_app(settings, model=encoder)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield IndexedApp(client=client, sessions=sessions, study_pks=study_pks, specs=specs)


def studies_with(app: IndexedApp, finding: str) -> set[int]:
    return {pk for pk, spec in zip(app.study_pks, app.specs) if finding in spec.findings}


def test_search_page_without_query(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert '<label class="query-label" for="q">' in html
    assert f"Search {STUDY_COUNT} indexed studies" in html
    assert card_study_pks(html) == []
    for example in ("dilated LV with reduced EF", "hypertrophic cardiomyopathy", "pericardial effusion", "normal study"):
        assert f'data-query="{example}"' in html
    assert 'href="#main"' in html


def test_page_loads_only_local_scripts(indexed_app: IndexedApp) -> None:
    html = indexed_app.client.get("/?q=lge").text

    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/htmx.min.js" in sources
    external = [source for source in sources if urlsplit(source).netloc]
    assert external == []


def test_query_ranks_matching_study_first(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/", params={"q": "pericardial effusion"})

    assert response.status_code == 200
    cards = card_study_pks(response.text)
    assert len(cards) == PAGE_SIZE
    expected = studies_with(indexed_app, "pericardial_effusion")
    assert set(cards[: len(expected)]) == expected
    assert f"{STUDY_COUNT} studies ranked for “pericardial effusion”" in response.text
    assert SYNTHETIC_MODEL_NOTE in response.text
    assert "Page 1 of 3" in response.text


def test_card_shows_study_facts(indexed_app: IndexedApp) -> None:
    html = indexed_app.client.get("/", params={"q": "late gadolinium enhancement"}).text
    first = card_study_pks(html)[0]
    spec = indexed_app.spec_of(first)
    card = card_html(html, first)

    assert "lge" in spec.findings
    assert f'href="/studies/{first}"' in card
    assert spec.study_date.isoformat() in card
    assert f"{int(spec.age_years)} y" in card
    assert ("Female" if spec.sex == "F" else "Male") in card
    assert "late gadolinium enhancement" in card
    assert re.search(r"score 0\.\d{3}", card)
    assert card.count('class="finding-chip') == 3


def test_results_fragment_for_htmx(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/results", params={"q": "lge", "sex": "F", "view": "4ch"}, headers=HTMX)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert card_study_pks(response.text)
    push_url = response.headers["HX-Push-Url"]
    assert push_url.startswith("/?")
    assert parse_qsl(urlsplit(push_url).query) == [("q", "lge"), ("sex", "F"), ("view", "4ch")]


def test_fragment_same_cards_as_page(indexed_app: IndexedApp) -> None:
    params = {"q": "dilated left ventricle", "age_min": "40", "page": "2"}

    fragment = indexed_app.client.get("/results", params=params, headers=HTMX)
    page = indexed_app.client.get(fragment.headers["HX-Push-Url"])

    assert page.status_code == 200
    assert card_study_pks(page.text) == card_study_pks(fragment.text)
    assert card_study_pks(page.text)


def test_invalid_fragment_pushes_url_as_sent(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/results", params={"q": "lge", "age_min": "abc"}, headers=HTMX)

    assert response.status_code == 422
    assert "Minimum age must be a number, not &#39;abc&#39;." in response.text
    assert parse_qsl(urlsplit(response.headers["HX-Push-Url"]).query) == [("q", "lge"), ("age_min", "abc")]


def test_fragment_without_htmx_redirects(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/results", params={"q": "lge", "page": "2"}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/?q=lge&page=2"


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"sex": "M"}, lambda spec: spec.sex == "M"),
        ({"age_min": "50", "age_max": "60"}, lambda spec: 50 <= spec.age_years <= 60),
        ({"date_from": "2021-01-01", "date_to": "2021-12-31"}, lambda spec: spec.study_date.year == 2021),
        ({"field_strength_t": "3"}, lambda spec: spec.field_strength_t == 3.0),
        ({"manufacturer": "Philips"}, lambda spec: spec.manufacturer == "Philips"),
        ({"view": ["2ch", "4ch"]}, lambda spec: "2ch" in spec.views),
    ],
)
def test_filter_keeps_only_matching_studies(indexed_app: IndexedApp, params: dict[str, object], keep: object) -> None:
    expected = {pk for pk, spec in zip(indexed_app.study_pks, indexed_app.specs) if keep(spec)}  # type: ignore[operator]
    shown: set[int] = set()
    for page in (1, 2, 3):
        html = indexed_app.client.get("/", params={"q": "normal", **params, "page": str(page)}).text
        shown.update(card_study_pks(html))

    assert shown == expected


def test_filters_without_query_browse_newest_first(indexed_app: IndexedApp) -> None:
    html = indexed_app.client.get("/", params={"sex": "F"}).text

    cards = card_study_pks(html)
    dates = [indexed_app.spec_of(pk).study_date for pk in cards]
    assert dates == sorted(dates, reverse=True)
    assert "newest first" in html
    assert "score 0." not in html


def test_filter_controls_show_url_state(indexed_app: IndexedApp) -> None:
    html = indexed_app.client.get(
        "/", params={"q": "lge", "sex": "F", "field_strength_t": "1.5", "manufacturer": "SIEMENS", "view": "sax", "age_min": "41"}
    ).text

    assert 'value="lge"' in html
    assert '<option value="F" selected>' in html
    assert '<option value="1.5" selected>' in html
    assert '<option value="SIEMENS" selected>' in html
    assert re.search(r'value="sax" class="filter-control" checked', html)
    assert re.search(r'id="age_min"[^>]*value="41"', html)


def test_no_results_lists_filters_to_remove(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/", params={"q": "lge", "manufacturer": "Toshiba", "sex": "F"})

    assert response.status_code == 200
    assert "No studies match these filters" in response.text
    assert card_study_pks(response.text) == []
    assert 'href="/?q=lge&amp;sex=F">Remove “manufacturer Toshiba”' in response.text
    assert 'href="/?q=lge&amp;manufacturer=Toshiba">Remove “sex female”' in response.text


def test_invalid_filter_shows_error(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/", params={"q": "lge", "age_min": "70", "age_max": "40"})

    assert response.status_code == 422
    assert "Minimum age (70) is greater than maximum age (40)." in response.text
    assert re.search(r'id="age_min"[^>]*aria-invalid="true"', response.text)
    assert card_study_pks(response.text) == []


def test_pages_partition_the_ranking(indexed_app: IndexedApp) -> None:
    seen: list[int] = []
    for page in (1, 2, 3):
        html = indexed_app.client.get("/", params={"q": "wall motion abnormality", "page": str(page)}).text
        seen.extend(card_study_pks(html))

    assert len(seen) == STUDY_COUNT
    assert set(seen) == set(indexed_app.study_pks)


def test_pagination_links(indexed_app: IndexedApp) -> None:
    html = indexed_app.client.get("/", params={"q": "lge", "page": "2"}).text

    assert 'rel="prev" href="/?q=lge"' in html
    assert 'hx-get="/results?q=lge"' in html
    assert 'rel="next" href="/?q=lge&amp;page=3"' in html
    assert 'hx-get="/results?q=lge&amp;page=3"' in html
    assert "Page 2 of 3" in html


def test_page_past_last_page(indexed_app: IndexedApp) -> None:
    response = indexed_app.client.get("/", params={"q": "lge", "page": "9"})

    assert response.status_code == 200
    assert "Page 9 is past the last page of results (3)." in response.text
    assert card_study_pks(response.text) == []
    assert 'rel="prev" href="/?q=lge&amp;page=3"' in response.text


def test_study_page_shows_study(indexed_app: IndexedApp) -> None:
    study_pk = indexed_app.study_pks[5]
    spec = indexed_app.spec_of(study_pk)
    with indexed_app.sessions() as session:
        study = session.get(Study, study_pk)
        uid, accession = study.study_instance_uid, study.accession_number

    response = indexed_app.client.get(f"/studies/{study_pk}")

    assert response.status_code == 200
    html = response.text
    assert f"<h1>Study {study_pk} · {spec.study_date.isoformat()}</h1>" in html
    assert uid in html
    assert accession in html
    assert f"IMPRESSION: {impression_of(spec.findings)}" in html
    assert SYNTHETIC_MODEL_NOTE in html
    assert html.count('<th scope="row">') == len(FINDINGS)
    assert html.count("<td>none fitted</td>") == len(FINDINGS)
    assert "Short axis: real" in html
    assert "4-chamber: filled" in html
    for view_caption in ("Short axis · cine", "2-chamber · cine", "4-chamber · cine"):
        assert view_caption in html
    assert "8 slices × 20 phases" in html


def test_study_page_more_like_this(indexed_app: IndexedApp) -> None:
    study_pk = indexed_app.study_pks[7]
    finding = indexed_app.spec_of(study_pk).findings[0]

    html = indexed_app.client.get(f"/studies/{study_pk}").text

    similar_section = html.split('id="similar-heading"')[1]
    similar = card_study_pks(similar_section)
    assert len(similar) == SIMILAR_PAGE_SIZE
    assert study_pk not in similar
    same_finding = studies_with(indexed_app, finding) - {study_pk}
    assert set(similar[: len(same_finding)]) == same_finding
    assert f"Showing 1–{SIMILAR_PAGE_SIZE} of {STUDY_COUNT - 1}" in similar_section


def test_similar_fragment_pages_on(indexed_app: IndexedApp) -> None:
    study_pk = indexed_app.study_pks[7]
    first = card_study_pks(indexed_app.client.get(f"/studies/{study_pk}").text.split('id="similar-heading"')[1])

    response = indexed_app.client.get(f"/studies/{study_pk}/similar", params={"page": "2"}, headers=HTMX)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.headers["HX-Push-Url"] == f"/studies/{study_pk}?similar_page=2"
    second = card_study_pks(response.text)
    assert len(second) == SIMILAR_PAGE_SIZE
    assert not set(first) & set(second)
    direct = indexed_app.client.get(f"/studies/{study_pk}", params={"similar_page": "2"}).text
    assert card_study_pks(direct.split('id="similar-heading"')[1]) == second
