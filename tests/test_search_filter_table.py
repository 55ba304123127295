"""In-memory filter columns agree with the SQL definition of every filter."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from indexer.catalog.session import create_catalog_engine, session_factory
from search_app.errors import InvalidFilterError
from search_app.filter_table import FilterTable
from search_app.filters import SearchFilters, candidate_study_pks
from search_app.index_store import load_index
from tests.search_fixtures import KeywordEncoder, StudySpec, add_studies, index_catalog

VIEW_SETS = (("sax", "2ch", "4ch"), ("sax",), ("4ch", "3ch"), ("sax", "2ch", "3ch", "4ch", "lvot"))


@pytest.fixture(scope="module")
def table_catalog(module_settings: Settings) -> Iterator[tuple[sessionmaker[Session], FilterTable]]:
    rng = np.random.default_rng(4)
    specs = [
        StudySpec(
            sex=str(rng.choice(["F", "M", "O"])),
            age_years=float(rng.integers(18, 90)),
            study_date=dt.date(2018, 1, 1) + dt.timedelta(days=int(rng.integers(0, 2000))),
            field_strength_t=float(rng.choice([1.5, 3.0, 1.494])),
            manufacturer=str(rng.choice(["SIEMENS", "GE MEDICAL SYSTEMS", "Philips", "Philips Healthcare"])),
            views=VIEW_SETS[int(rng.integers(len(VIEW_SETS)))],
        )
        for _ in range(150)
    ]
    engine = create_catalog_engine(module_settings.database_url)
    catalog = session_factory(engine)
    with catalog() as session:
        add_studies(session, specs)
    encoder = KeywordEncoder()
    index_catalog(module_settings, catalog, encoder)
    index = load_index(module_settings, encoder.model_id)
    with catalog() as session:
        table = FilterTable.load(session, index.ids, encoder.model_id)
    yield catalog, table
    engine.dispose()


FILTER_GRID = [
    SearchFilters(sex="O"),
    SearchFilters(age_min=40, age_max=60),
    SearchFilters(age_min=89),
    SearchFilters(date_from=dt.date(2019, 3, 1)),
    SearchFilters(date_to=dt.date(2019, 3, 1)),
    SearchFilters(field_strength_t=1.5),
    SearchFilters(manufacturer="philips"),
    SearchFilters(manufacturer="no such vendor"),
    SearchFilters(views={"3ch"}),
    SearchFilters(views={"sax", "2ch"}),
    SearchFilters(sex="F", field_strength_t=3, views={"sax"}, manufacturer="siemens", age_max=70),
]


@pytest.mark.parametrize("filters", FILTER_GRID, ids=[str(number) for number in range(len(FILTER_GRID))])
def test_mask_matches_sql(table_catalog: tuple[sessionmaker[Session], FilterTable], filters: SearchFilters) -> None:
    sessions, table = table_catalog

    with sessions() as session:
        mask = table.mask(session, filters)
        expected = candidate_study_pks(session, filters, table.model_id)

    assert mask is not None
    assert table.study_pks[mask].tolist() == sorted(expected.tolist())


def test_empty_filters_give_no_mask(table_catalog: tuple[sessionmaker[Session], FilterTable]) -> None:
    sessions, table = table_catalog
    with sessions() as session:
        assert table.mask(session, SearchFilters()) is None


def test_field_strength_tolerance(table_catalog: tuple[sessionmaker[Session], FilterTable]) -> None:
    sessions, table = table_catalog
    with sessions() as session:
        mask = table.mask(session, SearchFilters(field_strength_t=1.5))

    assert set(np.unique(table.field_strength_t[mask].astype(np.float64)).round(3).tolist()) == {1.494, 1.5}


def test_pairs_of_filters_match_sql(table_catalog: tuple[sessionmaker[Session], FilterTable]) -> None:
    sessions, table = table_catalog
    with sessions() as session:
        for first, second in itertools.combinations(FILTER_GRID[:9], 2):
            values = {name: value for item in (first, second) for name, value in vars(item).items() if value not in (None, frozenset(), False)}
            try:
                combined = SearchFilters(**values)
            except InvalidFilterError:
                continue  # for example age_min 89 with age_max 60
            mask = table.mask(session, combined)
            expected = candidate_study_pks(session, combined, table.model_id)
            assert table.study_pks[mask].tolist() == sorted(expected.tolist()), combined
