"""Evaluation cases as data (tests/cases/evaluate_*.jsonl): a tree, a wide-CSV row, the expected outcome.

Each case goes through the real path: the row is written as a CSV file, read
by the wide CSV reader, and evaluated by the compiled plan.  The expected
outcomes were worked out by hand from DESIGN §6/§7 and docs/patient-data.md.
"""
from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from eligibility.evaluate.plan import F, R, T, U, Plan
from eligibility.core.ir import Criterion, Trial, TrialInfo, Tree
from eligibility.readers import ReadStats
from eligibility.readers.wide_csv import read_wide_csv
from eligibility.compile.trials import compile_trial_text
from eligibility.registry.concepts import Registry, build_registry, default_registry
from eligibility.core.patient import Measurement, Patient

CASES = Path(__file__).parent / "cases"
AS_OF = date(2026, 1, 1)
TREE = TypeAdapter(Tree)


def _load(name: str) -> list[dict]:
    lines = (CASES / name).read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _with_spans(node: dict) -> dict:
    node = dict(node)
    node.setdefault("span", [0, 0])
    if "children" in node:
        node["children"] = [_with_spans(c) for c in node["children"]]
    if "child" in node:
        node["child"] = _with_spans(node["child"])
    return node


def _trial(tree: dict, section: str) -> Trial:
    cid = "I1" if section == "inclusion" else "E1"
    criterion = Criterion(id=cid, section=section, text="case", span=(0, 4), status="compiled",
                          tree=TREE.validate_python(_with_spans(tree)))
    return Trial(trial=TrialInfo(title="case"), criteria=(criterion,))


def _registry(case: dict) -> Registry:
    """The packaged registry, or one with the packs a case names (`"registry": ["labs"]`)."""
    packs = tuple(case.get("registry", ()))
    if packs not in _REGISTRIES:
        _REGISTRIES[packs] = build_registry(*map(Path, packs)) if packs else default_registry()
    return _REGISTRIES[packs]


_REGISTRIES: dict[tuple, Registry] = {}


def _case_trial(case: dict, registry: Registry) -> Trial:
    """The case's tree, or its criterion text compiled (`"criterion"`: the whole path from text)."""
    section = case.get("section", "inclusion")
    if "criterion" not in case:
        return _trial(case["tree"], section)
    heading = "Inclusion Criteria:" if section == "inclusion" else "Exclusion Criteria:"
    trial, _ = compile_trial_text(f"{heading}\n- {case['criterion']}\n", registry=registry)
    assert len(trial.criteria) == 1, trial.criteria
    return trial


def _patient(row: dict, tmp_path: Path, registry: Registry | None = None) -> Patient:
    path = tmp_path / "row.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", *row])
        writer.writerow(["P1", *row.values()])
    patients = list(read_wide_csv([path], as_of=AS_OF, registry=registry or default_registry(), stats=ReadStats()))
    assert len(patients) == 1
    return patients[0]


# evaluate_pack_labs: the opt-in `labs` pack (Cockcroft-Gault worked by hand from Cockcroft & Gault 1976,
# conversions from labs.toml's sources) and bounds loosened for a subgroup
CASE_FILES = ["evaluate_conversions.jsonl", "evaluate_categorical.jsonl", "evaluate_age_months.jsonl",
              "evaluate_pack_labs.jsonl"]
ALL_CASES = [(name, case) for name in CASE_FILES for case in _load(name)]


