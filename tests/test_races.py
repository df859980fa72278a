"""Race and ethnicity qualifiers (issue 14): criteria words -> status nodes -> each reader's fields.

- tests/cases/races.jsonl: criteria as trials write them, the tree each must compile to, and rows
  (race / ethnicity as words, CDC or OMOP codes) with the outcome worked out by hand from the
  criterion's words;
- the code table (eligibility/data/races.toml) against the standards' codes, written here from
  the US Core value sets and the OMOP Race / Ethnicity vocabularies, not from the data file;
- screening tests/cases/races_trial.txt: a hand-made wide CSV against hand-written outcomes,
  and the procedure samples (Synthea, OMOP, FHIR) against a reference built from their README's
  patient table (race, ethnicity) and measurement tables (BMI), with both engines.
"""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eligibility
from eligibility.cli import main
from eligibility.compile.compiler import compile_criterion
from eligibility.core.ir import walk
from eligibility.readers import read_patients
from eligibility.registry import races
from eligibility.registry.concepts import default_registry
from test_compile_properties import WORDS as PROPERTY_WORDS, _check as check_spans
from test_compiler_cases import assert_node

ROOT = Path(__file__).resolve().parent
CASES = [json.loads(line) for line in (ROOT / "cases" / "races.jsonl").read_text("utf-8").splitlines() if line.strip()]
TRIAL = ROOT / "cases" / "races_trial.txt"
SAMPLES = ROOT / "cases" / "ehr" / "procedures"
AS_OF = date(2024, 7, 1)


# ---- compiling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[f"{c.get('section', 'inclusion')[:2]}:{c['text'][:40]}" for c in CASES])
def test_compiles(case):
    text = case["text"]
    result = compile_criterion(text, section=case.get("section", "inclusion"))
    tree = json.loads(result.tree.model_dump_json())
    assert result.status == case["status"], (result.status, tree)
    if "tree" in case:
        assert_node(tree, case["tree"], text, "tree")
    if "unparsed_text" in case:
        assert [text[a:b] for a, b in result.unparsed] == case["unparsed_text"]


@pytest.mark.parametrize("case", [c for c in CASES if c.get("rows")], ids=lambda c: c["text"][:40])
def test_outcomes(case):
    """Each row through the wide-row reader and the evaluator; outcomes by hand from the words."""
    section = case.get("section", "inclusion")
    heading = "Inclusion Criteria:" if section == "inclusion" else "Exclusion Criteria:"
    trial = eligibility.compile_trial(f"{heading}\n- {case['text']}\n")
    cid = trial.criteria[-1].id
    for n, row in enumerate(case["rows"]):
        data = {"patient_id": f"p{n}", **{k: v for k, v in row.items() if k not in ("expect", "why")}}
        got = eligibility.evaluate(trial, data, as_of="2026-01-01").outcomes[cid]
        assert got.outcome == row["expect"], (row, got.explanations)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["text"][:40])
def test_span_rules(case):
    """`others` and the plain bound of an exception stand for races named elsewhere: their leaves
    must still keep the compiler's span rules (no overlap, children inside parents, all covered)."""
    text = case["text"]
    check_spans(text, 0, len(text), case.get("section", "inclusion"))


RACE_WORDS = ["Asian", "participants", "(others)", "others", "other", "non-Asian", "non-Hispanic", "Hispanic",
              "Latino", "ethnicity", "Black", "White", "African American", "of Asian descent", "for", "in",
              "Caucasian", "Native Hawaiian", "Race:", "Asian Americans", "South Asian", "women", "stools"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(RACE_WORDS), st.sampled_from(PROPERTY_WORDS)), max_size=14).map(" ".join),
       st.sampled_from(["inclusion", "exclusion"]))
def test_race_words_keep_the_span_rules(text, section):
    check_spans(text, 0, len(text), section)


# ---- the code table against the standards ---------------------------------------------------------

# US Core omb-race-category / omb-ethnicity-category (CDC Race & Ethnicity code system)
CDC = {"1002-5": "american_indian_or_alaska_native", "2028-9": "asian", "2054-5": "black",
       "2076-8": "pacific_islander", "2106-3": "white"}
