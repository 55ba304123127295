"""Record in the catalog's scan_errors table the failures that only show after the scan.

The scan reads headers, not pixels, so a corrupt compressed pixel stream is
found only when a later stage decodes it. :func:`record_decode_error` stores
such a failure next to the scan's own errors, so the summary counts it and a
rescan of the changed file removes it.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from indexer.catalog.models import Instance, ScanError, ScannedFile

logger = logging.getLogger(__name__)

DECODE_STAGE = "decode"


def record_decode_error(session: Session, instance_pk: int, reason: str) -> bool:
    """Store a scan_errors row with stage ``decode`` for the file of instance ``instance_pk``.

    The row is committed in a transaction of its own on the engine of
    ``session``, so it stays when the caller rolls back after the
    PixelDataError that usually follows. A row with the same file and reason
    is not stored twice. Returns True when a row was added. A database error
    is logged and returns False rather than hiding the decode failure.
    """
    # NOTE: on SQLite, when ``session`` already holds the write lock, this waits for the
    # busy timeout (30 s) and then logs the failure, because SQLite has only one writer.
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    try:
        with Session(engine) as own_session, own_session.begin():
            return _add_decode_error(own_session, instance_pk, reason)
    except SQLAlchemyError as error:
        logger.error("cannot record the decode error of instance %d: %s", instance_pk, error)
        return False


def _add_decode_error(session: Session, instance_pk: int, reason: str) -> bool:
    row = session.execute(
        select(ScannedFile.id, ScannedFile.path)
        .join(Instance, Instance.file_pk == ScannedFile.id)
        .where(Instance.id == instance_pk)
    ).one_or_none()
    if row is None:
        logger.warning("cannot record the decode error of instance %d: it is not in the catalog", instance_pk)
        return False
    file_pk, path = row

    already_stored = session.scalar(
        select(ScanError.id).where(
            ScanError.file_pk == file_pk, ScanError.stage == DECODE_STAGE, ScanError.reason == reason
        ).limit(1)
    )
    if already_stored is not None:
        return False
    session.add(ScanError(file_pk=file_pk, path=path, stage=DECODE_STAGE, reason=reason))
    logger.warning("recorded a decode error for instance %d (file %d)", instance_pk, file_pk)
    return True
