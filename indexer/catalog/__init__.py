"""The SQL catalog: patients, studies, series, instances, files and errors."""

from indexer.catalog.models import (
    Base,
    Frame,
    Instance,
    Patient,
    ScanError,
    ScannedFile,
    Series,
    Study,
    StudyEmbedding,
    ViewEmbedding,
    FindingScore,
)
from indexer.catalog.session import create_catalog_engine, session_factory, upgrade_database

__all__ = [
    "Base",
    "Frame",
    "Instance",
    "Patient",
    "ScanError",
    "ScannedFile",
    "Series",
    "Study",
    "StudyEmbedding",
    "ViewEmbedding",
    "FindingScore",
    "create_catalog_engine",
    "session_factory",
    "upgrade_database",
]
