"""Exceptions of the search stage that the web layer turns into responses."""

from __future__ import annotations

from pathlib import Path


class SearchError(RuntimeError):
    """Base class of the errors that the search service raises on purpose."""


class IndexMismatchError(SearchError):
    """The FAISS index does not match the catalog or the loaded model.

    ``message`` is a complete sentence for the user and ends with the command
    that rebuilds the index. The app rejects every search while it has one.
    """

    def __init__(self, message: str, *, model_id: str, index_path: Path | None) -> None:
        super().__init__(message)
        self.message = message
        self.model_id = model_id
        self.index_path = index_path


class StudyNotFoundError(SearchError):
    """A study primary key is not in the catalog."""

    def __init__(self, study_pk: int) -> None:
        super().__init__(f"study {study_pk} is not in the catalog")
        self.study_pk = study_pk


class StudyNotEmbeddedError(SearchError):
    """A study exists but has no vector from the loaded model, so it cannot seed a search."""

    def __init__(self, study_pk: int, model_id: str) -> None:
        super().__init__(
            f"study {study_pk} has no embedding from model {model_id} (no usable cine series, "
            "or it was catalogued after the last `cmr-search index`)"
        )
        self.study_pk = study_pk
        self.model_id = model_id


class InvalidFilterError(SearchError):
    """A search filter value is out of range or contradicts another one."""


def rebuild_hint(data_dir: Path) -> str:
    """Return the command that rebuilds the index for ``data_dir``."""
    return f"run `cmr-search reindex --data-dir {data_dir}` to rebuild it from the catalog"
