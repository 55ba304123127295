"""Synthetic cine CMR archive: DICOM studies, radiology reports and ground truth.

:func:`generate_archive` is the entry point; ``cmr-search demo-data`` calls it.
See docs/phantom.md for the model, its parameter ranges and label definitions.
"""

from phantom.archive import ArchiveSummary, generate_archive, read_ground_truth
from phantom.labels import LABEL_NAMES, LABEL_RULES
from phantom.pathology import DEFAULT_MIX, parse_mix

__all__ = ["ArchiveSummary", "generate_archive", "read_ground_truth", "LABEL_NAMES", "LABEL_RULES", "DEFAULT_MIX", "parse_mix"]
