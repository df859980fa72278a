"""The Python evaluator and the DuckDB engine must agree on every criterion outcome and verdict.

Hypothesis writes batches of patients to a wide CSV: values on and around every
bound of the trials (in canonical units and in other units), missing tokens,
malformed cells, implausible values, excluded drugs by name / ATC code / class
name, conditions by name / ICD-10 / SNOMED, reviewer decisions, birth dates
around birthdays, short and long rows.  Both engines screen the same file.
"""
from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eligibility.engines.duckdb_engine import build_query
from eligibility.evaluate.plan import Plan
from eligibility.core.ir import Has, walk
from eligibility.readers import read_patients
from eligibility.registry.concepts import default_registry
from eligibility.compile.trials import compile_trial_file, compile_trial_text
from shared_paths import SHARED

TRIALS = (SHARED / "trials")
AS_OF = date(2026, 1, 1)
MISSING = ["", "NA", "n/a", "null", "none", "unknown", "-", "nan", "."]
BAD = ["7,5", ">12", "abc", "5 furlongs", "≥7", "1e", "--3", "8 mg/dL",
       # DuckDB's own number parsing reads these (1000, -1, infinity); the reader does not
       "1_000", "+-1", "inf", "1e400"]


def near(*values: float) -> list[str]:
    """Each bound, and the floats just around it (as text the way a lab system writes them)."""
    out = []
    for v in values:
        out += [repr(v), repr(v + 1e-7), repr(v - 1e-7), repr(v + 0.01), repr(v - 0.01), f"{v:g}"]
    return out


COLUMNS: dict[str, list[str]] = {
    "birth_date": ["1960-01-01", "1961-01-01", "2005-12-31", "2006-01-01", "2006-01-02", "1940-06-30",
                   "1960-02-29", "2027-01-01", "01/02/1980", "1980-02-30", "1975-05-05T10:00",
                   # the first three years of life, around the month bounds of INFANT_TRIAL
                   "2025-07-01", "2025-07-02", "2025-06-30", "2025-12-31", "2024-01-01", "2023-12-31",
                   "2023-12-01", "2023-07-01", "2023-06-30", "2024-02-29", "2025-01-31"],
    "age": near(20, 65, 18, 75) + ["65.9", "19.99", "200", "0", "1", "2", "3", "0.5", "2 years"],
    "sex": ["F", "m", "female", "Male", "x", "w", "M", "man"],
    "diabetes_duration": near(20) + ["0.5", "0.49", "6 months", "25 years"],
    "T2DM diagnosis date": ["2025-07-01", "2025-07-05", "2005-01-01", "2006-01-02", "2030-01-01", "bad"],
    "BMI (kg/m2)": near(24.0, 40.0, 25, 40) + ["400", "24 kg/m²", "30 kg/m^2"],
    "insulin dose (U/kg/d)": near(0.5, 1.0) + ["0.7 U/kg/day", "0.7 IU/kg", "50 U/d"],
    "HbA1c": near(7.0, 12.0, 10.5) + [" 7.5 ", "7.5 ", " 53 mmol/mol ", "53 mmol/mol", "52.9 mmol/mol", "53.1 mmol/mol", "91 mmol/mol",
                                       "108 mmol/mol", "7 %", "7.0%", "30"],
    "fasting c-peptide": near(1.0, 0.906) + ["0.3 nmol/L", "0.299 nmol/L", "331 pmol/L", "330 pmol/L",
                                              "1 ng/ml", "0.33 nmol/l"],
    "egfr": near(45) + ["45 mL/min/1.73 m2", "44.99 ml/min/1.73m2"],
    "ALT": near(120, 150, 40) + ["121 U/L", "3 x ULN"],
    "AST": near(120) + ["119.99 IU/L"],
    "alt_uln": ["", "50", "40", "abc", "35 U/L"],
    "systolic bp": near(160) + ["160 mmHg", "159.9 mm Hg"],
    "diastolic bp": near(100) + ["100 mmHg"],
    "fasting plasma glucose": near(270 / 18.016, 15) + ["270 mg/dL", "270.01 mg/dl", "15 mmol/L"],
    # a second column for the same concept, its unit in the header: the first usable value wins
    "fasting glucose [mg/dL]": ["270", "270.0000001", "269.99", "271", "15 mmol/L", "4860 mg/L"],
    "hba1c (mmol/mol)": ["53", "52.99", "53.01", "91", "91.1", "7 %", "108"],
    "medications": ["metformin", "sitagliptin; metformin", "A10BH01", "a10bj06", "GLP-1 receptor agonist",
                    "dapagliflozin|insulin glargine", "tirzepatide", "none", "nil", "aspirin", ";",
                    "Insulin   Glargine", "empagliflozin ; metformin", "1545653", "A10B", "sglt2 inhibitors",
                    # groups broader than the classes asked (unknown unless a member is listed too)
                    "oral hypoglycaemic agents", "A10", "OAD; dapagliflozin", "A10B | liraglutide", "A10BA"],
    "conditions": ["type 2 diabetes", "E11.9", "E11", "F10.2", "drug abuse", "pregnant", "44054006",
                   "hypertension; T2DM", "C50.9", "none", "ckd", "lactating"],
    "pregnant": ["yes", "no", "y", "0", "maybe", "positive", "neg"],
    "breastfeeding": ["yes", "no", "absent", "?"],
    "deceased": ["", "", "", "no", "yes", "2025-12-31", "2026-01-01", "2026-01-02"],
    "I7": ["", "", "pass", "fail", "PASS", "maybe"],
    "E2": ["", "", "pass", "fail"],
}
HEADER = ["patient_id", *COLUMNS]
# the same rows without the yes/no status columns: pregnancy then comes from the list and the sex
NO_STATUS = [n for n, h in enumerate(HEADER) if h not in ("pregnant", "breastfeeding")]


