"""Fit CMR-CLIP finding thresholds on a site's own labelled, already indexed studies.

Labels come from a CSV file with a header row and the columns
``accession_number`` or ``study_instance_uid`` (either identifies the study),
``finding`` (one of :data:`embeddings.cmrclip.prompts.FINDING_NAMES`) and
``present`` (1/0, true/false or yes/no). Scores are computed from the study
vectors that ``cmr-search index --model cmrclip`` stored under the same model
id, so the thresholds apply to exactly the scores the app shows.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from embeddings.cmrclip.prompts import FINDING_NAMES, fit_site_thresholds
from embeddings.encoder import StudyEncoder
from embeddings.zeroshot import FindingThresholds, score_findings
from indexer.catalog.models import Study, StudyEmbedding

logger = logging.getLogger(__name__)

STUDY_COLUMNS = ("accession_number", "study_instance_uid")
TRUE_VALUES = {"1", "true", "yes", "y"}
FALSE_VALUES = {"0", "false", "no", "n"}


class SiteLabelError(ValueError):
    """The site label file is missing, malformed or names an unknown finding."""


def read_site_labels(session: Session, path: Path) -> dict[str, dict[int, bool]]:
    """Read the label CSV at ``path`` and return finding → {catalog study id → present}.

    Rows whose study is not in the catalog are skipped and counted in the log
    (by row count only, since accession numbers are patient data).

    Raises:
        SiteLabelError: the file is missing or lacks a required column, or a
            row has an unknown finding or an invalid ``present`` value. The
            message names the row number.
    """
    if not path.is_file():
        raise SiteLabelError(f"label file {path} not found")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        study_column = next((name for name in STUDY_COLUMNS if name in columns), None)
        if study_column is None or not {"finding", "present"} <= columns:
            raise SiteLabelError(
                f"label file {path} needs the columns finding, present and one of {', '.join(STUDY_COLUMNS)}; "
                f"found {', '.join(sorted(columns)) or 'none'}"
            )
        rows = list(reader)

    study_ids = _study_ids(session, study_column, {row[study_column].strip() for row in rows})
    labels: dict[str, dict[int, bool]] = {}
    unknown_studies = 0
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        finding = row["finding"].strip()
        if finding not in FINDING_NAMES:
            raise SiteLabelError(f"{path} row {number}: unknown finding {finding!r}; expected one of {', '.join(FINDING_NAMES)}")
        present = _parse_present(row["present"], path, number)
        study_pk = study_ids.get(row[study_column].strip())
        if study_pk is None:
            unknown_studies += 1
            continue
        labels.setdefault(finding, {})[study_pk] = present
    if unknown_studies:
        logger.warning("%d label rows name studies that are not in the catalog and were skipped", unknown_studies)
    return labels


def fit_thresholds_from_catalog(
    session: Session, encoder: StudyEncoder, labels: Mapping[str, Mapping[int, bool]]
) -> FindingThresholds:
    """Score the labelled studies from their stored vectors and fit thresholds per finding.

    Labelled studies without a vector under ``encoder.model_id`` (not yet
    indexed with these weights) are left out and counted in the log.
    """
    labelled = sorted({study_pk for per_study in labels.values() for study_pk in per_study})
    rows = session.execute(
        select(StudyEmbedding.study_pk, StudyEmbedding.vector).where(
            StudyEmbedding.model_id == encoder.model_id, StudyEmbedding.study_pk.in_(labelled)
        )
    ).all()
    vectors = {study_pk: np.frombuffer(vector, dtype=np.float32) for study_pk, vector in rows}
    missing = len(labelled) - len(vectors)
    if missing:
        logger.warning("%d labelled studies have no %s vector yet and were left out", missing, encoder.model_id)

    study_pks = sorted(vectors)
    if not study_pks:
        return FindingThresholds(encoder.model_id, {})
    scores = score_findings(encoder, np.stack([vectors[pk] for pk in study_pks]))

    aligned_scores: dict[str, np.ndarray] = {}
    aligned_labels: dict[str, np.ndarray] = {}
    for finding, per_study in labels.items():
        rows_with_label = [row for row, pk in enumerate(study_pks) if pk in per_study]
        aligned_scores[finding] = scores[finding][rows_with_label]
        aligned_labels[finding] = np.array([per_study[study_pks[row]] for row in rows_with_label], dtype=bool)
    return fit_site_thresholds(encoder.model_id, aligned_scores, aligned_labels)


def _study_ids(session: Session, column: str, values: set[str]) -> dict[str, int]:
    attribute = Study.accession_number if column == "accession_number" else Study.study_instance_uid
    found = session.execute(select(attribute, Study.id).where(attribute.in_(values))).all()
    return {value: study_pk for value, study_pk in found}


def _parse_present(value: str, path: Path, number: int) -> bool:
    text = value.strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise SiteLabelError(f"{path} row {number}: present is {value!r}; expected 1/0, true/false or yes/no")