@pytest.mark.parametrize("case", [c for _, c in ALL_CASES], ids=[c["name"] for _, c in ALL_CASES])
def test_case(case: dict, tmp_path: Path) -> None:
    registry = _registry(case)
    trial = _case_trial(case, registry)
    plan = Plan(trial, registry, AS_OF)
    patient = _patient(case["row"], tmp_path, registry)
    result = plan.evaluate(patient, detail=True)
    assert result.outcomes == [case["outcome"]], result.details
    if "verdict" in case:
        assert result.verdict == case["verdict"]
    if "explains" in case:
        assert any(case["explains"] in text for text in result.details[0]), result.details[0]
    if "reason" in case:
        assert any(case["reason"] in text for text in result.reasons), result.reasons
    # the fast closure and its explaining twin agree
    assert plan.criteria[0].fn(patient) == plan.criteria[0].ex(patient, False)[0]
    # a non-pass outcome always explains itself in the reasons column
    if result.outcomes[0] != "pass":
        assert any(text.startswith(f"{plan.ids[0]} {result.outcomes[0]}: ") for text in result.reasons)


_ATOMS = {
    "T": {"kind": "compare", "concept": "bmi", "op": ">=", "value": 20, "unit": "kg/m2", "canonical_value": 20, "canonical_unit": "kg/m2"},
    "F": {"kind": "compare", "concept": "bmi", "op": ">=", "value": 100, "unit": "kg/m2", "canonical_value": 100, "canonical_unit": "kg/m2"},
    "U": {"kind": "compare", "concept": "hba1c", "op": ">=", "value": 7, "unit": "%", "canonical_value": 7, "canonical_unit": "%"},
    "R": {"kind": "manual", "text": "ask the patient", "reason": "not computable"},
}
_CODES = {"F": F, "T": T, "U": U, "R": R}
KLEENE = _load("evaluate_kleene.jsonl")


@pytest.mark.parametrize("case", KLEENE, ids=[f"{c['op']}({c.get('a', '')},{c.get('b', '')})" for c in KLEENE])
def test_kleene_tables(case: dict) -> None:
    args = [_ATOMS[case[k]] for k in ("a", "b") if k in case]
    tree = {"kind": "not", "child": args[0]} if case["op"] == "not" else {"kind": case["op"], "children": args}
    plan = Plan(_trial(tree, "inclusion"), default_registry(), AS_OF)
    patient = Patient(id="P", row=1, measurements={"bmi": Measurement(30.0, "30")})
    assert plan.codes(patient) == [_CODES[case["result"]]]
    assert plan.criteria[0].ex(patient, True)[0] == _CODES[case["result"]]


def test_censored_value_decides_only_when_the_whole_interval_agrees() -> None:
    """A FHIR-style `<0.1` C-peptide is certainly below 1 ng/mL, but cannot tell against 0.05."""
    low = {"kind": "compare", "concept": "c_peptide_fasting", "op": ">=", "value": 1, "unit": "ng/mL",
           "canonical_value": 1, "canonical_unit": "ng/mL"}
    tiny = dict(low, value=0.05, canonical_value=0.05)
    censored = Patient(id="P", row=1, measurements={"c_peptide_fasting": Measurement(0.1, "<0.1", comparator="<")})
    assert Plan(_trial(low, "inclusion"), default_registry(), AS_OF).codes(censored) == [F]
    assert Plan(_trial(tiny, "inclusion"), default_registry(), AS_OF).codes(censored) == [U]
    result = Plan(_trial(low, "inclusion"), default_registry(), AS_OF).evaluate(censored)
    assert result.reasons == ["I1 fail: Fasting C-peptide reported as < 0.1 ng/mL < 1.0 ng/mL"]


def test_seed_trial_plan_never_builds_pint_objects_per_patient(monkeypatch) -> None:
    """Units are resolved at compile time: evaluating patients must not touch pint."""
    import pint

    trial = Trial.from_json((CASES / "seed_trial.json").read_text("utf-8"))
    plan = Plan(trial, default_registry(), AS_OF)

    def forbidden(*_args, **_kwargs):
        raise AssertionError("pint used while evaluating a patient")

    monkeypatch.setattr(pint.Quantity, "__new__", forbidden)
    monkeypatch.setattr(pint.UnitRegistry, "parse_expression", forbidden)
    patient = Patient(id="P", row=1, measurements={"bmi": Measurement(30.0, "30"), "hba1c": Measurement(7.5, "58", "mmol/mol")},
                      medications=frozenset({"metformin", "A10BA02"}), conditions=frozenset())
    result = plan.evaluate(patient, detail=True)
    assert result.outcomes[plan.ids.index("I3")] == "pass"
    assert result.outcomes[plan.ids.index("I5")] == "pass"


