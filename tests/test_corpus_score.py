"""Score the compiler on gold corpora exactly as shared/corpus/README.md describes.

- the shared dev corpus (shared/corpus/criteria_dev.jsonl): F1 >= 0.97, precision >= 0.98;
- our own held-out phrasings (tests/cases/criteria_heldout.jsonl: real-trial style
  criteria whose gold atoms were derived by hand from the DESIGN §6 facts): same bars.
The scorer itself is checked on hand-made trees (negation flips, ranges, restatements).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from eligibility.core.ir import Compare, Not, Range
from eligibility.compile.scoring import Atom, extract_atoms, match, score_file
from shared_paths import SHARED

HERE = Path(__file__).parent
# the shared dev corpus (shared/corpus/criteria_dev.jsonl), copied here so the test runs anywhere;
# when the shared file is present it is used, so a newer shared version is what gets scored
SHARED_DEV = SHARED / "corpus" / "criteria_dev.jsonl"
DEV = SHARED_DEV if SHARED_DEV.exists() else HERE / "cases" / "criteria_dev.jsonl"
HELD_OUT = HERE / "cases" / "criteria_heldout.jsonl"
# written later, scored before any tuning on it (F1 0.9785, P 1.0 at first run), then fixed
HELD_OUT_2 = HERE / "cases" / "criteria_heldout2.jsonl"
# a third set, also scored before tuning (P 0.9818, R 0.9818: "non-pregnant" negated the age range)
HELD_OUT_3 = HERE / "cases" / "criteria_heldout3.jsonl"
# a fourth (non-native English, European formats, CT.gov escapes), first run P 1.0, R 0.90, F1 0.947
HELD_OUT_4 = HERE / "cases" / "criteria_heldout4.jsonl"
# a fifth (several measurements per criterion): first run P 1.0, R 0.926; still missed on purpose:
# "a total daily dose of 0.5-1.5 U/kg" names no concept (only its unit says insulin)
HELD_OUT_5 = HERE / "cases" / "criteria_heldout5.jsonl"
# a sixth (81 criteria: both unit systems, BP pairs, ULN multiples, durations, drug doses, sentences
# with no registry concept), scored before any fix: P 0.9899, R 0.9899, F1 0.9899 (missed the second
# age bound of "18 years or older and younger than 75"; "disease duration" read as diabetes duration)
HELD_OUT_6 = HERE / "cases" / "criteria_heldout6.jsonl"
# real-trial phrasings (issue 9), scored before any fix: ages P 0.957 R 0.506 (under the age of, yo, ans,
# word numbers, hours, Minimum/Maximum Age on one line); labs P 1.0 R 0.535 (kg.m2, A 1 C, gm%, bare counts)
PHRASING = [HERE / "cases" / "criteria_phrasing_ages.jsonl", HERE / "cases" / "criteria_phrasing_labs.jsonl"]
# written after those fixes, scored once before further tuning: P 1.0 R 0.942 F1 0.970
HELD_OUT_7 = HERE / "cases" / "criteria_heldout7.jsonl"


def _report(name: str, score) -> None:
    print(f"\n{name}: {score.summary()}")
    for case in score.errors():
        print(f"  {case.id} {case.text!r}\n    fp={case.fp}\n    fn={case.fn}")


def test_dev_corpus_score():
    score = score_file(DEV)
    _report("criteria_dev", score)
    assert score.f1 >= 0.97
    assert score.precision >= 0.98


@pytest.mark.parametrize("path", [HELD_OUT, HELD_OUT_2, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5, HELD_OUT_6, HELD_OUT_7, *PHRASING],
                         ids=lambda p: p.stem)
def test_held_out_score(path):
    score = score_file(path)
    _report(path.stem, score)
    assert len(score.cases) >= 40
    assert score.f1 >= 0.97
    assert score.precision >= 0.98


def _compare(op: str, value: float, unit: str = "%") -> Compare:
    return Compare(concept="hba1c", op=op, value=value, unit=None, canonical_value=value, canonical_unit=unit, span=(0, 1))


def test_atoms_flip_under_odd_negation_only():
    assert extract_atoms(Not(child=_compare(">", 7), span=(0, 1))) == [Atom("hba1c", "<=", 7)]
    assert extract_atoms(Not(child=Not(child=_compare(">=", 7), span=(0, 1)), span=(0, 1))) == [Atom("hba1c", ">=", 7)]


def test_range_gives_two_atoms_with_its_inclusivity():
    node = Range(concept="bmi", low=20, high=35, low_inclusive=False, high_inclusive=True, unit=None,
                 canonical_low=20, canonical_high=35, canonical_unit="kg/m2", span=(0, 1))
    assert extract_atoms(node) == [Atom("bmi", ">", 20), Atom("bmi", "<=", 35)]


def test_matching_tolerance_restatements_and_uln():
    # 0.5 % relative: 7.0 vs 7.03 matches (0.43 %), 7.0 vs 7.05 does not (0.71 %)
    assert Atom("hba1c", ">=", 7.0).matches(Atom("hba1c", ">=", 7.03))
    assert not Atom("hba1c", ">=", 7.0).matches(Atom("hba1c", ">=", 7.05))
    assert not Atom("alt", ">", 3, uln=True).matches(Atom("alt", ">", 3))
    tp, fp, fn = match([Atom("hba1c", ">=", 7.0)], [Atom("hba1c", ">=", 7.0), Atom("bmi", "<", 40)])
    assert (tp, len(fp), len(fn)) == (1, 1, 0)
