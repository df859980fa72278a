"""Trial assembly: structured age/sex fields, items with sub-items, problem locations, compiled files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility.core.errors import TrialInputError
from eligibility.core.ir import All, Has, Manual, Range, walk
from eligibility.compile.segment import segment
from eligibility.compile.trials import compile_trial_file, compile_trial_text
from shared_paths import SHARED

REAL = (SHARED / "corpus/real_trials_sample.csv")


def ctgov(criteria: str, **elig) -> str:
    module = {"eligibilityCriteria": criteria, **{k: v for k, v in elig.items() if v is not None}}
    return json.dumps({"protocolSection": {"identificationModule": {"nctId": "NCT09999999"},
                                           "eligibilityModule": module}}, indent=2, ensure_ascii=False)


SIMPLE = "Inclusion Criteria:\n\n* Pregnancy\n"

# (minimumAge, maximumAge) -> (low, high, unit, canonical_low, canonical_high); years are 365.25 days
AGE_CASES = [
    (("20 Years", "65 Years"), (20, 65, "a", 20, 65)),
    (("6 Months", None), (6, None, "mo", 0.5, None)),
    (("N/A", "17 Years"), (None, 17, "a", None, 17)),
    (("2 Weeks", None), (2, None, "wk", 14 / 365.25, None)),
]
# different units: two compares, each limit in its own unit (months compare completed months)
MIXED_AGE_CASES = [
    (("6 Months", "17 Years"), ((6, "mo", 0.5), (17, "a", 17))),
    (("30 Days", "1 Year"), ((30, "d", 30 / 365.25), (1, "a", 1))),
]


@pytest.mark.parametrize("fields,expected", MIXED_AGE_CASES, ids=[str(c[0]) for c in MIXED_AGE_CASES])
def test_age_fields_in_two_units_keep_each_unit(fields, expected):
    trial, problems = compile_trial_text(ctgov(SIMPLE, minimumAge=fields[0], maximumAge=fields[1]), "ctgov", "t.json")
    assert problems == []
    tree = trial.criteria[0].tree
    assert isinstance(tree, All) and [c.op for c in tree.children] == [">=", "<="]
    for node, (value, unit, canonical) in zip(tree.children, expected):
        assert (node.concept, node.unit, node.canonical_unit) == ("age", unit, "a")
        assert node.value == pytest.approx(value) and node.canonical_value == pytest.approx(canonical)


@pytest.mark.parametrize("fields,expected", AGE_CASES, ids=[str(c[0]) for c in AGE_CASES])
def test_age_fields_become_a_range_in_years(fields, expected):
    trial, problems = compile_trial_text(ctgov(SIMPLE, minimumAge=fields[0], maximumAge=fields[1]), "ctgov", "t.json")
    assert problems == []
    age = trial.criteria[0]
    assert (age.id, age.section, age.status, age.span) == ("age", "inclusion", "compiled", (0, 0))
    tree = age.tree
    assert isinstance(tree, Range) and tree.concept == "age" and tree.canonical_unit == "a"
    low, high, unit, clow, chigh = expected
    assert tree.unit == unit
    assert tree.low == pytest.approx(low) and tree.high == pytest.approx(high)
    assert tree.canonical_low == pytest.approx(clow) and tree.canonical_high == pytest.approx(chigh)
    assert tree.low_inclusive and tree.high_inclusive


@pytest.mark.parametrize("fields", [(None, None), ("N/A", "N/A")])
def test_no_age_limit_means_no_age_criterion(fields):
    trial, problems = compile_trial_text(ctgov(SIMPLE, minimumAge=fields[0], maximumAge=fields[1]), "ctgov", "t.json")
    assert problems == [] and [c.id for c in trial.criteria] == ["I1"]


def test_inverted_age_limits_are_reported():
    text = ctgov(SIMPLE, minimumAge="30 Years", maximumAge="20 Years")
    trial, problems = compile_trial_text(text, "ctgov", "t.json")
    assert [p.code for p in problems] == ["E-TRIAL-AGE"]
    assert isinstance(trial.criteria[0].tree, Manual) and trial.criteria[0].status == "manual"
    line = text.splitlines()[problems[0].line - 1]
    assert '"minimumAge": "30 Years"' in line and line[problems[0].column - 1:].startswith("30 Years")


@pytest.mark.parametrize("value,tree", [
    ("ALL", All(span=(0, 0), children=())),
    ("FEMALE", Has(span=(0, 0), category="status", code="sex_female", label="female")),
    ("MALE", Has(span=(0, 0), category="status", code="sex_male", label="male")),
])
def test_sex_field(value, tree):
    trial, problems = compile_trial_text(ctgov(SIMPLE, sex=value), "ctgov", "t.json")
    assert problems == []
    sex = trial.criteria[0]
    assert (sex.id, sex.status, sex.tree) == ("sex", "compiled", tree)


def test_unreadable_sex_is_manual_and_reported():
    trial, problems = compile_trial_text(ctgov(SIMPLE, sex="UNKNOWN"), "ctgov", "t.json")
    assert [p.code for p in problems] == ["E-TRIAL-SEX"]
    assert trial.criteria[0].status == "manual"
    assert [c.id for c in trial.criteria] == ["sex", "I1"]


SUBITEMS = """Inclusion Criteria:
1. Any of the following:
   a) HbA1c ≥ 8.0%
   b) Fasting plasma glucose ≥ 7.0 mmol/L
