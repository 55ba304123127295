"""SQLAlchemy 2 models of the catalog.

The hierarchy follows the DICOM information model: a patient has studies
(StudyInstanceUID), a study has series, and a series has an ordered
slice × phase grid of frames. A frame points at one instance (one file) and,
for Enhanced MR multi-frame objects, at a frame number inside it.

A catalog "series" is not always one SeriesInstanceUID. Some archives share
one SeriesInstanceUID across every series of a study, and some vendors write
each short-axis slice as its own series, so the indexer splits and merges
before it writes a ``Series`` row. ``Series.group_key`` records the grouping.

Identifiers such as PatientID and StudyInstanceUID are patient data. They are
stored here so that a case can be opened in the PACS, but code must log the
integer primary keys instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

UID = String(64)  # PS3.5: a UID is at most 64 characters


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), unique=True, doc="DICOM PatientID")
    sex: Mapped[str | None] = mapped_column(String(1), doc="PatientSex: M, F or O")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)

    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    accession_number: Mapped[str | None] = mapped_column(String(64), index=True)
    study_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    study_description: Mapped[str | None] = mapped_column(String(256))
    age_years: Mapped[float | None] = mapped_column(Float, doc="PatientAge, or StudyDate minus PatientBirthDate")
    sex: Mapped[str | None] = mapped_column(String(1), index=True)
    manufacturer: Mapped[str | None] = mapped_column(String(128), index=True)
    model_name: Mapped[str | None] = mapped_column(String(128), doc="ManufacturerModelName")
    field_strength_t: Mapped[float | None] = mapped_column(Float, doc="MagneticFieldStrength in tesla")
    institution_name: Mapped[str | None] = mapped_column(String(256))
    report_text: Mapped[str | None] = mapped_column(Text)
    impression: Mapped[str | None] = mapped_column(Text)
    needs_assembly: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=true(), index=True,
        doc="Set when instances were added or changed since the series were last assembled",
    )
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now(), onupdate=func.now())

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list[Series]] = relationship(back_populates="study", cascade="all, delete-orphan")


class Series(Base):
    """One assembled series: a cine stack, a scout, an LGE stack and so on."""

    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("study_pk", "group_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    group_key: Mapped[str] = mapped_column(String(255), doc="Stable key of the split/merge rule that formed it")
    series_instance_uids: Mapped[list[Any]] = mapped_column(JSON, doc="Every SeriesInstanceUID merged in")
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String(256))
    protocol_name: Mapped[str | None] = mapped_column(String(256))
    sequence_name: Mapped[str | None] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16), index=True, doc="cine, lge, scout, mapping, perfusion, flow, other")
    kind_rule: Mapped[str] = mapped_column(String(128), doc="The classification rule that chose the kind")
    view: Mapped[str] = mapped_column(String(16), index=True, doc="sax, 2ch, 3ch, 4ch, lvot, other")
    view_rule: Mapped[str] = mapped_column(String(128), doc="The classification rule that chose the view")
    slices: Mapped[int] = mapped_column(Integer)
    phases: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    pixel_spacing_mm: Mapped[list[Any] | None] = mapped_column(JSON, doc="PixelSpacing: row spacing, column spacing")
    slice_thickness_mm: Mapped[float | None] = mapped_column(Float)
    slice_spacing_mm: Mapped[float | None] = mapped_column(Float, doc="Median distance between slice positions")
    image_orientation: Mapped[list[Any] | None] = mapped_column(JSON, doc="ImageOrientationPatient, 6 cosines")
    rr_interval_ms: Mapped[float | None] = mapped_column(Float)
    heart_rate_bpm: Mapped[float | None] = mapped_column(Float)
    temporal_resolution_ms: Mapped[float | None] = mapped_column(Float, doc="Mean TriggerTime step between phases")
    complete: Mapped[bool] = mapped_column(Boolean)
    problems: Mapped[list[Any]] = mapped_column(JSON, doc="Missing or duplicate frames, as sentences")
    order_rule: Mapped[str | None] = mapped_column(
        String(128), doc="How slices and phases were ordered, e.g. 'slices: position; phases: TriggerTime'"
    )

    study: Mapped[Study] = relationship(back_populates="series")
    frames: Mapped[list[Frame]] = relationship(
        back_populates="series", cascade="all, delete-orphan", order_by="(Frame.slice_index, Frame.phase_index)"
    )


class Frame(Base):
    """One image of a series grid: slice ``slice_index`` at phase ``phase_index``.

    Slice 0 is the first position along the slice normal (the cross product of
    the row and column cosines of ImageOrientationPatient). ``frame_number`` is
    1-based inside a multi-frame instance and 1 for a single-frame instance.
    """

    __tablename__ = "frames"
    __table_args__ = (UniqueConstraint("series_pk", "slice_index", "phase_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    slice_index: Mapped[int] = mapped_column(Integer)
    phase_index: Mapped[int] = mapped_column(Integer)
    instance_pk: Mapped[int] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), index=True)
    frame_number: Mapped[int] = mapped_column(Integer, default=1)
    trigger_time_ms: Mapped[float | None] = mapped_column(Float)
    slice_position_mm: Mapped[float | None] = mapped_column(Float, doc="ImagePositionPatient · slice normal")
    image_position: Mapped[list[Any] | None] = mapped_column(JSON, doc="ImagePositionPatient in mm")

    series: Mapped[Series] = relationship(back_populates="frames")
    instance: Mapped[Instance] = relationship()


class Instance(Base):
    """One SOP instance (one DICOM object), stored once whatever its paths."""

    __tablename__ = "instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(UID, unique=True)
    sop_class_uid: Mapped[str | None] = mapped_column(UID)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    file_pk: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    transfer_syntax_uid: Mapped[str | None] = mapped_column(UID)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    header: Mapped[dict[str, Any]] = mapped_column(JSON, doc="The attributes that grouping and assembly read")


class ScannedFile(Base):
    """One path seen by a scan; (size, mtime) decides whether to re-read it."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True, doc="dicom, duplicate, non_image, non_dicom or error")
    sop_instance_uid: Mapped[str | None] = mapped_column(UID, index=True)
    scanned_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())


class ScanError(Base):
    """A file that could not be catalogued, with the reason."""

    __tablename__ = "scan_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_pk: Mapped[int | None] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(32), doc="read, header, assemble or decode")
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())


class StudyEmbedding(Base):
    """One study's vector from one model, float32 bytes, L2-normalised."""

    __tablename__ = "study_embeddings"
    __table_args__ = (UniqueConstraint("study_pk", "model_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(128), index=True, doc="Model id with its content hash")
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    dimension: Mapped[int] = mapped_column(Integer)
    segments: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="Which input segments were real or filled")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, server_default=func.now())


class ViewEmbedding(Base):
    """One series' per-view vector from one model, float32 bytes."""

    __tablename__ = "view_embeddings"
    __table_args__ = (UniqueConstraint("series_pk", "model_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_pk: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(128), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class FindingScore(Base):
    """A zero-shot finding score of one study under one model."""

    __tablename__ = "finding_scores"
    __table_args__ = (UniqueConstraint("study_pk", "model_id", "finding"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_pk: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(128), index=True)
    finding: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float, doc="Cosine similarity margin of positive over negative prompts")
    probability: Mapped[float | None] = mapped_column(Float, doc="Calibrated probability when thresholds exist")
