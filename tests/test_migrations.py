"""Alembic migrations up and down on SQLite and PostgreSQL."""

from sqlalchemy import create_engine, inspect

from indexer.catalog.models import Base
from indexer.catalog.session import downgrade_database, upgrade_database


def test_upgrade_creates_every_model_table(database_url: str) -> None:
    upgrade_database(database_url)

    tables = set(inspect(create_engine(database_url)).get_table_names())
    for table in Base.metadata.tables:
        assert table in tables


def test_downgrade_to_base_removes_tables(database_url: str) -> None:
    upgrade_database(database_url)
    downgrade_database(database_url, "base")

    tables = set(inspect(create_engine(database_url)).get_table_names())
    assert tables <= {"alembic_version"}


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)

    columns = {c["name"] for c in inspect(create_engine(database_url)).get_columns("series")}
    assert "view_rule" in columns