def cell(column: str):
    return st.one_of(st.sampled_from(COLUMNS[column]), st.sampled_from(MISSING), st.sampled_from(BAD))


@st.composite
def patient_rows(draw):
    rows = []
    for n in range(draw(st.integers(1, 25))):
        row = [f"P{n}"] + [draw(cell(c)) if c != "patient_id" else "" for c in COLUMNS]
        cut = draw(st.sampled_from([None] * 8 + [len(row) - 3, len(row) + 2]))
        if cut is not None:
            row = row[:cut] if cut < len(row) else row + ["extra"] * (cut - len(row))
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def trials():
    registry = default_registry()
    out = []
    for name in ("ucmsc_t2dm.txt", "example_t2dm_addon.txt"):
        trial, _problems = compile_trial_file(TRIALS / name)
        out.append(trial)
    trial, problems = compile_trial_text(INFANT_TRIAL, "text", "infants.txt")
    assert problems == []
    out.append(trial)
    return registry, out


# age bounds in months compare completed months (docs/patient-data.md "Age"), mixed with years
INFANT_TRIAL = """Minimum Age: 6 Months
Maximum Age: 17 Years

Inclusion Criteria:

* Infants 6 to 24 months of age
* Age >= 2 weeks

Exclusion Criteria:

* Age > 30 months
* BMI > 40 kg/m2
"""


def python_outcomes(trial, path, registry):
    source = read_patients([path], input_format="wide", as_of=AS_OF, lookback_days=365, registry=registry)
    plan = Plan(trial, registry, AS_OF)
    return [(r.patient_id, r.verdict, tuple(r.outcomes)) for r in map(plan.evaluate, source.patients)]


_SQL: dict[tuple[int, str], str] = {}


def duckdb_outcomes(trial, path, registry):
    import duckdb

    key = (id(trial), str(path))     # same header and path every example: compile the query once
    if key not in _SQL:
        _SQL[key] = build_query(trial, [path], as_of=AS_OF, registry=registry)
    rows = duckdb.connect().execute(_SQL[key]).fetchall()
    return [(r[0] or "", r[1], tuple(r[3:])) for r in rows]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(rows=patient_rows())
def test_python_and_duckdb_agree(rows, trials, tmp_path_factory):
    registry, compiled = trials
    path = tmp_path_factory.getbasetemp() / "differential-patients.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    bare = tmp_path_factory.getbasetemp() / "differential-no-status-columns.csv"
    with bare.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([[row[n] for n in NO_STATUS if n < len(row)] for row in [HEADER, *rows]])
    for trial in compiled:
        assert duckdb_outcomes(trial, path, registry) == python_outcomes(trial, path, registry)
        assert duckdb_outcomes(trial, bare, registry) == python_outcomes(trial, bare, registry)


