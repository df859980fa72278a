"""Spans index the text exactly as given (DESIGN §3), through the public API too.

Whatever ends the lines (CRLF, CR, LF, a mix), with a byte-order mark in
front or tabs for indentation, `text[span[0]:span[1]]` of every criterion is
the criterion's text, and every node's span lies inside its criterion.  The
same list written with other line ends gives the same criteria.
"""
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eligibility
from eligibility.core.ir import walk

LINES = st.sampled_from([
    "Inclusion Criteria:", "Exclusion criteria", "Key Exclusion Criteria:", "", "  ",
    "1. Age 18 to 65 years", "2. BMI 25-40 kg/m2", "- HbA1c \u2265 7.0% and \u2264 10.5%", "* eGFR < 45 mL/min/1.73 m2",
    "\t- Fasting C-peptide \u2265 1 ng/mL", "\ta) ALT > 3 x ULN", "   b) Pregnancy or breastfeeding",
    "continued on a second line", "Type 1 diabetes", "Note: local laboratory values may be used.",
    "INCLUSION OF VULNERABLE PARTICIPANTS", "\tTabs\tinside\tthe text", "Subjects will be excluded if:",
    "3. Systolic blood pressure \u2265 160 mmHg", "Any of the following:",
])
ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def criteria_texts(draw) -> str:
    lines = draw(st.lists(LINES, min_size=1, max_size=12))
    ends = draw(st.lists(ENDS, min_size=len(lines), max_size=len(lines)))
    body = "".join(line + end for line, end in zip(lines, ends))
    if not draw(st.booleans()):
        body = body.rstrip("\r\n")
    return ("\ufeff" if draw(st.booleans()) else "") + body


def _check_spans(text: str, trial) -> None:
    for crit in trial.criteria:
        if crit.id in ("age", "sex"):
            continue
        start, end = crit.span
        assert text[start:end] == crit.text, crit.id
        assert crit.text == crit.text.strip() and crit.text
        for node in walk(crit.tree):
            assert start <= node.span[0] <= node.span[1] <= end, (crit.id, node.kind)
        for a, b in crit.unparsed:
            assert start <= a <= b <= end
    for block in trial.other_text:
        assert text[block.span[0]:block.span[1]] == block.text


def _lines_of(text: str) -> str:
    return re.sub(r"\r\n?", "\n", text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(criteria_texts())
def test_spans_index_the_text_as_given(text):
    try:
        trial = eligibility.compile_trial(text)
    except eligibility.TrialInputError as error:   # only headings, notes or blank lines: nothing to screen
        assert error.code in ("E-TRIAL-NO-CRITERIA", "E-TRIAL-EMPTY")
        return
    assert trial.criteria_text == text
    _check_spans(text, trial)
    # the same lines with LF ends only: the same criteria, texts equal up to their line ends
    unix = eligibility.compile_trial(_lines_of(text))
    assert [(c.id, c.section, _lines_of(c.text)) for c in trial.criteria] == \
           [(c.id, c.section, c.text) for c in unix.criteria]
    assert [(o.kind, _lines_of(o.text)) for o in trial.other_text] == [(o.kind, o.text) for o in unix.other_text]


def test_each_line_end_by_hand():
    # I2 starts after "Inclusion Criteria:" (19), one line end, "1. Age 18 to 65 years" (21), one line end, "2. "
    for end in ("\n", "\r\n", "\r"):
        text = end.join(["Inclusion Criteria:", "1. Age 18 to 65 years", "2. BMI 25-40 kg/m2", ""])
        trial = eligibility.compile_trial(text)
        i2 = next(c for c in trial.criteria if c.id == "I2")
        first = 19 + len(end) + 21 + len(end) + 3
        assert i2.span == (first, first + len("BMI 25-40 kg/m2"))
        assert i2.tree.concept == "bmi" and (i2.tree.low, i2.tree.high) == (25, 40)


def test_a_bom_and_tabs_through_the_api():
    text = "\ufeffInclusion Criteria:\r\n\t1. Age 18 to 65 years\r\n\t2. BMI 25-40 kg/m2\r\n"
    trial = eligibility.compile_trial(text)
    assert [c.id for c in trial.criteria] == ["I1", "I2"]
    assert [text[c.span[0]:c.span[1]] for c in trial.criteria] == ["Age 18 to 65 years", "BMI 25-40 kg/m2"]
    assert trial.other_text[0].text == "Inclusion Criteria:" and trial.other_text[0].span == (1, 20)


def test_a_file_with_a_bom_and_crlf(tmp_path):
    # a file's text as decoded: the BOM is removed, CRLF kept (DESIGN §3)
    path = tmp_path / "t.txt"
    body = "Inclusion Criteria:\r\n1. Age 18 to 65 years\r\n2. BMI 25-40 kg/m2\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    trial = eligibility.compile_trial(path)
    assert trial.criteria_text == body
    assert [body[c.span[0]:c.span[1]] for c in trial.criteria] == ["Age 18 to 65 years", "BMI 25-40 kg/m2"]


def test_header_lines_with_cr_line_ends():
    # an old Mac file: CR only; the header lines are read as fields, the criteria text starts after them
    text = "Title: CR trial\rMinimum Age: 18 Years\r\rInclusion Criteria:\r1. BMI 25-40 kg/m2\r"
    trial = eligibility.compile_trial(text)
    assert trial.trial.title == "CR trial"
    assert [c.id for c in trial.criteria] == ["age", "I1"]
    offset = len(text) - len(trial.criteria_text)
    assert text[offset:] == trial.criteria_text and trial.criteria_text.startswith("Inclusion Criteria:")
    i1 = trial.criteria[1]
    assert trial.criteria_text[i1.span[0]:i1.span[1]] == "BMI 25-40 kg/m2"


def test_ctgov_dict_spans_index_its_criteria_string():
    criteria = "Inclusion Criteria:\r\n\r\n* BMI \\>= 25 kg/m2\r\n* Age 18-65 years\r\n\r\nExclusion Criteria:\r\n\r\n* Pregnancy"
    trial = eligibility.compile_trial({"protocolSection": {"eligibilityModule": {"eligibilityCriteria": criteria}}})
    assert [(c.id, criteria[c.span[0]:c.span[1]]) for c in trial.criteria] == [
        ("I1", "BMI \\>= 25 kg/m2"), ("I2", "Age 18-65 years"), ("E1", "Pregnancy")]
    assert trial.criteria[0].tree.canonical_value == 25.0      # unescaped for the grammar, spans as given
