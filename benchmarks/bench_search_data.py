"""Synthetic catalogs and a synthetic encoder for the search benchmark.

Vectors are clustered: a mixture of Gaussians around ``clusters`` random
centres, then L2-normalised. Study embeddings are expected to cluster by
finding and view set, whereas uniformly random vectors in 256 dimensions make
every neighbour nearly equidistant. Query vectors are
sums of two random centres plus noise, so they fall between clusters as
cross-modal text queries tend to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.encoder import FindingPrompts, StudyVectors
from phantom.labels import LABEL_NAMES

# The finding names are the phantom ground truth's label keys.
FINDINGS = LABEL_NAMES
RARE_MANUFACTURER = "Rare Vendor"  # given to 1 % of the studies, for the selective filter
IMPRESSION = (
    "Dilated left ventricle with moderately reduced systolic function. Inferior wall motion abnormality "
    "with subendocardial late gadolinium enhancement. No pericardial effusion."
)


@dataclass
class SyntheticSpace:
    """Cluster centres shared by the study vectors and the query vectors of one benchmark run."""

    dimension: int
    clusters: int
    seed: int

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self.centres = rng.normal(size=(self.clusters, self.dimension)).astype(np.float32)

    def study_vectors(self, count: int, chunk: int = 100_000) -> np.ndarray:
        """Return ``count`` unit vectors, generated in chunks to bound temporary memory."""
        rng = np.random.default_rng(self.seed + 1)
        vectors = np.empty((count, self.dimension), dtype=np.float32)
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            block = self.centres[rng.integers(self.clusters, size=size)]
            block = block + rng.normal(scale=0.8, size=block.shape).astype(np.float32)
            vectors[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return vectors

    def query_vector(self, text: str) -> np.ndarray:
        """Return a deterministic unit vector between two centres for ``text``."""
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        first, second = rng.integers(self.clusters, size=2)
        vector = self.centres[first] + self.centres[second] + rng.normal(scale=0.8, size=self.dimension)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


class SyntheticEncoder:
    """A StudyEncoder whose text vectors come from :class:`SyntheticSpace`; it never embeds studies."""

    trained_on_synthetic_data = True

    def __init__(self, space: SyntheticSpace) -> None:
        self.space = space
        self.dimension = space.dimension
        self.model_id = f"bench-synthetic-{space.dimension}-{space.seed}"

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.space.query_vector(text) for text in texts])

    def encode_studies(self, session: object, study_pks: Sequence[int]) -> list[StudyVectors]:
        raise NotImplementedError("benchmark vectors are written straight into the catalog")

    def finding_prompts(self) -> Sequence[FindingPrompts]:
        return [FindingPrompts(name, name.replace("_", " "), (name.replace("_", " "),)) for name in FINDINGS]


def fill_catalog(database_path: str, vectors: np.ndarray, model_id: str, chunk: int = 50_000) -> float:
    """Insert one patient, study, two cine series, eight finding scores and a vector per row of ``vectors``.

    The schema must exist (run the migrations first). Study primary keys are
    1..n. Returns the seconds taken. Durability pragmas are off: this is a
    throw-away benchmark database.
    """
    started = time.perf_counter()
    connection = sqlite3.connect(database_path)
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA journal_mode=OFF")
    count = len(vectors)
    for start in range(0, count, chunk):
        pks = range(start + 1, min(start + chunk, count) + 1)
        with connection:
            connection.executemany("INSERT INTO patients (id, patient_id, sex) VALUES (?, ?, ?)", _patients(pks))
            connection.executemany(
                "INSERT INTO studies (id, study_instance_uid, patient_pk, accession_number, study_date, age_years, sex, "
                "manufacturer, field_strength_t, impression, report_text, needs_assembly, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, CURRENT_TIMESTAMP)",
                _studies(pks),
            )
            connection.executemany(
                "INSERT INTO series (study_pk, group_key, series_instance_uids, series_number, kind, kind_rule, view, "
                "view_rule, slices, phases, rows, columns, complete, problems) "
                "VALUES (?, ?, '[]', ?, 'cine', 'bench', ?, 'bench', ?, 25, 192, 192, 1, '[]')",
                _series(pks),
            )
            connection.executemany(
                "INSERT INTO finding_scores (study_pk, model_id, finding, score, probability) VALUES (?, ?, ?, ?, ?)",
                _finding_scores(pks, model_id),
            )
            connection.executemany(
                "INSERT INTO study_embeddings (study_pk, model_id, vector, dimension, segments, created_at) "
                "VALUES (?, ?, ?, ?, '{}', CURRENT_TIMESTAMP)",
                ((pk, model_id, vectors[pk - 1].tobytes(), vectors.shape[1]) for pk in pks),
            )
    connection.close()
    return time.perf_counter() - started


def _patients(pks: range) -> Iterator[tuple[int, str, str]]:
    for pk in pks:
        yield pk, f"BENCH^{pk:08d}", "FM"[pk % 2]


def _studies(pks: range) -> Iterator[tuple[object, ...]]:
    base = dt.date(2015, 1, 1)
    for pk in pks:
        manufacturer = RARE_MANUFACTURER if pk % 100 == 0 else ("SIEMENS", "GE MEDICAL SYSTEMS", "Philips")[pk % 3]
        yield (
            pk,
            f"1.2.826.0.1.3680043.10.777.{pk}",
            pk,
            f"B{pk:09d}",
            (base + dt.timedelta(days=pk % 3650)).isoformat(),
            float(18 + pk % 70),
            "FM"[pk % 2],
            manufacturer,
            (1.5, 3.0)[pk % 2],
            IMPRESSION,
            "FINDINGS: ...\nIMPRESSION: " + IMPRESSION,
        )


def _series(pks: range) -> Iterator[tuple[object, ...]]:
    for pk in pks:
        yield pk, "sax", 1, "sax", 10
        yield pk, "4ch", 2, "4ch", 1


def _finding_scores(pks: range, model_id: str) -> Iterator[tuple[object, ...]]:
    for pk in pks:
        for number, finding in enumerate(FINDINGS):
            score = ((pk * 31 + number * 17) % 100) / 500.0
            yield pk, model_id, finding, score, None
