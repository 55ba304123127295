"""Query service over a synthetic catalog with the keyword test encoder.

The keyword encoder makes the expected ranking known: a study's vector points
along the findings its impression names. These tests check the service's
plumbing (filters during the search, paging, hydration, "more like this");
ranking quality of the real model is tested over the phantom archive in
test_search_model.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from indexer.catalog.models import StudyEmbedding
from indexer.catalog.session import create_catalog_engine, session_factory
from search_app.errors import InvalidFilterError, StudyNotEmbeddedError, StudyNotFoundError
from search_app.filters import SearchFilters
from search_app.index_store import load_index
from search_app.query import SearchBackend, SearchService
from tests.search_fixtures import FINDINGS, KEYWORDS, KeywordEncoder, StudySpec, add_studies, index_catalog, keyword_vector

MANUFACTURERS = ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips Medical Systems")
VIEW_SETS = (("sax", "2ch", "4ch"), ("sax",), ("sax", "2ch", "3ch", "4ch", "lvot"), ("4ch",))


def varied_specs(count: int) -> list[StudySpec]:
    """Studies cycling through findings and metadata so every filter value occurs."""
    finding_sets = [(), *[(name,) for name in FINDINGS], ("lv_systolic_dysfunction", "lv_dilation")]
    specs = []
    for number in range(count):
        specs.append(
            StudySpec(
                findings=finding_sets[number % len(finding_sets)],
                sex="FM"[number % 2],
                age_years=20.0 + (number * 7) % 61,
                study_date=dt.date(2020, 1, 1) + dt.timedelta(days=(number * 37) % 1500),
                field_strength_t=(1.5, 3.0)[(number // 3) % 2],
                manufacturer=MANUFACTURERS[(number // 2) % 3],
                views=VIEW_SETS[(number // 5) % len(VIEW_SETS)],
            )
        )
    return specs


@pytest.fixture(scope="module")
def search_catalog(module_settings: Settings) -> Iterator[tuple[Settings, sessionmaker[Session], list[StudySpec], list[int]]]:
    """60 indexed studies shared by the read-only tests of this module."""
    specs = varied_specs(60)
    engine = create_catalog_engine(module_settings.database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        study_pks = add_studies(session, specs)
    index_catalog(module_settings, sessions, KeywordEncoder())
    yield module_settings, sessions, specs, study_pks
    engine.dispose()


def service_for(settings: Settings, session: Session, encoder: KeywordEncoder | None = None) -> SearchService:
    encoder = encoder or KeywordEncoder()
    return SearchService(session, SearchBackend(settings, encoder, load_index(settings, encoder.model_id)))


def expected_pks(specs: list[StudySpec], study_pks: list[int], keep) -> set[int]:  # type: ignore[no-untyped-def]
    return {pk for spec, pk in zip(specs, study_pks) if keep(spec)}


@pytest.mark.parametrize("finding", FINDINGS)
def test_finding_query_ranks_finding_first(search_catalog, finding: str) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog
    with_finding = expected_pks(specs, study_pks, lambda spec: finding in spec.findings)

    with sessions() as session:
        page = service_for(settings, session).search(KEYWORDS[finding][0], limit=5)

    assert page.hits, f"no hits for {finding}"
    assert page.hits[0].study_pk in with_finding


FILTER_CASES = {
    "sex": (SearchFilters(sex="M"), lambda spec: spec.sex == "M"),
    "age": (SearchFilters(age_min=30, age_max=45), lambda spec: 30 <= spec.age_years <= 45),
    "date": (
        SearchFilters(date_from=dt.date(2021, 1, 1), date_to=dt.date(2022, 6, 30)),
        lambda spec: dt.date(2021, 1, 1) <= spec.study_date <= dt.date(2022, 6, 30),
    ),
    "field strength": (SearchFilters(field_strength_t=3.0), lambda spec: spec.field_strength_t == 3.0),
    "manufacturer": (SearchFilters(manufacturer="philips"), lambda spec: spec.manufacturer.startswith("Philips")),
    "views": (SearchFilters(views={"2ch", "4ch"}), lambda spec: {"2ch", "4ch"} <= set(spec.views)),
    "combined": (
        SearchFilters(sex="F", field_strength_t=1.5, views={"sax"}),
        lambda spec: spec.sex == "F" and spec.field_strength_t == 1.5 and "sax" in spec.views,
    ),
}


@pytest.mark.parametrize("case", FILTER_CASES, ids=list(FILTER_CASES))
def test_filter_never_leaks(search_catalog, case: str) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog
    filters, keep = FILTER_CASES[case]
    allowed = expected_pks(specs, study_pks, keep)

    with sessions() as session:
        page = service_for(settings, session).search("dilated left ventricle", filters, limit=100)

    assert allowed, "the case keeps no study; the fixture data is wrong"
    assert {hit.study_pk for hit in page.hits} == allowed
    assert page.total == len(allowed)
    assert not page.has_more


def test_selective_filter_returns_true_best_matches(settings: Settings, catalog: sessionmaker[Session]) -> None:
    # 500 studies; the filter keeps 5 (1 %), none of which is in the unfiltered top 20.
    specs = [StudySpec(findings=("lv_dilation",), manufacturer="SIEMENS") for _ in range(495)]
    specs += [StudySpec(findings=finding, manufacturer="Rare Vendor") for finding in [("lv_dilation", "lge"), ("lge",), (), ("rv_dilation",), ("pericardial_effusion",)]]
    with catalog() as session:
        study_pks = add_studies(session, specs)
    encoder = KeywordEncoder()
    index_catalog(settings, catalog, encoder)
    rare = study_pks[495:]

    with catalog() as session:
        service = service_for(settings, session, encoder)
        unfiltered = service.search("dilated left ventricle", limit=20)
        filtered = service.search("dilated left ventricle", SearchFilters(manufacturer="rare vendor"), limit=20)

    assert not {hit.study_pk for hit in unfiltered.hits} & set(rare)
    assert [hit.study_pk for hit in filtered.hits][0] == rare[0]
    assert sorted(hit.study_pk for hit in filtered.hits) == rare
    assert filtered.total == 5
    assert filtered.mode == "exact"


def test_pages_concatenate_to_full_ranking(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, _ = search_catalog

    with sessions() as session:
        service = service_for(settings, session)
        full = service.search("late gadolinium enhancement", limit=21)
        pages = [service.search("late gadolinium enhancement", limit=7, offset=offset) for offset in (0, 7, 14)]

    assert [hit.study_pk for page in pages for hit in page.hits] == [hit.study_pk for hit in full.hits]
    assert [hit.rank for page in pages for hit in page.hits] == list(range(1, 22))
    assert all(page.has_more for page in pages)
    assert full.total == 60
    last = pages[-1]
    assert last.offset == 14


def test_last_page_has_no_more(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, _ = search_catalog

    with sessions() as session:
        page = service_for(settings, session).search("lge", limit=20, offset=50)

    assert len(page.hits) == 10
    assert not page.has_more


def test_hit_carries_card_fields(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog

    with sessions() as session:
        hit = service_for(settings, session).search("pericardial effusion", limit=1).hits[0]

    spec = specs[study_pks.index(hit.study_pk)]
    assert "pericardial_effusion" in spec.findings
    assert hit.sex == spec.sex
    assert hit.age_years == spec.age_years
    assert hit.study_date == spec.study_date
    assert hit.views == [view for view in ("sax", "2ch", "3ch", "4ch", "lvot") if view in spec.views]
    assert "pericardial effusion" in (hit.impression_snippet or "")
    assert hit.top_findings[0].name == "pericardial_effusion"
    assert hit.top_findings[0].label == "pericardial effusion"
    assert hit.score is not None and 0.5 < hit.score <= 1.0
    assert hit.previews == []  # nothing rendered in this catalog


def test_expanded_query_shown_for_abbreviations(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, _ = search_catalog

    with sessions() as session:
        page = service_for(settings, session).search("dilated LV with reduced EF", limit=3)

    assert page.expanded_query is not None
    assert "left ventricle" in page.expanded_query
    assert page.trained_on_synthetic_data is True
    assert page.model_id == KeywordEncoder().model_id


def test_more_like_this_leaves_seed_out(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog
    seed = study_pks[specs.index(next(spec for spec in specs if spec.findings == ("lge",)))]

    with sessions() as session:
        page = service_for(settings, session).more_like_this(seed, limit=5)

    assert seed not in [hit.study_pk for hit in page.hits]
    assert page.seed_study_pk == seed
    assert page.total == 59
    assert specs[study_pks.index(page.hits[0].study_pk)].findings == ("lge",)


def test_more_like_this_respects_filters(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog
    seed = study_pks[0]
    allowed = expected_pks(specs, study_pks, lambda spec: spec.sex == "M") - {seed}

    with sessions() as session:
        page = service_for(settings, session).more_like_this(seed, SearchFilters(sex="M"), limit=100)

    assert {hit.study_pk for hit in page.hits} == allowed
    assert page.total == len(allowed)


def test_more_like_this_unknown_and_unembedded(settings: Settings, catalog: sessionmaker[Session]) -> None:
    with catalog() as session:
        add_studies(session, [StudySpec(findings=("lge",)), StudySpec()])
    index_catalog(settings, catalog, KeywordEncoder())
    with catalog() as session:
        (without_cine,) = add_studies(session, [StudySpec(views=())])

    with catalog() as session:
        service = service_for(settings, session)
        with pytest.raises(StudyNotFoundError):
            service.more_like_this(999_999)
        with pytest.raises(StudyNotEmbeddedError, match="no embedding"):
            service.more_like_this(without_cine)


def test_blank_query_lists_newest_first(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog

    with sessions() as session:
        page = service_for(settings, session).search("  ", SearchFilters(sex="F"), limit=10)

    dates = [hit.study_date for hit in page.hits]
    assert page.mode == "browse"
    assert dates == sorted(dates, reverse=True)
    assert all(hit.score is None for hit in page.hits)
    assert all(hit.sex == "F" for hit in page.hits)
    assert page.total == sum(spec.sex == "F" for spec in specs)


def test_study_detail_fields_and_order(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, study_pks = search_catalog
    number = next(index for index, spec in enumerate(specs) if len(spec.views) == 5)

    with sessions() as session:
        detail = service_for(settings, session).study_detail(study_pks[number])

    assert [series.view for series in detail.series] == ["sax", "2ch", "3ch", "4ch", "lvot"]
    assert detail.study_instance_uid.startswith("1.2.826.0.1.3680043.10.999.")
    assert detail.accession_number == f"ACC{number:06d}"
    assert detail.embedded
    assert detail.segments == {"sax": "real"}
    assert [finding.name for finding in detail.findings] == list(FINDINGS)
    assert detail.report_text and "IMPRESSION" in detail.report_text
    assert detail.series[0].slices == 8


def test_study_detail_unknown_study(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, _ = search_catalog
    with sessions() as session, pytest.raises(StudyNotFoundError, match="not in the catalog"):
        service_for(settings, session).study_detail(987_654)


def test_catalog_stats_counts(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, specs, _ = search_catalog

    with sessions() as session:
        stats = service_for(settings, session).catalog_stats()

    assert stats.studies == 60
    assert stats.cine_studies == 60
    assert stats.embedded_studies == 60
    assert stats.indexed_studies == 60
    assert stats.series == sum(len(spec.views) for spec in specs)
    assert stats.manufacturers == sorted(MANUFACTURERS)
    assert stats.field_strengths_t == [1.5, 3.0]
    assert stats.views == ["sax", "2ch", "3ch", "4ch", "lvot"]
    assert stats.first_study_date == min(spec.study_date for spec in specs)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sex": "X"}, "sex must be one of"),
        ({"age_min": 50, "age_max": 40}, "greater than age_max"),
        ({"date_from": dt.date(2024, 1, 2), "date_to": dt.date(2024, 1, 1)}, "after date_to"),
        ({"views": ["sax", "apex"]}, "unknown view"),
        ({"field_strength_t": -1.5}, "tesla"),
    ],
)
def test_invalid_filters_rejected(arguments: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidFilterError, match=message):
        SearchFilters(**arguments)


def test_page_bounds_rejected(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, _ = search_catalog
    with sessions() as session:
        service = service_for(settings, session)
        for limit, offset in [(0, 0), (101, 0), (10, -1)]:
            with pytest.raises(InvalidFilterError):
                service.search("lge", limit=limit, offset=offset)
        with pytest.raises(InvalidFilterError, match="characters"):
            service.search("x" * 501)


def test_real_segments_only_filter(settings: Settings, catalog: sessionmaker[Session]) -> None:
    with catalog() as session:
        study_pks = add_studies(session, [StudySpec(findings=("lge",)) for _ in range(4)])
    index_catalog(settings, catalog, KeywordEncoder())
    with catalog() as session:
        for study_pk in study_pks[:2]:
            row = session.query(StudyEmbedding).filter_by(study_pk=study_pk).one()
            row.segments = {"sax": "real", "4ch": "filled"}
        session.commit()

    with catalog() as session:
        page = service_for(settings, session).search("lge", SearchFilters(real_segments_only=True))
        browse = service_for(settings, session).search("", SearchFilters(real_segments_only=True))

    assert sorted(hit.study_pk for hit in page.hits) == study_pks[2:]
    assert sorted(hit.study_pk for hit in browse.hits) == study_pks[2:]
    assert browse.total == 2


def test_query_vectors_are_cached(search_catalog) -> None:  # type: ignore[no-untyped-def]
    settings, sessions, _, _ = search_catalog
    calls = itertools.count()

    class CountingEncoder(KeywordEncoder):
        def encode_text(self, texts):  # type: ignore[no-untyped-def]
            next(calls)
            return super().encode_text(texts)

    encoder = CountingEncoder()
    with sessions() as session:
        service = service_for(settings, session, encoder)
        first = service.search("lge", limit=3)
        second = service.search("lge", limit=3, offset=3)

    assert next(calls) == 1
    assert not {hit.study_pk for hit in first.hits} & {hit.study_pk for hit in second.hits}
    np.testing.assert_allclose(service.backend.query_vector("lge"), keyword_vector("lge"))