def test_sex_and_group_rules_are_exercised(trials):
    """Males meet the trials' pregnancy exclusions, and listed groups contain the classes they ask about."""
    from eligibility.evaluate.category_rules import broader_codes, other_sexes
    from eligibility.readers import wide_cells as wc
    registry, compiled = trials
    has = [n for t in compiled for c in t.criteria for n in walk(c.tree) if isinstance(n, Has)]
    assert any(other_sexes(registry.categories.get(n.code)) == ("male",) for n in has)
    assert {s.lower() for s in COLUMNS["sex"]} & wc.MALE and {s.lower() for s in COLUMNS["sex"]} & wc.FEMALE
    asked = {n.code for n in has if n.category == "medication"}
    groups = broader_codes(tuple(p for code in asked for p in registry.categories[code].atc))
    assert {"A10", "A10B"} <= groups and {"A10", "A10B"} <= set(COLUMNS["medications"])


def test_bounds_are_exercised(trials):
    """The generated values straddle the seed trial's BMI bounds (so the test above can fail)."""
    _registry, compiled = trials
    bmi = next(c.tree for c in compiled[0].criteria if c.id == "I3")
    assert (bmi.canonical_low, bmi.canonical_high) == (24.0, 40.0)
    values = [float(v) for v in COLUMNS["BMI (kg/m2)"] if v.replace(".", "").replace("-", "").replace("e", "").isdigit()]
    assert any(v < 24.0 for v in values) and any(v > 40.0 for v in values) and 24.0 in values


# one column of plain numbers mixed with every other kind of cell (the text path only for those)
MIXED = ["7.5", "n/a", " 7.5 ", "7,5", "53 mmol/mol", " 53 mmol/mol ", "11", "inf", "1_000", "+-1", "", "NA",
         "7.5 %", "25 furlongs", "1e400", "-7"]
MIXED_REASONS = [  # the DuckDB engine's reasons as they are (BMI's column holds the same cells, reversed)
    "I2 unknown: BMI -7.0 is outside the plausible range 8–150 kg/m2",
    "I1 unknown: HbA1c missing; I2 unknown: BMI '1e400' is not a number",
    "I2 unknown: BMI '25 furlongs': unit not usable for BMI",
    "I1 unknown: HbA1c '7,5': unit not usable for HbA1c; I2 unknown: BMI '7.5 %': unit not usable for BMI",
    "I2 unknown: BMI missing",
    "I2 unknown: BMI missing",
    "I1 fail: HbA1c 11 % > 10.5 %; I2 unknown: BMI '+-1' is not a number",
    "I1 unknown: HbA1c 'inf' is not a number; I2 unknown: BMI '1_000': unit not usable for BMI",
    "I1 unknown: HbA1c '1_000': unit not usable for HbA1c; I2 unknown: BMI 'inf' is not a number",
    "I1 unknown: HbA1c '+-1' is not a number; I2 fail: BMI 11 kg/m² < 24.0 kg/m²",
    "I1 unknown: HbA1c missing; I2 unknown: BMI '53 mmol/mol': unit not usable for BMI",
    "I1 unknown: HbA1c missing; I2 unknown: BMI '53 mmol/mol': unit not usable for BMI",
    "I2 unknown: BMI '7,5': unit not usable for BMI",
    "I1 unknown: HbA1c '25 furlongs': unit not usable for HbA1c; I2 unknown: BMI 7.5 is outside the plausible range 8–150 kg/m2",
    "I1 unknown: HbA1c '1e400' is not a number; I2 unknown: BMI missing",
    "I1 unknown: HbA1c -7.0 is outside the plausible range 3–20 %; I2 unknown: BMI 7.5 is outside the plausible range 8–150 kg/m2",
]


def test_mixed_number_columns(tmp_path):
    """Columns of plain numbers with some missing, padded, malformed and unit-bearing cells: outcomes as the
    Python engine's, and the DuckDB engine's reasons on the other cells unchanged."""
    from eligibility.engines.duckdb_engine import screen_duckdb

    registry = default_registry()
    trial, _ = compile_trial_text("Inclusion Criteria:\n- HbA1c between 7.0% and 10.5%\n- BMI between 24 and 40 kg/m2\n")
    path = tmp_path / "mixed.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["patient_id", "hba1c", "bmi"]] +
                                     [[f"P{n}", cell, MIXED[-1 - n]] for n, cell in enumerate(MIXED)])
    assert duckdb_outcomes(trial, path, registry) == python_outcomes(trial, path, registry)
    out = tmp_path / "out.csv"
    screen_duckdb(trial, [path], output=str(out), as_of=AS_OF, registry=registry)
    assert [row["reasons"] for row in csv.DictReader(out.open(encoding="utf-8"))] == MIXED_REASONS
