"""Write a batch of header records into the catalog: files, patients, studies, instances, errors.

Every batch is one transaction, so an interrupted scan leaves whole batches.
A study that receives or loses an instance gets ``needs_assembly`` set in
the same transaction, so a run that stops before assembly leaves the flag
for the next run to find.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from indexer.catalog.models import Instance, Patient, ScanError, ScannedFile, Study

if TYPE_CHECKING:
    # Only for annotations: importing indexer.headers loads pydicom, which a no-op rerun does not need.
    from indexer.headers import HeaderRecord

FILES: Table = ScannedFile.__table__  # type: ignore[assignment]
INSTANCES: Table = Instance.__table__  # type: ignore[assignment]
SCAN_ERRORS: Table = ScanError.__table__  # type: ignore[assignment]
FILE_COLUMNS = ("path", "size_bytes", "mtime_ns", "status", "sop_instance_uid")
INSTANCE_COLUMNS = (
    "sop_instance_uid", "sop_class_uid", "study_pk", "file_pk", "transfer_syntax_uid", "number_of_frames", "header",
)
SCAN_ERROR_COLUMNS = ("file_pk", "path", "stage", "reason")

# Stand-in PatientID for objects without one, so each such study gets its own patient.
# A hash of the StudyInstanceUID follows, because prefix and UID could pass the 64-character limit.
MISSING_PATIENT_PREFIX = "missing-patient-id:"


def store_batch(session: Session, records: Sequence[HeaderRecord], known_files: dict[str, int]) -> Counter[str]:
    """Store ``records`` and return how many files ended in each status.

    ``known_files`` maps a path already in the catalog to its ScannedFile id.
    Such files were re-read because their size or mtime changed, so their old
    instance and errors are removed first. The caller commits.
    """
    counts: Counter[str] = Counter()
    touched_studies: set[int] = set()
    _forget_changed_files(session, [known_files[r.path] for r in records if r.path in known_files], touched_studies)

    sop_uids = [r.sop_instance_uid for r in records if r.status == "dicom" and r.sop_instance_uid]
    stored_uids = set(
        session.scalars(select(Instance.sop_instance_uid).where(Instance.sop_instance_uid.in_(sop_uids)))
    ) if sop_uids else set()

    studies = _study_ids(session, [r for r in records if r.status == "dicom"])
    statuses = []
    for record in records:
        status = record.status
        if status == "dicom" and record.sop_instance_uid in stored_uids:
            status = "duplicate"
        elif status == "dicom":
            stored_uids.add(record.sop_instance_uid)
        statuses.append(status)
        counts[status] += 1
    file_pks = _upsert_files(session, records, statuses, known_files)

    instance_rows = []
    error_rows = []
    for record, status, file_pk in zip(records, statuses, file_pks):
        if status == "dicom":
            study_pk = studies[record.study_instance_uid]  # type: ignore[index]
            touched_studies.add(study_pk)
            header_json = record.header_json if record.header_json is not None else json.dumps(record.header)
            instance_rows.append(
                (record.sop_instance_uid, record.sop_class_uid, study_pk, file_pk,
                 record.transfer_syntax_uid, record.number_of_frames, header_json)
            )
        elif status in ("error", "non_dicom"):
            error_rows.append((file_pk, record.path, record.stage or "read", record.reason or ""))

    insert_rows(session, INSTANCES, INSTANCE_COLUMNS, instance_rows)
    insert_rows(session, SCAN_ERRORS, SCAN_ERROR_COLUMNS, error_rows)
    if touched_studies:
        session.execute(update(Study).where(Study.id.in_(touched_studies)).values(needs_assembly=True))
    return counts


def _forget_changed_files(session: Session, file_pks: list[int], touched_studies: set[int]) -> None:
    # NOTE: if a changed file held a SOP instance that another path duplicates, the instance is
    # dropped here and comes back only when that duplicate path itself is re-read.
    if not file_pks:
        return
    touched_studies.update(session.scalars(select(Instance.study_pk).where(Instance.file_pk.in_(file_pks))))
    session.execute(delete(Instance).where(Instance.file_pk.in_(file_pks)))
    session.execute(delete(ScanError).where(ScanError.file_pk.in_(file_pks)))


def _upsert_files(
    session: Session, records: Sequence[HeaderRecord], statuses: list[str], known_files: dict[str, int]
) -> list[int]:
    """Insert new ScannedFile rows and update re-read ones; return the file ids in record order."""
    rows = [
        {
            "path": record.path,
            "size_bytes": record.size_bytes,
            "mtime_ns": record.mtime_ns,
            "status": status,
            "sop_instance_uid": record.sop_instance_uid,
        }
        for record, status in zip(records, statuses)
    ]
    new_rows = [row for row in rows if row["path"] not in known_files]
    changed_rows = [{"id": known_files[row["path"]], **row} for row in rows if row["path"] in known_files]
    ids = {}
    connection = session.connection()
    if new_rows:
        # A plain executemany and one SELECT: INSERT ... RETURNING runs row by row on SQLite.
        insert_rows(session, FILES, FILE_COLUMNS, [tuple(row[c] for c in FILE_COLUMNS) for row in new_rows])
        paths = [row["path"] for row in new_rows]
        ids.update((path, file_pk) for path, file_pk in connection.execute(select(FILES.c.path, FILES.c.id).where(FILES.c.path.in_(paths))))
    if changed_rows:
        session.execute(update(ScannedFile), changed_rows)
        ids.update((row["path"], row["id"]) for row in changed_rows)
    return [ids[row["path"]] for row in rows]


def insert_rows(session: Session, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` with one DB-API executemany.

    This skips SQLAlchemy's per-row parameter processing, which was the
    largest cost of the writing process. JSON columns therefore receive JSON
    text, which SQLite stores as is and PostgreSQL casts to json.
    """
    if not rows:
        return
    connection = session.connection()
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(connection.dialect.paramstyle)
    if marker is None:
        json_columns = {i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)}
        dicts = [
            {name: json.loads(value) if i in json_columns else value for i, (name, value) in enumerate(zip(columns, row))}
            for row in rows
        ]
        connection.execute(table.insert(), dicts)
        return
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    connection.exec_driver_sql(sql, rows)


def _study_ids(session: Session, records: Sequence[HeaderRecord]) -> dict[str, int]:
    """Return the catalog id of each record's StudyInstanceUID, creating patients and studies."""
    uids = {r.study_instance_uid for r in records if r.study_instance_uid}
    if not uids:
        return {}
    found = {uid: pk for uid, pk in session.execute(select(Study.study_instance_uid, Study.id).where(Study.study_instance_uid.in_(uids)))}
    for record in records:
        uid = record.study_instance_uid
        if uid is None or uid in found:
            continue
        patient_key = record.patient_id or f"{MISSING_PATIENT_PREFIX}{hashlib.sha1(uid.encode()).hexdigest()}"
        patient_pk = session.scalar(select(Patient.id).where(Patient.patient_id == patient_key[:64]))
        if patient_pk is None:
            patient_pk = session.execute(insert(Patient).values(patient_id=patient_key[:64]).returning(Patient.id)).scalar_one()
        found[uid] = session.execute(
            insert(Study).values(study_instance_uid=uid, patient_pk=patient_pk, needs_assembly=True).returning(Study.id)
        ).scalar_one()
    return found
