"""Engines, sessions and schema migrations for the catalog.

Alembic is imported only when a migration runs, because importing it costs
about 0.1 s of CPU (2-vCPU x86-64 VM, Alembic 1.x), a large part of a no-op
scan. ``upgrade_database`` checks ``HEAD_REVISION`` with one query first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic logs every plugin it loads at INFO when it is imported; keep its migration messages only.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

logger = logging.getLogger(__name__)

ALEMBIC_DIR = PROJECT_ROOT / "alembic"
# The newest revision under alembic/versions. Update it with every new migration;
# tests/test_indexer_scan.py checks it against Alembic's own head.
HEAD_REVISION = "0001"


def create_catalog_engine(database_url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout.

    WAL lets the web app read while an indexer writes, and the busy timeout
    (30 s) makes a second writer wait instead of failing at once.
    """
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database_url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _configure_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(database_url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(database_url: str) -> Config:
    """Build an Alembic configuration for ``database_url`` without an ini file."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Apply pending migrations up to ``revision``; do nothing when asked for head and already there.

    Raises the SQLAlchemy errors of an invalid URL or an unreachable database
    (ArgumentError, NoSuchModuleError, OperationalError) from the first connection.
    """
    if revision in ("head", HEAD_REVISION) and catalog_revisions(database_url) == [HEAD_REVISION]:
        logger.debug("catalog schema is at revision %s", HEAD_REVISION)
        return
    from alembic import command

    logger.info("applying catalog migrations up to %s", revision)
    command.upgrade(alembic_config(database_url), revision)


def downgrade_database(database_url: str, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` removes every table)."""
    from alembic import command

    logger.info("reverting catalog migrations down to %s", revision)
    command.downgrade(alembic_config(database_url), revision)


def catalog_revisions(database_url: str) -> list[str]:
    """Return the revisions in the catalog's ``alembic_version`` table, [] for a new database."""
    engine = create_catalog_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return []
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()
