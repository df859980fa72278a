"""Segmentation never folds one top-level item into another (issue 9).

A generated criteria text mixes list styles the way registries do: numbered
lists that restart their count, bullets of several kinds, items holding an
inline `1) … 2) …` list, sub-items indented deeper (bullets, letters, numbers,
roman numerals), wrapped lines (hanging or flush left), blank lines or none.
The generator knows where each top-level item begins and ends, so the test
checks, without asking the segmenter:

- no item spans two top-level items, and every top-level item is an item of
  its own (a root: not folded under the one before it);
- every non-space character is in an item, a marker or a heading;
- ids are unique, a numbered item of a section's first list keeps its number,
  and the ids of the first items do not change when more items follow.

The 20 real ClinicalTrials.gov trials are checked the same way, with the
top-level items found from the text alone: in each section, the lines whose
list marker sits at the section's leftmost marker column (a right-aligned
count, ` 9.` above `10.`, is one column further in).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility.compile.lines import marker, split_lines
from eligibility.compile.segment import Segmentation, segment
from eligibility.compile.trials import compile_ctgov_record
from shared_paths import SHARED

REAL = SHARED / "corpus" / "real_trials_sample.csv"

# words of item bodies: none starts a list marker or names a section heading
WORDS = ["age", "HbA1c", "7.5%", "years", "with", "type", "diabetes", "≥", "18", "BMI", "kg/m2", "history",
         "stable", "dose", "metformin", "for", "at", "least", "months", "patients", "or", "and", "no", "prior",
         "therapy", "eGFR", "<", "30", "signed", "consent", "pregnancy", "test", "negative"]
TOP_STYLES = ["{n}.", "{n})", "({n})", "{n}-", "-", "*", "•", "▪"]
SUB_STYLES = ["-", "o", "{letter})", "({letter})", "{n}.", "{roman}.", "•"]
ROMAN = ["i", "ii", "iii", "iv"]


@dataclass
class Top:
    section: str
    start: int           # offset of the marker
    end: int             # offset after the item's last non-space character
    number: int | None


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def put(self, text: str) -> int:
        start = self.pos
        self.parts.append(text)
        self.pos += len(text)
        return start

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _marker_text(style: str, n: int) -> str:
    return style.format(n=n, letter="abcdefgh"[n - 1], roman=ROMAN[n - 1])


@st.composite
def _body(draw, capital: bool = True) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=9))
    text = " ".join(words)
    return text[0].upper() + text[1:] if capital else text


@st.composite
def trials(draw):
    """(text, [Top, ...]) for a generated two-section criteria text."""
    out = _Writer()
    tops: list[Top] = []
    for section, heading in (("inclusion", "Inclusion Criteria:"), ("exclusion", "Exclusion Criteria:")):
        base = draw(st.sampled_from([0, 2, 4, 10]))
        out.put(" " * draw(st.integers(0, base)) + heading + "\n")
        if draw(st.booleans()):
            out.put("\n")
        for style in draw(st.lists(st.sampled_from(TOP_STYLES), min_size=1, max_size=3)):
            count = draw(st.integers(1, 4))
            n = 1
            while n <= count:
                mark = _marker_text(style, n)
                start = out.put(" " * base) + base
                out.put(mark + " ")
                body = draw(_body())
                inline = draw(st.sampled_from(["", "", "", ": 1) {a} 2) {b}", " as follows: (1) {a}; (2) {b}"]))
                if inline:
                    body += inline.format(a=draw(_body(False)), b=draw(_body(False)))
                out.put(body)
                end = out.pos
                numbered = "{n}" in style
                # a flattened list: the next item of a `1.` / `1)` list on the same line
                if numbered and style in ("{n}.", "{n})") and not inline and n < count and draw(st.booleans()):
                    tops.append(Top(section, start, end, n))
                    n += 1
                    out.put(" ")
                    start = out.pos
                    out.put(_marker_text(style, n) + " " + draw(_body()))
                    end = out.pos
                out.put("\n")
                hang = base + len(mark) + 1
                for _ in range(draw(st.integers(0, 2))):      # wrapped lines: hanging or flush left
                    indent = draw(st.sampled_from([hang, hang, base]))
                    out.put(" " * indent + draw(_body(False)))
                    end = out.pos
                    out.put("\n")
                subs = draw(st.integers(0, 3)) if draw(st.booleans()) else 0
                if subs:
                    sub_style = draw(st.sampled_from(SUB_STYLES))
                    sub_indent = base + draw(st.integers(2, 6))
                    for k in range(1, subs + 1):
                        if draw(st.booleans()):
                            out.put("\n")
                        out.put(" " * sub_indent + _marker_text(sub_style, k) + " " + draw(_body()))
                        end = out.pos
                        out.put("\n")
                        if draw(st.booleans()):
                            out.put(" " * (sub_indent + len(_marker_text(sub_style, k)) + 1) + draw(_body(False)))
                            end = out.pos
                            out.put("\n")
                tops.append(Top(section, start, end, n if numbered else None))
                if draw(st.booleans()):
                    out.put("\n")
                n += 1
    return out.text, tops


def uncovered(text: str, seg: Segmentation) -> list[tuple[int, str]]:
    """Non-space characters that belong to no item, marker or heading."""
    covered = bytearray(len(text))
    spans = [it.span for it in seg.items] + [(h.start, h.end) for h in seg.headings]
    spans += [it.marker for it in seg.all_items() if it.marker]
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    return [(k, ch) for k, ch in enumerate(text) if not covered[k] and not ch.isspace()]


def folded(seg: Segmentation, tops: list[tuple[int, int]]) -> list[str]:
    """Items whose span reaches into more than one top-level item ([start, end) each)."""
    bad = []
    for item in seg.all_items():
        low = item.marker[0] if item.marker else item.start
        touched = [t for t in tops if low < t[1] and t[0] < item.end]
        if len(touched) > 1:
            bad.append(f"{item.id} {low}-{item.end} spans {touched}")
    return bad


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(trials())
def test_generated_lists_never_fold_items_together(case):
    text, tops = case
    seg = segment(text)
    assert folded(seg, [(t.start, t.end) for t in tops]) == [], text
    # each top-level item is an item of its own, starting at its marker
    roots = {it.marker[0]: it for it in seg.items if it.marker}
    assert sorted(roots) == [t.start for t in tops], text
    assert uncovered(text, seg) == []
    ids = [it.id for it in seg.all_items()]
    assert len(ids) == len(set(ids))
    # a section's first numbered list keeps its numbers as ids
    for section in ("inclusion", "exclusion"):
        own = [t for t in tops if t.section == section]
        for k, t in enumerate(own):
            if t.number != k + 1:      # the first list ends where the count stops going on
                break
            assert roots[t.start].id == ("I" if section == "inclusion" else "E") + str(t.number), text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(trials(), st.data())
def test_ids_of_earlier_items_do_not_change_when_items_follow(case, data):
    text, tops = case
    cut = data.draw(st.integers(1, len(tops)))
    prefix = text[:tops[cut - 1].end]
    whole = {it.marker[0]: [c.id for c in it.walk()] for it in segment(text).items if it.marker}
    part = {it.marker[0]: [c.id for c in it.walk()] for it in segment(prefix).items if it.marker}
    assert part == {k: v for k, v in whole.items() if k < len(prefix)}, prefix
    assert segment(text) == segment(text)      # deterministic


def _real_trials() -> list[tuple[str, str]]:
    csv.field_size_limit(1 << 24)
    with REAL.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [(r["#nct_id"], r["eligibility_criteria"]) for r in rows if r["#nct_id"].startswith("NCT")]


_HEADING = re.compile(r"^\s*[-*•]?\s*(key\s+)?(inclusion|exclusion)\s+criteria\b", re.I)


def real_tops(text: str) -> list[tuple[int, int]]:
    """Top-level items of a real trial, from the text alone: per section (between `Inclusion/Exclusion
    Criteria` lines), the marked lines at the section's leftmost marker column (or one further in);
    each runs to the next such line or heading."""
    lines = split_lines(text)
    sections: list[list] = [[]]
    for line in lines:
        if line.blank:
            continue
        if _HEADING.match(text[line.start:line.end]):
            sections.append([])
            continue
        sections[-1].append(line)
    tops = []
    for section in sections:
        marked = [ln for ln in section if marker(text, ln) is not None]
        if not marked:
            continue
        column = min(ln.indent for ln in marked)
        starts = [ln.first for ln in marked if ln.indent <= column + 1]
        ends = starts[1:] + [section[-1].end]
        tops.extend(_any_of_runs(text, list(zip(starts, ends))))
    return tops


_ANY_OF = re.compile(r"\b(at least (one|1)|any (one )?of|one or more of|either)\b[^:]*:$", re.I)
_GOES_ON = re.compile(r"([;,]|\b(or|and))$", re.I)


def _any_of_runs(text: str, tops: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """CT.gov flattens "at least one of the following:" lists; the segmenter nests them again
    (only there does nesting change the meaning).  Such an intro and the run of items after it,
    each but the last ending as a list goes on (`;`, `,`, `or`, `and`), count as one top-level item."""
    out: list[tuple[int, int]] = []
    k = 0
    while k < len(tops):
        start, end = tops[k]
        k += 1
        if _ANY_OF.search(text[start:end].strip()):
            while k < len(tops):
                end = tops[k][1]
                k += 1
                if not _GOES_ON.search(text[tops[k - 1][0]:end].strip()):
                    break
        out.append((start, end))
    return out


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_real_trials_never_fold_top_level_items():
    trials_ = _real_trials()
    assert len(trials_) == 20
    for nct, text in trials_:
        seg = segment(text)
        tops = real_tops(text)
        # an item may end where the next top-level item's marker begins, never beyond it
        assert folded(seg, tops) == [], nct
        assert uncovered(text, seg) == [], nct
        # and so may each compiled criterion of the whole trial (as a CT.gov record)
        record = {"protocolSection": {"identificationModule": {"nctId": nct},
                                      "eligibilityModule": {"eligibilityCriteria": text}}}
        trial, _ = compile_ctgov_record(record)
        criteria = [c for c in trial.criteria if c.id[0] in "IE"]
        # every top-level item is compiled: a criterion begins inside each
        assert all(any(t[0] <= c.span[0] < t[1] for c in criteria) for t in tops), nct
        for criterion in criteria:
            start, end = criterion.span
            touched = [t for t in tops if start < t[1] and t[0] < end]
            assert len(touched) <= 1, (nct, criterion.id, touched)


@pytest.mark.parametrize("ends,taken", [
    ({}, 1),                                   # no item says the sub-list goes on
    ({}.fromkeys(range(7), ";"), 1),           # every item ends with `;`: how this list ends items
    ({2: "; or"}, 2),                          # "HbA1c ≥ 7.5%; or" says one more follows
    ({2: ",", 3: ", or"}, 3),
])
def test_any_of_intro_takes_only_what_it_introduces(ends, taken):
    """A flattened "at least one of the following:" list is nested again (segment._regroup), but in
    a list whose every item ends with `;` that `;` does not say the sub-list goes on."""
    items = ["Age ≥ 18 years", "At least one of the following:", "HbA1c ≥ 7.5%", "BMI ≥ 30 kg/m2", "Signed consent",
             "No pregnancy", "eGFR ≥ 30"]
    lines = [f"- {body}{'' if body.endswith(':') else ends.get(k, '')}" for k, body in enumerate(items)]
    text = "Inclusion Criteria:\n" + "\n".join(lines) + "\n"
    seg = segment(text)
    tree = [(it.id, len(it.children)) for it in seg.items]
    assert tree[:2] == [("I1", 0), ("I2", taken)]
    assert len(seg.items) == len(items) - taken
    assert uncovered(text, seg) == []


def test_mixed_list_styles_from_the_issue():
    """An item holding an inline `1) … 2) …` list, then `-` bullets, then a `1.` list: each item keeps
    its own text (the folding seen on a real trial put over a hundred items into one)."""
    text = ("Inclusion Criteria:\n"
            "- Adults meeting either: 1) HbA1c ≥ 7.5% 2) FPG ≥ 7 mmol/L\n"
            "- BMI ≥ 25 kg/m2\n"
            "- Signed consent\n"
            "1. Stable metformin dose\n"
            "2. No insulin\n"
            "Exclusion Criteria:\n"
            "1. Pregnancy\n"
            "- eGFR < 30\n")
    seg = segment(text)
    tree = [(it.id, text[it.start:it.end], [c.id for c in it.children]) for it in seg.items]
    assert tree == [
        ("I1", "Adults meeting either: 1) HbA1c ≥ 7.5% 2) FPG ≥ 7 mmol/L", ["I1.1", "I1.2"]),
        ("I2", "BMI ≥ 25 kg/m2", []), ("I3", "Signed consent", []),
        # a count restarting at 1 after the bullets: new items, numbered after the ones used
        ("I4", "Stable metformin dose", []), ("I5", "No insulin", []),
        ("E1", "Pregnancy", []), ("E2", "eGFR < 30", [])]
    assert uncovered(text, seg) == []
