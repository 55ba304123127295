"""Write a batch of header records into the catalog: files, patients, studies, instances, errors.

Every batch is one transaction, so an interrupted scan leaves whole batches.
A study that receives or loses an instance gets ``needs_assembly`` set in
the same transaction, so a run that stops before assembly leaves the flag
for the next run to find.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from indexer.catalog.models import Instance, Patient, ScanError, ScannedFile, Study
from indexer.headers import HeaderRecord

FILES = ScannedFile.__table__
INSTANCES = Instance.__table__
SCAN_ERRORS = ScanError.__table__

# Stand-in PatientID for objects without one, so each such study gets its own patient.
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
            instance_rows.append(
                {
                    "sop_instance_uid": record.sop_instance_uid,
                    "sop_class_uid": record.sop_class_uid,
                    "study_pk": study_pk,
                    "file_pk": file_pk,
                    "transfer_syntax_uid": record.transfer_syntax_uid,
                    "number_of_frames": record.number_of_frames,
                    "header": record.header,
                }
            )
        elif status in ("error", "non_dicom"):
            error_rows.append(
                {"file_pk": file_pk, "path": record.path, "stage": record.stage or "read", "reason": record.reason or ""}
            )

    # Core inserts (executemany) rather than ORM bulk inserts: about twice as fast for these row counts.
    connection = session.connection()
    if instance_rows:
        connection.execute(INSTANCES.insert(), instance_rows)
    if error_rows:
        connection.execute(SCAN_ERRORS.insert(), error_rows)
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
        connection.execute(FILES.insert(), new_rows)
        paths = [row["path"] for row in new_rows]
        ids.update((path, file_pk) for path, file_pk in connection.execute(select(FILES.c.path, FILES.c.id).where(FILES.c.path.in_(paths))))
    if changed_rows:
        session.execute(update(ScannedFile), changed_rows)
        ids.update((row["path"], row["id"]) for row in changed_rows)
    return [ids[row["path"]] for row in rows]


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
        patient_key = record.patient_id or f"{MISSING_PATIENT_PREFIX}{uid}"
        patient_pk = session.scalar(select(Patient.id).where(Patient.patient_id == patient_key[:64]))
        if patient_pk is None:
            patient_pk = session.execute(insert(Patient).values(patient_id=patient_key[:64]).returning(Patient.id)).scalar_one()
        found[uid] = session.execute(
            insert(Study).values(study_instance_uid=uid, patient_pk=patient_pk, needs_assembly=True).returning(Study.id)
        ).scalar_one()
    return found
