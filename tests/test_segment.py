"""Segmentation: trial files -> criteria items with ids, sections and spans.

Expected results are written by hand in tests/cases/segment_expected.jsonl
(one line per input file tests/cases/segment_*.{txt,json,xml}); the real
ClinicalTrials.gov sample checks that nothing crashes and nothing vanishes.
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility.core.errors import TrialInputError
from eligibility.compile.segment import Segmentation, segment
from eligibility.compile.sources import read_ctgov, read_text, read_xml
from shared_paths import SHARED

CASES = Path(__file__).parent / "cases"
REAL = (SHARED / "corpus/real_trials_sample.csv")
READERS = {".txt": read_text, ".json": read_ctgov, ".xml": read_xml}
EXPECTED = [json.loads(line) for line in (CASES / "segment_expected.jsonl").read_text("utf-8").splitlines() if line.strip()]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _read(name: str):
    path = CASES / name
    return READERS[path.suffix](path.read_text("utf-8"), str(path))


def _segment(src) -> Segmentation:
    return segment(src.criteria_text, require_headings=src.fmt == "text")


def uncovered(text: str, seg: Segmentation) -> list[tuple[int, str]]:
    """Non-space characters that belong to no item, marker or heading."""
    covered = bytearray(len(text))
    spans = [it.span for it in seg.items] + [h_span for h_span in ((h.start, h.end) for h in seg.headings)]
    spans += [it.marker for it in seg.all_items() if it.marker]
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    return [(k, ch) for k, ch in enumerate(text) if not covered[k] and not ch.isspace()]


def check_structure(text: str, seg: Segmentation) -> None:
    ids = [it.id for it in seg.all_items()]
    assert len(ids) == len(set(ids)), f"duplicate ids: {ids}"
    assert uncovered(text, seg) == []
    tops = sorted(seg.items, key=lambda it: it.start)
    for a, b in zip(tops, tops[1:]):
        assert a.end <= b.start, f"{a.id} and {b.id} overlap"
    for item in seg.all_items():
        body = text[item.start:item.end]
        assert body and body == body.strip(), f"{item.id} span is not trimmed: {body!r}"
        assert item.id[0] == ("I" if item.section == "inclusion" else "E")
        for child in item.children:
            assert item.start <= child.start and child.end <= item.end, f"{child.id} not inside {item.id}"
            assert child.id.startswith(item.id + ".") and child.section == item.section
        if item.marker:
            assert item.marker[1] <= item.start


@pytest.mark.parametrize("case", EXPECTED, ids=[c["file"] for c in EXPECTED])
def test_segment_cases(case):
    src = _read(case["file"])
    seg = _segment(src)
    text = src.criteria_text
    assert src.info.title == case["title"]
    assert src.info.ids == case["ids"]
    assert {k: v.value for k, v in src.fields.items()} == case["fields"]
    got = [[it.id, it.section, _squash(text[it.start:it.end])] for it in seg.all_items()]
    assert got == case["items"]
    assert [[h.kind, h.section, _squash(text[h.start:h.end])] for h in seg.headings] == case["headings"]
    spans = {it.id: list(it.span) for it in seg.all_items()}
    for ident, span in case["spans"].items():
        assert spans[ident] == span
    check_structure(text, seg)


def _real_trials() -> list[tuple[str, str]]:
    with REAL.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # the file repeats its header row once mid-way; that row is not a trial
    return [(r["#nct_id"], r["eligibility_criteria"]) for r in rows if r["#nct_id"].startswith("NCT")]


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_real_trials_segment_without_loss():
    trials = _real_trials()
    assert len(trials) == 20
    nested = 0
    for nct, text in trials:
        seg = segment(text)
        check_structure(text, seg)
        assert any(it.section == "inclusion" for it in seg.items), nct
        nested += sum(1 for it in seg.all_items() if it.children)
    assert nested >= 3   # NCT04343989, NCT04340050 and NCT04348032 have sub-lists


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_real_trial_details():
    trials = dict(_real_trials())
    text = trials["NCT04348032"]
    seg = segment(text)
    by_id = {it.id: it for it in seg.all_items()}
    # right-aligned numbers (" 9." then "10.") stay siblings; "1." under "8." is a sub-item
    assert [it.id for it in seg.items][:10] == [f"I{n}" for n in range(1, 11)]
    assert [c.id for c in by_id["I8"].children] == ["I8.1", "I8.2", "I8.3"]
    assert _squash(text[by_id["I8.2"].start:by_id["I8.2"].end]) == "platelet count ≥ 100x109 PG L;"
    assert len([it for it in seg.items if it.section == "exclusion"]) == 17
    # two groups of the same kind (patients, then donors) continue one id sequence
    seg = segment(trials["NCT04342182"])
    assert [it.id for it in seg.items] == ["I1", "I2", "I3", "E1", "I4", "I5", "I6", "I7", "I8", "I9",
                                           "E2", "E3", "E4", "E5", "E6"]
    notes = [_squash(trials["NCT04342182"][h.start:h.end]) for h in seg.headings if h.kind == "note"]
    assert notes == ["Donors: Eligibility for plasma donation"]
    # a bulleted heading; intro paragraphs are notes, not criteria
    seg = segment(trials["NCT04344470"])
    assert [h.kind for h in seg.headings] == ["section", "note", "section", "note"]
    assert len(seg.items) == 10


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_flattened_any_of_list_is_nested_again():
    text = dict(_real_trials())["NCT04346355"]
    seg = segment(text)
    by_id = {it.id: it for it in seg.all_items()}
    assert [c.id for c in by_id["I6"].children] == ["I6.1", "I6.2", "I6.3"]
    assert _squash(text[by_id["I6.2"].start:by_id["I6.2"].end]) == "Serum CRP greater than or equal to 10 mg/dl;"
    assert [it.id for it in seg.items if it.section == "inclusion"] == [f"I{n}" for n in range(1, 7)]


def test_flattened_list_rule_is_conservative():
    text = ("Inclusion Criteria:\n- At least one of the following:\n- HbA1c ≥ 8%;\n- FPG ≥ 7 mmol/L\n- Consent\n"
            "- Adequate organ function as follows:\n- ANC ≥ 1.5\n"
            "1. Any of the following:\n2. BMI ≥ 30\n")
    seg = segment(text)
    tree = [(it.id, [c.id for c in it.children]) for it in seg.items]
    # the list stops after the item that does not end as a list goes on; "as follows" (all of them) and
    # numbered items keep their own level, where nesting would not change the meaning or the ids
    assert tree == [("I1", ["I1.1", "I1.2"]), ("I2", []), ("I3", []), ("I4", []), ("I5", []), ("I6", [])]
    check_structure(text, seg)


def test_ctgov_escapes_keep_spans_in_original_text():
    path = CASES / "segment_ctgov_escapes.json"
    raw = path.read_text("utf-8")
    src = read_ctgov(raw, str(path))
    seg = _segment(src)
    original = json.loads(raw)["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    assert src.criteria_text == original          # not unescaped: spans point into this
    first = seg.items[0]
    assert original[first.start:first.end] == "Age \\>= 18 years"
    # every item maps back to the file: the raw JSON between the mapped offsets decodes to the item
    for item in seg.all_items():
        a, b = src.file_offset(item.start), src.file_offset(item.end)
        assert json.loads('"' + raw[a:b] + '"') == original[item.start:item.end]


def test_xml_entities_map_back_to_file():
    path = CASES / "segment_legacy.xml"
    raw = path.read_text("utf-8")
    src = read_xml(raw, str(path))
    for item in _segment(src).all_items():
        a, b = src.file_offset(item.start), src.file_offset(item.end)
        assert html.unescape(raw[a:b]) == src.criteria_text[item.start:item.end]


def test_text_offsets_are_file_offsets():
    path = CASES / "segment_numbered.txt"
    raw = path.read_text("utf-8")
    src = read_text(raw, str(path))
    for item in _segment(src).all_items():
        assert raw[src.file_offset(item.start):src.file_offset(item.end)] == src.criteria_text[item.start:item.end]


def test_plain_text_needs_section_headings():
    with pytest.raises(TrialInputError) as info:
        segment("Age 18 to 65 years\nBMI below 30\n", require_headings=True, source="t.txt")
    assert info.value.code == "E-TRIAL-NO-SECTIONS"
    assert "t.txt" in str(info.value)


@pytest.mark.parametrize("line", [
    "- Meets inclusion criteria of the parent study",
    "- Does not meet inclusion criteria",
    "- Exclusion criteria of study 123 apply, see protocol.",
])
def test_sentences_naming_criteria_are_items_not_headings(line):
    text = f"Inclusion Criteria:\n- Age ≥ 18 years\n{line}\n"
    seg = segment(text)
    assert [h.kind for h in seg.headings] == ["section"]
    assert _squash(text[seg.items[-1].start:seg.items[-1].end]) == line[2:]


@pytest.mark.parametrize("line,section", [
    ("Inclusion:", "inclusion"), ("Key exclusions", "exclusion"), ("Criteria for inclusion:", "inclusion"),
    ("Inclusion Criteria (Part A)", "inclusion"), ("**Inclusion Criteria:**", "inclusion"),
    ("## EXCLUSION CRITERIA", "exclusion"), ("Recipient Exclusion Criteria:", "exclusion"),
    ("1. Inclusion criteria", "inclusion"), ("Stage 2 inclusion criteria:", "inclusion"),
    ("Exclusion criteria for the parent study apply", None), ("Inclusion of minors is allowed", None),
    ("Exclusions apply.", None),
])
def test_heading_spellings(line, section):
    text = f"{line}\n- item\n"
    seg = segment(text)
    sections = [h.section for h in seg.headings if h.kind == "section"]
    assert sections == ([section] if section else [])
    if section is None:   # a sentence stays an item (text before any heading is inclusion)
        assert _squash(text[seg.items[0].start:seg.items[0].end]) == line


def test_inline_heading_text_is_an_item():
    text = "Inclusion criteria: age 18 to 65 years\nExclusion criteria: pregnancy\n"
    seg = segment(text)
    assert [(it.id, text[it.start:it.end]) for it in seg.items] == [("I1", "age 18 to 65 years"), ("E1", "pregnancy")]


def test_inline_heading_text_may_carry_a_marker():
    text = "Inclusion Criteria: 2. Age > 18\n3. BMI < 30\nExclusion criteria: - Pregnancy\n"
    seg = segment(text)
    assert [(it.id, text[it.start:it.end]) for it in seg.items] == [
        ("I2", "Age > 18"), ("I3", "BMI < 30"), ("E1", "Pregnancy")]
    assert [text[h.start:h.end] for h in seg.headings] == ["Inclusion Criteria:", "Exclusion criteria:"]
    check_structure(text, seg)


def test_numbered_group_restarting_takes_next_free_number():
    text = "Inclusion Criteria:\n1. A\n2. B\nInclusion Criteria (part two):\n1. C\n"
    assert [it.id for it in segment(text).items] == ["I1", "I2", "I3"]


_LINE = st.one_of(
    st.sampled_from(["Inclusion Criteria:", "EXCLUSION CRITERIA", "  Key exclusion criteria", "Note: see protocol.",
                     "", "", "In order to participate, all of the following:", "-", "2.", "   a)"]),
    st.builds(lambda indent, marker, body: " " * indent + marker + body,
              st.integers(0, 12), st.sampled_from(["", "- ", "* ", "• ", "o ", "1. ", "3- ", "12) ", "(b) ", "iv. ", "i) ", "h) ", "II. "]),
              st.text(alphabet="abc XYZ≥<>=:.;,()0123456789\\%-*", max_size=30)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_LINE, max_size=25))
def test_segmentation_never_loses_text(lines):
    text = "\n".join(lines)
    seg = segment(text)
    check_structure(text, seg)


@pytest.mark.parametrize("text,expected", [
    # one line per section, numbered 1. 2. 3.
    ("Inclusion Criteria:\n1. Age 18 to 65 years 2. Type 2 diabetes for at least 1 year 3. BMI 25 to 40 kg/m2\n"
     "Exclusion Criteria:\n1. Pregnancy 2. eGFR < 30\n",
     [("I1", "Age 18 to 65 years"), ("I2", "Type 2 diabetes for at least 1 year"), ("I3", "BMI 25 to 40 kg/m2"),
      ("E1", "Pregnancy"), ("E2", "eGFR < 30")]),
    # the list starts after the heading's colon, `n)` style
    ("Inclusion Criteria: 1) Age 18 to 65 years; 2) HbA1c 7-10%; 3) BMI < 35\n",
     [("I1", "Age 18 to 65 years;"), ("I2", "HbA1c 7-10%;"), ("I3", "BMI < 35")]),
    # a line that continues a multi-line list's count
    ("Inclusion Criteria:\n1. Age 18 to 65 years\n2. HbA1c 7-10% 3. BMI < 35\n",
     [("I1", "Age 18 to 65 years"), ("I2", "HbA1c 7-10%"), ("I3", "BMI < 35")]),
    # numbers of another style, or not counting on, stay inside the item
    ("Inclusion Criteria:\n1. Either 1) metformin or 2) insulin for at least 3 months\n2. BMI < 35\n",
     [("I1", "Either 1) metformin or 2) insulin for at least 3 months"), ("I2", "BMI < 35")]),
    ("Inclusion Criteria:\n- Visit 3. Patients with 2. line therapy\n- HbA1c 7.5 to 10.0%\n",
     [("I1", "Visit 3. Patients with 2. line therapy"), ("I2", "HbA1c 7.5 to 10.0%")]),
    # a lone "1)" after a colon is a sentence's own numbering
    ("Inclusion Criteria:\n- Documented as follows: 1) prior metformin use\n",
     [("I1", "Documented as follows: 1) prior metformin use")]),
])
def test_one_line_numbered_lists_are_split(text, expected):
    seg = segment(text)
    assert [(it.id, text[it.start:it.end]) for it in seg.all_items()] == expected
    check_structure(text, seg)