CDC_ETHNICITY = {"2135-2": "hispanic", "2186-5": "not_hispanic"}
# OMOP standard concepts of the Race and Ethnicity vocabularies (PERSON.race_concept_id / ethnicity_concept_id)
OMOP = {"8657": "american_indian_or_alaska_native", "8515": "asian", "8516": "black",
        "8557": "pacific_islander", "8527": "white"}
OMOP_ETHNICITY = {"38003563": "hispanic", "38003564": "not_hispanic"}
# the OMB names and Synthea's RACE / ETHNICITY values
WORDS = {"American Indian or Alaska Native": "american_indian_or_alaska_native", "Asian": "asian",
         "Black or African American": "black", "Native Hawaiian or Other Pacific Islander": "pacific_islander",
         "White": "white", "native": "american_indian_or_alaska_native", "hawaiian": "pacific_islander",
         "black": "black", "other": "other"}
WORDS_ETHNICITY = {"Hispanic or Latino": "hispanic", "Not Hispanic or Latino": "not_hispanic",
                   "hispanic": "hispanic", "nonhispanic": "not_hispanic"}


@pytest.mark.parametrize("kind,table", [("race", CDC), ("race", OMOP), ("race", WORDS), ("ethnicity", CDC_ETHNICITY),
                                        ("ethnicity", OMOP_ETHNICITY), ("ethnicity", WORDS_ETHNICITY)])
def test_data_values_follow_the_standards(kind, table):
    for value, ident in table.items():
        assert races.data_value(kind, value) == (ident, []), value
    other = "ethnicity" if kind == "race" else "race"
    for value in table:       # a race code is no ethnicity, and the other way round
        assert races.data_value(other, value)[0] is None, value


def test_data_values_missing_several_and_unknown():
    assert races.data_value("race", "0") == (None, [])              # OMOP: No matching concept
    assert races.data_value("race", "UNK") == (None, [])            # US Core null flavor
    assert races.data_value("race", "2028-9;2106-3") == ("asian,white", [])
    assert races.data_value("race", "Martian") == (None, ["Martian"])
    for origin in races.table().origins:                           # every category's label is its OMB name
        assert races.origin_of(origin.code) is origin


# ---- screening --------------------------------------------------------------------------------------

def _screen(tmp_path: Path, data: Path, engine: str) -> tuple[list[dict], str]:
    out = tmp_path / f"{engine}.csv"
    result = CliRunner().invoke(main, ["screen", str(TRIAL), str(data), "--as-of", AS_OF.isoformat(),
                                       "-o", str(out), "--engine", engine])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(out.read_text("utf-8")))), result.stderr


def _verdict(outcomes: list[str]) -> str:
    return "ineligible" if "fail" in outcomes else "eligible" if set(outcomes) == {"pass"} else "needs_review"


def test_trial_compiles_to_race_nodes():
    trial = eligibility.compile_trial(TRIAL)
    assert [c.status for c in trial.criteria] == ["compiled"] * 4
    codes = [sorted({n.code for n in walk(c.tree) if n.kind == "has"}) for c in trial.criteria]
    assert codes == [["race_asian"], ["race_asian"], ["ethnicity_hispanic"], ["race_black"]]


def test_wide_csv_screening_by_hand(tmp_path):
    data = ROOT / "cases" / "races_patients.csv"
    expected = {r["patient_id"]: r for r in csv.DictReader((ROOT / "cases" / "races_patients_expected.csv").open())}
    outputs = {}
    for engine in ("python", "duckdb"):
        rows, stderr = _screen(tmp_path, data, engine)
        outputs[engine] = rows
        assert "python engine" in stderr        # race fields: the Python engine runs, and says so
    assert outputs["python"] == outputs["duckdb"]
    rows = outputs["python"]
    assert [r["patient_id"] for r in rows] == list(expected)
    for row in rows:
        want = expected[row["patient_id"]]
        got = {c: row[c] for c in ("I1", "I2", "I3", "E1")}
        assert got == {c: want[c] for c in got}, (row["patient_id"], want["why"], row["reasons"])
        assert row["verdict"] == _verdict(list(got.values()))
    martian = next(r for r in rows if r["patient_id"] == "R12")
    assert "race 'Martian' is not a known race" in martian["reasons"]


