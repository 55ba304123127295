"""Fixtures shared by every test: catalogs on SQLite and PostgreSQL, data paths."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cmr_search.settings import Settings, sunnybrook_dir

PG_URL_ENV = "CMR_SEARCH_TEST_PG_URL"

# Fixtures owned by each stage's tests, kept apart so they can grow independently.
pytest_plugins = [
    "tests.indexer_fixtures",
    "tests.phantom_fixtures",
    "tests.embedding_fixtures",
    "tests.search_fixtures",
]


def _postgres_admin_url() -> str | None:
    url = os.environ.get(PG_URL_ENV)
    if not url and os.environ.get("CI"):
        raise RuntimeError(f"{PG_URL_ENV} is not set; .ci/run starts PostgreSQL and sets it")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        return

    admin_url = _postgres_admin_url()
    if not admin_url:
        pytest.skip(f"{PG_URL_ENV} is not set")
    name = f"cmr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of an empty SQLite catalog, for tests that need only one database."""
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Settings with a fresh data directory and SQLite catalog under tmp_path."""
    resolved = Settings(data_dir=tmp_path / "data", database_url=sqlite_url)
    resolved.ensure_dirs()
    return resolved


@pytest.fixture(scope="session")
def sunnybrook() -> Path:
    """The Sunnybrook Cardiac Data folder; set CMR_SEARCH_SUNNYBROOK_DIR to move it."""
    path = sunnybrook_dir()
    if not (path / "studies").is_dir():
        if os.environ.get("CI"):
            raise RuntimeError(f"Sunnybrook data not found at {path}")
        pytest.skip(f"Sunnybrook data not found at {path}")
    return path
