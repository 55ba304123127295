"""The CMR abbreviation lexicon, applied to reports and queries before the text tower.

A general sentence encoder has seen "LV" and "EF" rarely, so it matches them
on letters, not meaning: "dilated LV with reduced EF" lands near a report
about the right ventricle, and "HCM" near nothing in particular. Expanding
the abbreviations first ("dilated left ventricle with reduced ejection
fraction") lets the encoder use what it learned about the words.

The abbreviations are data, in ``lexicon/cmr_abbreviations.tsv``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent / "lexicon" / "cmr_abbreviations.tsv"

# An abbreviation is a whole word: no letter or digit directly before or after it.
_WORD_START = r"(?<![A-Za-z0-9])"
_WORD_END = r"(?![A-Za-z0-9])"


@dataclass(frozen=True)
class Abbreviation:
    """One lexicon entry. With ``ignore_case``, "lv" matches like "LV"."""

    abbreviation: str
    expansion: str
    ignore_case: bool


class Lexicon:
    """Expands CMR abbreviations in free text."""

    def __init__(self, entries: Iterable[Abbreviation]) -> None:
        self.entries = tuple(entries)
        self._exact = {entry.abbreviation: entry.expansion for entry in self.entries}
        self._folded = {entry.abbreviation.lower(): entry.expansion for entry in self.entries if entry.ignore_case}
        # Longest first, so LVEF is matched before LV.
        words = sorted((re.escape(entry.abbreviation) for entry in self.entries), key=len, reverse=True)
        self._pattern = re.compile(_WORD_START + "(" + "|".join(words) + ")" + _WORD_END, re.IGNORECASE)
        self._repeated = [
            re.compile(re.escape(entry.expansion) + r" \(" + re.escape(entry.expansion) + r"\)", re.IGNORECASE)
            for entry in self.entries
        ]

    def expand(self, text: str) -> str:
        """Return ``text`` with every known abbreviation replaced by its expansion.

        A case-sensitive entry (such as "MI") is left alone when the text
        writes it in another case ("mi"). "left ventricle (LV)" becomes
        "left ventricle", not "left ventricle (left ventricle)".
        """
        expanded = self._pattern.sub(self._replacement, text)
        for pattern in self._repeated:
            expanded = pattern.sub(lambda match: match.group(0).split(" (")[0], expanded)
        return expanded

    def _replacement(self, match: re.Match[str]) -> str:
        word = match.group(1)
        expansion = self._exact.get(word) or self._folded.get(word.lower())
        return expansion if expansion is not None else word


def read_lexicon(path: Path) -> Lexicon:
    """Read a lexicon TSV with the columns abbreviation, expansion and match ("any" or "exact").

    Lines starting with ``#`` are comments.

    Raises:
        ValueError: a row has an empty field or an unknown match value; the
            message names the file and line.
    """
    entries = []
    with path.open(encoding="utf-8", newline="") as stream:
        lines = (line for line in stream if not line.startswith("#"))
        for row_number, row in enumerate(csv.DictReader(lines, delimiter="\t"), start=1):
            abbreviation, expansion, match = ((row.get(key) or "").strip() for key in ("abbreviation", "expansion", "match"))
            if not abbreviation or not expansion or match not in ("any", "exact"):
                raise ValueError(
                    f"{path}: invalid data row {row_number} (not counting comments and the header): expected "
                    f"abbreviation, expansion and match 'any' or 'exact', got {row}"
                )
            entries.append(Abbreviation(abbreviation, expansion, ignore_case=match == "any"))
    return Lexicon(entries)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """Return the lexicon shipped with the package."""
    return read_lexicon(DEFAULT_LEXICON_PATH)


def expand_abbreviations(text: str) -> str:
    """Expand CMR abbreviations in ``text`` with the shipped lexicon."""
    return default_lexicon().expand(text)