def test_long_format_values_name_their_date_and_code() -> None:
    tree = {"kind": "range", "concept": "hba1c", "low": 7.0, "high": 12.0, "unit": "%",
            "canonical_low": 7.0, "canonical_high": 12.0, "canonical_unit": "%"}
    plan = Plan(_trial(tree, "inclusion"), default_registry(), AS_OF)
    patient = Patient(id="P", row=1, measurements={
        "hba1c": Measurement(6.2, "6.2", "%", when=date(2025, 3, 4), code="LOINC 4548-4")})
    result = plan.evaluate(patient, detail=True)
    assert result.reasons == ["I1 fail: HbA1c 6.2 % on 2025-03-04 < 7.0 %"]
    assert result.details[0] == ["HbA1c 6.2 % on 2025-03-04 < 7.0 % [LOINC 4548-4]"]


@pytest.mark.parametrize("onset, within, at_least, code", [
    (date(2025, 10, 1), {"value": 6, "unit": "mo"}, None, T),     # 92 days ago, window 182.6 days
    (date(2025, 5, 1), {"value": 6, "unit": "mo"}, None, F),      # 245 days ago
    (None, {"value": 6, "unit": "mo"}, None, R),                  # present, onset unknown
    (date(2025, 5, 1), None, {"value": 6, "unit": "mo"}, T),      # held 245 days >= 182.6
    (date(2025, 10, 1), None, {"value": 6, "unit": "mo"}, F),     # held 92 days
])
def test_condition_timing_uses_the_onset_date(onset, within, at_least, code) -> None:
    tree = {"kind": "has", "category": "condition", "code": "myocardial_infarction", "label": "MI"}
    if within:
        tree["within"] = within
    if at_least:
        tree["qualifiers"] = {"duration_at_least": at_least}
    plan = Plan(_trial(tree, "exclusion"), default_registry(), AS_OF)
    patient = Patient(id="P", row=1, conditions=frozenset({"myocardial_infarction"}),
                      condition_onset={"myocardial_infarction": onset} if onset else {})
    assert plan.codes(patient) == [code]
    assert plan.criteria[0].ex(patient, True)[0] == code
    absent = Patient(id="Q", row=2, conditions=frozenset())
    assert plan.codes(absent) == [F]


# -- properties over random trees and patients -----------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from eligibility.core.patient import Invalid  # noqa: E402

_LEAVES = [
    {"kind": "compare", "concept": "bmi", "op": op, "value": v, "unit": "kg/m2", "canonical_value": v, "canonical_unit": "kg/m2"}
    for op in ("<", "<=", ">", ">=", "==", "!=") for v in (24.0, 30.0)
] + [
    {"kind": "range", "concept": "hba1c", "low": 7.0, "high": 12.0, "unit": "%", "canonical_low": 7.0,
     "canonical_high": 12.0, "canonical_unit": "%"},
    {"kind": "has", "category": "medication", "code": "dpp4_inhibitor", "label": "DPP-4 inhibitor"},
    {"kind": "has", "category": "status", "code": "pregnancy", "label": "pregnant"},
    {"kind": "has", "category": "condition", "code": "type_1_diabetes", "label": "T1DM"},
    {"kind": "manual", "text": "ask", "reason": "manual"},
    {"kind": "compare", "concept": "bmi", "op": ">=", "value": 24, "unit": "kg/m2", "canonical_value": 24,
     "canonical_unit": "kg/m2", "qualifiers": {"duration_at_least": {"value": 3, "unit": "mo"}}},
]