2. Laboratory values at screening:
   a) BMI ≤ 35 kg/m2
   b) ALT ≤ 2.5 x ULN
3. Women must use one of these methods:
   a) oral contraception
   b) abstinence
"""


def test_items_with_sub_items_combine_their_trees():
    trial, problems = compile_trial_text(SUBITEMS, "text", "sub.txt")
    assert problems == []
    by_id = {c.id: c for c in trial.criteria}
    assert list(by_id) == ["I1", "I2", "I3"]
    i1, i2, i3 = by_id["I1"], by_id["I2"], by_id["I3"]
    # "any of the following" -> any; the lead is a connector, absorbed into the node
    assert i1.tree.kind == "any" and i1.status == "compiled"
    assert [(c.kind, c.concept, c.op, c.canonical_value) for c in i1.tree.children] == [
        ("compare", "hba1c", ">=", 8.0), ("compare", "fasting_plasma_glucose", ">=", 7.0)]
    assert i2.tree.kind == "all"
    assert [(c.concept, c.op, c.canonical_value, c.canonical_unit) for c in i2.tree.children] == [
        ("bmi", "<=", 35.0, "kg/m2"), ("alt", "<=", 2.5, "{ULN}")]
    # nothing computable anywhere: one manual node over the whole block
    assert i3.status == "manual" and isinstance(i3.tree, Manual)
    for crit in trial.criteria:
        assert trial.criteria_text[crit.span[0]:crit.span[1]] == crit.text
        assert crit.tree.span == crit.span
        for node in walk(crit.tree):
            assert crit.span[0] <= node.span[0] <= node.span[1] <= crit.span[1]
    # each sub-tree sits on its own sub-item's text
    seg = segment(trial.criteria_text)
    subs = {it.id: it.span for it in seg.all_items()}
    assert i1.tree.children[1].span[0] >= subs["I1.2"][0] and i1.tree.children[1].span[1] <= subs["I1.2"][1]


def test_problem_located_in_ctgov_json_file(tmp_path):
    text = ctgov("Inclusion Criteria:\n\n* BMI \\>= 25 kg/m2\n* HbA1c \\>= 7 furlongs\n")
    path = tmp_path / "study.json"
    path.write_text(text, "utf-8")
    trial, problems = compile_trial_file(path)
    assert len(problems) == 1
    err = problems[0]
    raw_line = text.splitlines()[err.line - 1]
    assert err.file == str(path) and '"eligibilityCriteria"' in raw_line and err.source_line == raw_line
    # the column falls on the escaped criterion inside the JSON string literal
    start = raw_line.index("HbA1c \\\\>= 7 furlongs")
    assert start < err.column <= start + len("HbA1c \\\\>= 7 furlongs")
    bmi = next(c for c in trial.criteria if c.id == "I1").tree
    assert (bmi.kind, bmi.concept, bmi.op, bmi.canonical_value) == ("compare", "bmi", ">=", 25.0)


def test_problem_located_in_xml_file(tmp_path):
    xml = ("<clinical_study>\n <eligibility>\n  <criteria>\n   <textblock>\n     Inclusion Criteria:\n"
           "       - BMI &gt;= 25 kg/m2\n       - HbA1c &gt;= 7 furlongs\n   </textblock>\n  </criteria>\n"
           " </eligibility>\n</clinical_study>\n")
    path = tmp_path / "legacy.xml"
    path.write_text(xml, "utf-8")
    _, problems = compile_trial_file(path)
    assert len(problems) == 1
    assert problems[0].line == 7
    assert 10 <= problems[0].column <= len("       - HbA1c &gt;= 7 furlongs")


def test_compiled_file_reports_its_stored_problems(tmp_path):
    trial, problems = compile_trial_text("Inclusion Criteria:\n1. HbA1c ≥ 7 furlongs\n", "text", "a.txt")
    assert len(problems) == 1
    path = tmp_path / "compiled.json"
    path.write_text(trial.to_json(), "utf-8")
    again, again_problems = compile_trial_file(path)
    assert again == trial
    assert [p.code for p in again_problems] == [p.code for p in problems]
    assert again_problems[0].line == 1 and again_problems[0].source_line is not None


def test_hand_edited_compiled_file_is_validated(tmp_path):
    trial, _ = compile_trial_text("Inclusion Criteria:\n1. BMI ≥ 25 kg/m2\n", "text", "a.txt")
    doc = json.loads(trial.to_json())
    doc["criteria"][0]["tree"]["kind"] = "between"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(TrialInputError) as info:
        compile_trial_file(path)
    assert info.value.code == "E-TRIAL-COMPILED" and "criteria.0.tree" in info.value.message
    doc = json.loads(trial.to_json())
    doc["criteria"][0]["span"] = [0, 10_000]
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(TrialInputError, match="outside criteria_text"):
        compile_trial_file(path)


def test_design_example_document_loads(tmp_path):
    # DESIGN §3's document, as a coordinator might write it: no criteria_text, spans from elsewhere
    doc = json.loads((Path(__file__).parent / "cases" / "design_example_trial.json").read_text("utf-8"))
    path = tmp_path / "design.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    trial, problems = compile_trial_file(path)
    assert problems == [] and trial.criteria[0].tree.canonical_low == 24.0 and trial.criteria_text == ""


@pytest.mark.parametrize("text,code", [
    ("", "E-TRIAL-EMPTY"),
    ('{"protocolSection": {"eligibilityModule": {}}}', "E-TRIAL-NO-CRITERIA"),
    ('{"studies": []}', "E-TRIAL-JSON-SHAPE"),
    ("<clinical_study><eligibility/></clinical_study>", "E-TRIAL-NO-CRITERIA"),
    ("Inclusion Criteria:\n\nExclusion Criteria:\n", "E-TRIAL-NO-CRITERIA"),
])
def test_unusable_trials_raise(text, code):
    with pytest.raises(TrialInputError) as info:
        compile_trial_text(text, "auto", "x")
    assert info.value.code == code


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_real_trials_compile_without_loss():
    with REAL.open(newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["#nct_id"].startswith("NCT")]
    for row in rows:
        trial, _ = compile_trial_text(row["eligibility_criteria"], "text", row["#nct_id"])
        ids = [c.id for c in trial.criteria]
        assert len(ids) == len(set(ids))
        assert len(ids) == len(segment(trial.criteria_text).items)
        for crit in trial.criteria:
            assert trial.criteria_text[crit.span[0]:crit.span[1]] == crit.text
            if isinstance(crit.tree, Manual):
                assert crit.status == "manual"


def _without_spans(value):
    if isinstance(value, dict):
        return {k: _without_spans(v) for k, v in value.items() if k not in ("span", "unparsed")}
    if isinstance(value, list):
        return [_without_spans(v) for v in value]
    return value


def test_crlf_line_endings_give_the_same_criteria():
    text = (Path(__file__).resolve().parents[1] / "trials" / "ucmsc_t2dm.txt").read_text("utf-8")
    unix, _ = compile_trial_text(text, "auto", "unix.txt")
    dos, problems = compile_trial_text(text.replace("\n", "\r\n"), "auto", "dos.txt")
    assert problems == []
    assert [_without_spans(c.model_dump(mode="json")) for c in dos.criteria] == [_without_spans(c.model_dump(mode="json")) for c in unix.criteria]
    assert dos.trial.title == unix.trial.title and dos.trial.ids == unix.trial.ids


def test_problem_in_a_sub_item_names_the_sub_item():
    text = "Inclusion Criteria:\n1. Labs:\n   a) BMI ≥ 25 kg/m2\n   b) HbA1c ≥ 7 furlongs\n"
    trial, problems = compile_trial_text(text, "text", "x.txt")
    assert len(problems) == 1
    err = problems[0]
    assert (err.file, err.line) == ("x.txt", 4) and err.message.startswith("I1.2: ")
    assert err.source_line == "   b) HbA1c ≥ 7 furlongs"
    # the good sub-item still compiled; the criterion keeps the problem
    assert trial.criteria[0].tree.children[0].concept == "bmi"
    assert [p.code for p in trial.criteria[0].problems] == [err.code]

_PIECES = st.sampled_from([
    "{", "}", "<", ">", '"', "\\", "\n", "\r\n", "  ", ":", "Inclusion Criteria:", "Exclusion criteria", "- ", "1. ",
    "a) ", "Title: x", "Minimum Age: 6 Months", "Sex: Female", "HbA1c ≥ 7 furlongs", "BMI 25-40 kg/m2", "\x00",
    '{"protocolSection": {"eligibilityModule": {"eligibilityCriteria": "', '"}}}', "<clinical_study><eligibility>",
    "<criteria><textblock>", "</textblock></criteria>", "</eligibility></clinical_study>", "&gt;", "&bogus;",
    '{"schema": "eligibility.trial/1"}', "Note: text",
])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=20))
def test_any_text_compiles_or_raises_a_trial_input_error(pieces):
    text = "".join(pieces)
    try:
        trial, problems = compile_trial_text(text, "auto", "fuzz")
    except TrialInputError as error:
        assert error.code.startswith("E-TRIAL") and str(error).startswith("fuzz")
        return
    ids = [c.id for c in trial.criteria]
    assert len(ids) == len(set(ids)) and ids
    for crit in trial.criteria:
        assert 0 <= crit.span[0] <= crit.span[1] <= len(trial.criteria_text)
    assert all(p.code and p.file == "fuzz" for p in problems)


def test_caret_on_a_very_long_line_shows_a_window():
    # CT.gov JSON keeps all criteria on one line: the caret line shows a window around the problem
    criteria = ("Inclusion Criteria:\n\n" + "".join(f"* Item {n} is some long free text\n" for n in range(30))
                + "* HbA1c \\>= 7 furlongs\n* BMI \\>= 25 kg/m2\n")
    text = json.dumps({"protocolSection": {"eligibilityModule": {"eligibilityCriteria": criteria}}})
    _, problems = compile_trial_text(text, "ctgov", "long.json")
    err = problems[0]
    assert err.line == 1 and text[err.column - 1:].startswith("furlongs")
    shown, carets = str(err).splitlines()[1:]
    assert len(shown) < 120 and shown.startswith("    …")   # the window reaches the end of the line
    assert carets.index("^") == shown.index("furlongs") and carets.strip() == "^" * len("furlongs")


COMBINE = """Inclusion Criteria:
1. BMI ≥ 30 kg/m2 and at least one of:
   a) hypertension
   b) type 2 diabetes
