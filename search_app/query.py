"""The query service: query text or a seed study → ranked, hydrated studies.

A query goes through the model's text tower, which expands CMR abbreviations
with the lexicon first. The FAISS index then ranks the studies that pass the
metadata filters, restricted during the search itself. The ranked ids are
hydrated from the catalog in three SQL queries.

:class:`SearchBackend` contains what lives as long as the app (the encoder, the
loaded index, the finding labels). :class:`SearchService` binds it to one
database session and is cheap to create per request.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace

import numpy as np
from sqlalchemy.orm import Session

from cmr_search.settings import Settings
from embeddings.encoder import StudyEncoder
from embeddings.lexicon import default_lexicon
from search_app.errors import IndexMismatchError, InvalidFilterError, StudyNotEmbeddedError, StudyNotFoundError
from search_app.filter_table import FilterTable
from search_app.filters import SearchFilters
from search_app.hydrate import browse_study_pks, catalog_stats, hydrate_hits, load_study_detail, study_exists
from search_app.results import CatalogStats, SearchPage, StudyDetail
from search_app.vector_index import Ranking, StudyIndex
from search_app.zero_shot import encoder_thresholds

__all__ = [
    "IndexMismatchError",
    "SearchBackend",
    "SearchFilters",
    "SearchPage",
    "SearchService",
    "StudyDetail",
    "StudyNotEmbeddedError",
    "StudyNotFoundError",
]

logger = logging.getLogger(__name__)

MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 500
QUERY_CACHE_SIZE = 256


class SearchBackend:
    """The app-wide part of search: encoder, index, filter columns, settings and finding labels.

    ``filter_table`` must describe the rows of ``index``; a backend built
    without one reads it from the catalog on the first filtered search.
    ``mismatch`` is set when the start-up consistency check failed and the
    app was started anyway to show the error; every search then raises it.
    """

    def __init__(
        self,
        settings: Settings,
        encoder: StudyEncoder,
        index: StudyIndex | None,
        mismatch: IndexMismatchError | None = None,
        filter_table: FilterTable | None = None,
    ) -> None:
        self.settings = settings
        self.encoder = encoder
        self.index = index
        self.mismatch = mismatch
        self.filter_table = filter_table
        self.finding_labels = {prompts.name: prompts.label for prompts in encoder.finding_prompts()}
        self.thresholds = encoder_thresholds(encoder)
        self._query_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def trained_on_synthetic_data(self) -> bool:
        return bool(self.encoder.trained_on_synthetic_data)

    def require_index(self) -> StudyIndex | None:
        """Return the index, or raise the start-up mismatch."""
        if self.mismatch is not None:
            raise self.mismatch
        return self.index

    def filters_mask(self, session: Session, filters: SearchFilters) -> np.ndarray | None:
        """Return the mask over index positions of the studies passing ``filters``; None when none is set."""
        if filters.is_empty() or self.index is None:
            return None
        with self._lock:
            if self.filter_table is None:
                self.filter_table = FilterTable.load(session, self.index.ids, self.model_id)
        return self.filter_table.mask(session, filters)

    def query_vector(self, text: str) -> np.ndarray:
        """Embed a query with the text tower, caching the last few hundred queries."""
        with self._lock:
            cached = self._query_vectors.get(text)
            if cached is not None:
                self._query_vectors.move_to_end(text)
                return cached
        vector = np.asarray(self.encoder.encode_text([text])[0], dtype=np.float32)
        with self._lock:
            self._query_vectors[text] = vector
            while len(self._query_vectors) > QUERY_CACHE_SIZE:
                self._query_vectors.popitem(last=False)
        return vector


class SearchService:
    """Searches, "more like this", study pages and catalog counts over one session."""

    def __init__(self, session: Session, backend: SearchBackend) -> None:
        self.session = session
        self.backend = backend

    def search(self, query: str, filters: SearchFilters | None = None, limit: int = 20, offset: int = 0) -> SearchPage:
        """Rank the studies that pass ``filters`` by similarity to ``query``.

        A blank query lists the filtered studies newest first.

        Raises:
            InvalidFilterError: ``limit``, ``offset`` or the query length is out of range.
            IndexMismatchError: the index did not match the catalog at start-up.
        """
        filters = filters or SearchFilters()
        _check_page(limit, offset)
        query = " ".join(query.split())
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidFilterError(f"the query has {len(query)} characters; the maximum is {MAX_QUERY_CHARS}")
        index = self.backend.require_index()
        if not query:
            return self._browse(filters, limit, offset)

        mask = self.backend.filters_mask(self.session, filters)
        ranking = self._rank(index, self.backend.query_vector(query), offset + limit, mask)
        return self._page(query, default_lexicon().expand(query), ranking, ranking.considered, limit, offset)

    def more_like_this(
        self, study_pk: int, filters: SearchFilters | None = None, limit: int = 20, offset: int = 0
    ) -> SearchPage:
        """Rank the studies that pass ``filters`` by similarity to study ``study_pk``, leaving it out.

        Raises:
            StudyNotFoundError: the study is not in the catalog.
            StudyNotEmbeddedError: the study has no vector from the loaded model.
        """
        filters = filters or SearchFilters()
        _check_page(limit, offset)
        index = self.backend.require_index()
        position = index.position(study_pk) if index is not None else None
        if index is None or position is None:
            if not study_exists(self.session, study_pk):
                raise StudyNotFoundError(study_pk)
            raise StudyNotEmbeddedError(study_pk, self.backend.model_id)

        mask = self.backend.filters_mask(self.session, filters)
        mask = np.ones(len(index), dtype=bool) if mask is None else mask.copy()
        mask[position] = False
        ranking = self._rank(index, index.vector(study_pk), offset + limit, mask)
        page = self._page("", None, ranking, ranking.considered, limit, offset)
        return replace(page, seed_study_pk=study_pk)

    def study_detail(self, study_pk: int) -> StudyDetail:
        """Return everything the study page shows about ``study_pk``.

        Raises:
            StudyNotFoundError: the study is not in the catalog.
        """
        return load_study_detail(self.session, self.backend, study_pk)

    def catalog_stats(self) -> CatalogStats:
        """Count studies, series and vectors, and list the values the filters offer."""
        return catalog_stats(self.session, self.backend)

    def _rank(self, index: StudyIndex | None, vector: np.ndarray, k: int, mask: np.ndarray | None) -> Ranking:
        if index is None:
            return Ranking(np.empty(0, np.int64), np.empty(0, np.float32), "exact", 0)
        return index.search(vector, k, mask=mask)

    def _browse(self, filters: SearchFilters, limit: int, offset: int) -> SearchPage:
        study_pks, total = browse_study_pks(self.session, filters, self.backend.model_id, limit, offset)
        ranking = Ranking(study_pks, np.full(len(study_pks), np.nan, dtype=np.float32), "browse", total)
        return self._page("", None, ranking, total, limit, offset, already_paged=True)

    def _page(
        self,
        query: str,
        expanded: str | None,
        ranking: Ranking,
        total: int,
        limit: int,
        offset: int,
        already_paged: bool = False,
    ) -> SearchPage:
        study_pks, scores = ranking.study_pks, ranking.scores
        if not already_paged:
            study_pks, scores = study_pks[offset : offset + limit], scores[offset : offset + limit]
        hits = hydrate_hits(self.session, self.backend, study_pks.tolist(), scores.tolist(), first_rank=offset + 1)
        return SearchPage(
            query=query,
            expanded_query=expanded if expanded and expanded != query else None,
            hits=hits,
            total=total,
            offset=offset,
            limit=limit,
            has_more=offset + len(hits) < total,
            model_id=self.backend.model_id,
            trained_on_synthetic_data=self.backend.trained_on_synthetic_data,
            mode=ranking.mode,
        )


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidFilterError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidFilterError(f"offset must be between 0 and {MAX_OFFSET}, not {offset}")