def _trees(depth: int = 3):
    leaf = st.sampled_from(_LEAVES)
    return st.recursive(leaf, lambda kids: st.one_of(
        st.builds(lambda c: {"kind": "all", "children": c}, st.lists(kids, max_size=3)),
        st.builds(lambda c: {"kind": "any", "children": c}, st.lists(kids, max_size=3)),
        st.builds(lambda c: {"kind": "not", "child": c}, kids)), max_leaves=6)


_VALUES = st.sampled_from([None, Invalid("abc", "'abc' is not a number"), 23.9, 24.0, 30.0, 40.1])
_HBA1C = st.sampled_from([None, 6.9, 7.0, 7.00044, 12.0, 12.03])
_MEDS = st.sampled_from([None, frozenset(), frozenset({"sitagliptin", "A10BH01"}), frozenset({"metformin", "A10BA02"})])
_CONDS = st.sampled_from([None, frozenset(), frozenset({"type_1_diabetes"}), frozenset({"pregnancy"})])
_PREG = st.sampled_from([None, True, False, Invalid("maybe", "'maybe' is not yes/no")])


@st.composite
def _patients(draw):
    measurements = {}
    bmi, hba1c = draw(_VALUES), draw(_HBA1C)
    if bmi is not None:
        measurements["bmi"] = bmi if isinstance(bmi, Invalid) else Measurement(bmi, repr(bmi))
    if hba1c is not None:
        measurements["hba1c"] = Measurement(hba1c, repr(hba1c))
    statuses = {} if (preg := draw(_PREG)) is None else {"pregnancy": preg}
    return Patient(id="P", row=1, measurements=measurements, medications=draw(_MEDS),
                   conditions=draw(_CONDS), statuses=statuses)


@settings(max_examples=200, deadline=None)
@given(tree=_trees(), patient=_patients(), section=st.sampled_from(["inclusion", "exclusion"]))
def test_fast_and_explaining_evaluators_agree_and_logic_laws_hold(tree, patient, section) -> None:
    registry = default_registry()
    plan = Plan(_trial(tree, section), registry, AS_OF)
    code = plan.codes(patient)[0]
    assert plan.criteria[0].ex(patient, False)[0] == code
    assert plan.criteria[0].ex(patient, True)[0] == code
    double = Plan(_trial({"kind": "not", "child": {"kind": "not", "child": tree}}, section), registry, AS_OF)
    assert double.codes(patient) == [code]
    other = _LEAVES[3]
    left = {"kind": "not", "child": {"kind": "all", "children": [tree, other]}}
    right = {"kind": "any", "children": [{"kind": "not", "child": tree}, {"kind": "not", "child": other}]}
    assert Plan(_trial(left, section), registry, AS_OF).codes(patient) == Plan(_trial(right, section), registry, AS_OF).codes(patient)
    result = plan.evaluate(patient)
    if result.outcomes[0] != "pass":
        assert any(r.startswith(f"{plan.ids[0]} {result.outcomes[0]}: ") for r in result.reasons)
    assert result.verdict == {"pass": "eligible", "fail": "ineligible"}.get(result.outcomes[0], "needs_review")


def test_completed_months_by_hand():
    """Whole months lived (docs/patient-data.md "Age in months"); twelve of them make the completed year."""
    from eligibility.core.patient import completed_months, completed_years
    assert completed_months(date(2025, 7, 1), AS_OF) == 6
    assert completed_months(date(2025, 7, 2), AS_OF) == 5
    assert completed_months(date(2025, 1, 31), date(2025, 2, 28)) == 0
    assert completed_months(date(2025, 1, 31), date(2025, 3, 1)) == 1
    assert completed_months(date(2023, 7, 1), AS_OF) == 30
    for born in (date(2024, 2, 29), date(2023, 12, 31), date(2020, 1, 1), date(2019, 1, 2)):
        assert completed_months(born, AS_OF) // 12 == completed_years(born, AS_OF)