Exclusion Criteria:
1. Laboratory abnormalities at screening:
   a) ALT > 3 x ULN
   b) Serum creatinine > 2 mg/dL
2. All of the following:
   a) type 2 diabetes
   b) HbA1c > 10%
"""


def test_sub_items_combine_by_section_unless_the_lead_says_otherwise():
    trial, problems = compile_trial_text(COMBINE, "text", "combine.txt")
    assert problems == []
    by_id = {c.id: c.tree for c in trial.criteria}
    # a lead that states something is kept: it must hold, and (here) any one of the sub-items
    i1 = by_id["I1"]
    assert i1.kind == "all" and len(i1.children) == 2 and i1.children[1].kind == "any"
    lead = [(n.concept, n.op, n.canonical_value) for n in walk(i1.children[0]) if n.kind == "compare"]
    assert lead == [("bmi", ">=", 30.0)]
    assert [c.code for c in i1.children[1].children] == ["hypertension", "type_2_diabetes"]
    # exclusion: each sub-item excludes on its own
    e1 = by_id["E1"]
    assert e1.kind == "any" and [(c.concept, c.op) for c in e1.children] == [("alt", ">"), ("serum_creatinine", ">")]
    # ... unless the lead asks for all of them
    e2 = by_id["E2"]
    assert e2.kind == "all" and [c.kind for c in e2.children] == ["has", "compare"]
