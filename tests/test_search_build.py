"""Build stage: embedding in batches, resuming, zero-shot scores, and index rebuilds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cmr_search.settings import Settings
from embeddings.encoder import StudyVectors
from embeddings.zeroshot import FindingThreshold, FindingThresholds
from indexer.catalog.models import FindingScore, StudyEmbedding, ViewEmbedding
from search_app.build import pending_study_pks, run_build
from search_app.index_store import load_index
from tests.search_fixtures import FINDINGS, KeywordEncoder, StudySpec, add_studies


def embedded_count(sessions: sessionmaker[Session], model_id: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).where(StudyEmbedding.model_id == model_id)) or 0


@pytest.fixture
def studies(catalog: sessionmaker[Session]) -> list[int]:
    specs = [StudySpec(findings=(FINDINGS[number % 8],)) for number in range(20)] + [StudySpec(views=())]
    with catalog() as session:
        return add_studies(session, specs)


def test_build_embeds_scores_and_indexes(settings: Settings, catalog: sessionmaker[Session], studies: list[int]) -> None:
    encoder = KeywordEncoder()

    summary = run_build(settings, catalog, encoder, batch_size=6, progress=False)

    assert summary.embedded == 20
    assert summary.without_cine == 0  # the study without series is never pending
    assert summary.index_rebuilt
    assert summary.indexed == 20
    with catalog() as session:
        assert session.scalar(select(func.count()).select_from(ViewEmbedding)) == 40
        scores = session.scalars(select(FindingScore).where(FindingScore.study_pk == studies[2])).all()
        assert {row.finding for row in scores} == set(FINDINGS)
        best = max(scores, key=lambda row: row.score)
        assert best.finding == FINDINGS[2]
        assert all(row.probability is None for row in scores)
        vector = np.frombuffer(session.scalars(select(StudyEmbedding.vector)).first(), dtype=np.float32)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    index = load_index(settings, encoder.model_id)
    assert index is not None
    assert index.sorted_ids().tolist() == studies[:20]


def test_rerun_skips_done_work(settings: Settings, catalog: sessionmaker[Session], studies: list[int]) -> None:
    encoder = KeywordEncoder()
    run_build(settings, catalog, encoder, progress=False)
    encoder.encoded.clear()

    summary = run_build(settings, catalog, encoder, progress=False)

    assert encoder.encoded == []
    assert summary.embedded == 0
    assert not summary.index_rebuilt
    assert summary.indexed == 20


def test_failed_study_left_pending_and_others_stored(settings: Settings, catalog: sessionmaker[Session], studies: list[int], caplog: pytest.LogCaptureFixture) -> None:
    encoder = KeywordEncoder(fail_on={studies[3]})

    summary = run_build(settings, catalog, encoder, batch_size=8, progress=False)

    assert summary.embedded == 19
    assert summary.embedding_failures == 1
    assert f"study {studies[3]} could not be embedded" in caplog.text
    with catalog() as session:
        assert pending_study_pks(session, encoder.model_id) == [studies[3]]

    encoder.fail_on.clear()
    retry = run_build(settings, catalog, encoder, progress=False)

    assert retry.embedded == 1
    assert retry.index_rebuilt
    assert retry.indexed == 20


def test_interrupted_build_resumes(settings: Settings, catalog: sessionmaker[Session], studies: list[int]) -> None:
    class InterruptedEncoder(KeywordEncoder):
        calls: int = 0

        def encode_studies(self, session: Session, study_pks: Sequence[int]) -> list[StudyVectors]:
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().encode_studies(session, study_pks)

    interrupted = InterruptedEncoder()
    with pytest.raises(KeyboardInterrupt):
        run_build(settings, catalog, interrupted, batch_size=5, progress=False)
    assert embedded_count(catalog, interrupted.model_id) == 10

    resumed = KeywordEncoder()
    summary = run_build(settings, catalog, resumed, batch_size=5, progress=False)

    assert summary.embedded == 10
    assert sorted(resumed.encoded) == studies[10:20]
    assert summary.indexed == 20


def test_probabilities_stored_when_thresholds_exist(settings: Settings, catalog: sessionmaker[Session], studies: list[int]) -> None:
    encoder = KeywordEncoder()
    encoder.thresholds = FindingThresholds(  # type: ignore[attr-defined]
        encoder.model_id, {"lge": FindingThreshold(threshold=0.3, slope=10.0, intercept=-3.0, validation_positives=5, validation_negatives=5)}
    )

    run_build(settings, catalog, encoder, progress=False, previews=False)

    with catalog() as session:
        rows = session.scalars(select(FindingScore).where(FindingScore.finding == "lge")).all()
        others = session.scalars(select(FindingScore).where(FindingScore.finding != "lge")).all()
    lge_study = studies[6]
    assert all(row.probability is not None for row in rows)
    assert next(row for row in rows if row.study_pk == lge_study).probability > 0.9
    assert all(row.probability is None for row in others)


def test_force_rebuilds_index(settings: Settings, catalog: sessionmaker[Session], studies: list[int]) -> None:
    encoder = KeywordEncoder()
    run_build(settings, catalog, encoder, progress=False)

    summary = run_build(settings, catalog, encoder, embed=False, previews=False, force_index=True, progress=False)

    assert summary.index_rebuilt
    assert summary.indexed == 20
