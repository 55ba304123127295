"""Settings of every command: the locations of the catalog, caches and indexes.

Every command resolves its settings here, in this order: an explicit argument
(``--data-dir``, ``--database-url``), then the environment variables
``CMR_SEARCH_DATA_DIR`` and ``CMR_SEARCH_DATABASE_URL``, then the per-user
default data directory of the operating system (for example
``~/.local/share/cmr-search`` on Linux).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "CMR_SEARCH_DATA_DIR"
DATABASE_URL_ENV = "CMR_SEARCH_DATABASE_URL"
SUNNYBROOK_DIR_ENV = "CMR_SEARCH_SUNNYBROOK_DIR"

# Repository root: templates/ and alembic/ sit beside the Python packages.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Resolved locations for one run of a command."""

    data_dir: Path
    database_url: str

    @property
    def clip_cache_dir(self) -> Path:
        """Float16 clip tensors, keyed by series and clip settings."""
        return self.data_dir / "clips"

    @property
    def preview_dir(self) -> Path:
        """Animated WebP cine previews, keyed by series and render settings."""
        return self.data_dir / "previews"

    @property
    def index_dir(self) -> Path:
        """FAISS indexes, one file per model id."""
        return self.data_dir / "indexes"

    @property
    def model_dir(self) -> Path:
        """Checkpoints written by ``cmr-search train``."""
        return self.data_dir / "models"

    def ensure_dirs(self) -> None:
        """Create the data directory and its cache folders."""
        for path in (self.data_dir, self.clip_cache_dir, self.preview_dir, self.index_dir, self.model_dir):
            path.mkdir(parents=True, exist_ok=True)


def default_data_dir() -> Path:
    """Return the per-user data directory of this operating system."""
    return Path(platformdirs.user_data_dir("cmr-search", appauthor=False))


def resolve_settings(data_dir: Path | str | None = None, database_url: str | None = None) -> Settings:
    """Resolve settings from arguments, then environment, then defaults."""
    if data_dir is None:
        env_dir = os.environ.get(DATA_DIR_ENV)
        data_dir = Path(env_dir) if env_dir else default_data_dir()
    data_dir = Path(data_dir).expanduser().resolve()

    if database_url is None:
        database_url = os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{data_dir / 'catalog.sqlite'}"
    return Settings(data_dir=data_dir, database_url=database_url)


def sunnybrook_dir() -> Path:
    """Return the Sunnybrook Cardiac Data folder used by tests and benchmarks.

    ``CMR_SEARCH_SUNNYBROOK_DIR`` overrides the default, which is
    ``shared/data/sunnybrook-scd`` beside the repository checkout.
    """
    env_dir = os.environ.get(SUNNYBROOK_DIR_ENV)
    if env_dir:
        return Path(env_dir)
    return PROJECT_ROOT.parent / "shared" / "data" / "sunnybrook-scd"