def test_unknown_race_is_a_data_problem_not_a_crash(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("patient_id,race,ethnicity\nA,Asian,Klingon\nB,,\n", "utf-8")
    source = read_patients([path], as_of=AS_OF, registry=default_registry())
    a, b = list(source.patients)
    assert (a.race, a.ethnicity, b.race, b.ethnicity) == ("asian", None, None, None)
    assert a.problems == ["ethnicity 'Klingon' is not a known ethnicity (OMB category, CDC or OMOP code)"]
    assert b.problems == []


# the procedure samples: race, ethnicity and BMI from their README, read plainly
def _readme() -> dict[str, dict]:
    lines = (SAMPLES / "README.md").read_text("utf-8").splitlines()
    people: dict[str, dict] = {}
    current = None
    for i, line in enumerate(lines):
        if line.startswith("| key | Synthea Id"):
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                c = [x.strip() for x in row.strip().strip("|").split("|")]
                people[c[0]] = {"synthea": c[1].strip("`"), "omop": c[2], "race": c[4], "ethnicity": c[5],
                                "in": c[8].split(", "), "bmi": []}
        elif (m := re.match(r"### (P\d\d) ", line)):
            current = m.group(1)
        elif current and line.startswith("| Body Mass Index |"):
            c = [x.strip() for x in line.strip().strip("|").split("|")]
            people[current]["bmi"].append((date.fromisoformat(c[2]), float(c[3].split()[0])))
    return people


def _reference(person: dict) -> dict[str, str]:
    """Outcomes of tests/cases/races_trial.txt from one README row (latest BMI of the last 365 days)."""
    recent = [(d, v) for d, v in person["bmi"] if AS_OF - timedelta(days=365) <= d <= AS_OF]
    bmi = max(recent)[1] if recent else None
    asian = person["race"] == "asian"
    i1 = bmi >= (23 if asian else 25)
    i2 = bmi >= (25 if asian else 27)
    hispanic = person["ethnicity"] == "hispanic"
    black = person["race"] == "black"
    word = {True: "pass", False: "fail"}
    return {"I1": word[i1], "I2": word[i2], "I3": word[hispanic], "E1": word[not black]}


PEOPLE = _readme()


def test_reference_by_hand():
    """The reference on rows checked by hand, so a wrong README reading shows."""
    assert _reference(PEOPLE["P04"]) == {"I1": "pass", "I2": "fail", "I3": "fail", "E1": "pass"}   # Asian, 24.1
    assert _reference(PEOPLE["P09"]) == {"I1": "fail", "I2": "fail", "I3": "fail", "E1": "pass"}   # Asian, 22.9
    assert _reference(PEOPLE["P08"]) == {"I1": "pass", "I2": "fail", "I3": "fail", "E1": "fail"}   # Black, 26.5
    assert _reference(PEOPLE["P05"]) == {"I1": "pass", "I2": "pass", "I3": "pass", "E1": "pass"}   # other, 30.2


@pytest.mark.parametrize("fmt", ["synthea", "synthea_v2", "omop", "fhir"])
def test_procedure_samples_race_fields(tmp_path, fmt):
    keys = {(p["omop"] if fmt == "omop" else p["synthea"]): k for k, p in PEOPLE.items() if fmt in p["in"]}
    source = read_patients([SAMPLES / fmt], as_of=AS_OF, registry=default_registry())
    readme_words = {"asian": "asian", "black": "black", "white": "white", "other": "other",
                    "hispanic": "hispanic", "nonhispanic": "not_hispanic"}
    for patient in source.patients:
        person = PEOPLE[keys[patient.id]]
        assert (patient.race, patient.ethnicity) == (readme_words[person["race"]], readme_words[person["ethnicity"]])
    outputs = {engine: _screen(tmp_path, SAMPLES / fmt, engine) for engine in ("python", "duckdb")}
    assert outputs["python"][0] == outputs["duckdb"][0]
    rows = outputs["python"][0]
    assert sorted(keys[r["patient_id"]] for r in rows) == [k for k, p in PEOPLE.items() if fmt in p["in"]]
    for row in rows:
        want = _reference(PEOPLE[keys[row["patient_id"]]])
        assert {c: row[c] for c in want} == want, (keys[row["patient_id"]], row["reasons"])
