"""The omop-schema SQL on the Eunomia OMOP CDM sample agrees with the Python OMOP reader + evaluator."""
from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import duckdb
import pytest

from eligibility.engines.long_views import register_long_views
from eligibility.evaluate.plan import Plan
from eligibility.readers import read_patients
from eligibility.registry.concepts import default_registry
from eligibility.sql.query import trial_to_sql
from eligibility.compile.trials import compile_trial_file
from shared_paths import SHARED

FOLDER = (SHARED / "data/omop_eunomia")
TRIALS = (SHARED / "trials")


@pytest.mark.parametrize("as_of", [date(2019, 6, 1), date(2010, 1, 1)])
@pytest.mark.parametrize("name", ["ucmsc_t2dm.txt", "example_t2dm_addon.txt"])
def test_omop_sql_matches_python_reader(name, as_of):
    trial, _ = compile_trial_file(TRIALS / name)
    got, expected = _both_engines(trial, as_of)
    assert got == expected


def _both_engines(trial, as_of):
    """(SQL on the OMOP views, Python OMOP reader + evaluator): patient id -> (verdict, *outcomes)."""
    registry = default_registry()
    con = duckdb.connect()
    register_long_views(con, FOLDER)
    sql = trial_to_sql(trial, dialect="duckdb", schema="omop", as_of=as_of, lookback_days=365, registry=registry)
    got = {r[0]: (r[1], *r[3:]) for r in con.execute(sql).fetchall()}
    source = read_patients([FOLDER], input_format="omop", as_of=as_of, lookback_days=365, registry=registry)
    plan = Plan(trial, registry, as_of)
    return got, {p.id: (r.verdict, *r.outcomes) for p in source.patients for r in [plan.evaluate(p)]}


def test_omop_bmi_uses_latest_value_in_window():
    """Eunomia person 1's BMI criterion is decided by measurements, not all unknown (the comparison has teeth)."""
    trial, _ = compile_trial_file(TRIALS / "example_t2dm_addon.txt")
    con = duckdb.connect()
    register_long_views(con, FOLDER)
    rows = con.execute(trial_to_sql(trial, schema="omop", as_of=date(2019, 6, 1))).fetchall()
    bmi = [c.id for c in trial.criteria].index("I3")
    counts = Counter(r[3 + bmi] for r in rows)
    assert counts["pass"] > 0 and counts["fail"] > 0


def test_omop_sql_transpiles_with_window_function():
    trial, _ = compile_trial_file(TRIALS / "example_t2dm_addon.txt")
    for dialect in ("postgres", "spark", "bigquery", "snowflake", "tsql"):
        sql = trial_to_sql(trial, dialect=dialect, schema="omop", table="cdm", as_of=date(2024, 1, 1))
        assert "ROW_NUMBER() OVER (PARTITION BY" in sql.upper().replace("\n", " ").replace("  ", " ")
        assert "cdm.measurement" in sql.lower().replace('"', "").replace("`", "")


@pytest.mark.parametrize("as_of,person,months", [(date(2022, 8, 7), "27", 5), (date(2022, 8, 8), "27", 6),
                                                 (date(2021, 11, 5), "15", 24), (date(2022, 5, 5), "15", 30)])
def test_omop_month_age_bounds_match_python(as_of, person, months):
    """Person 27 born 2022-02-08, person 15 born 2019-11-05: 'Infants 6 to 24 months of age' compares
    completed months (docs/patient-data.md "Age in months") in both engines."""
    from eligibility.compile.trials import compile_trial_text
    text = "Inclusion Criteria:\n\n* Infants 6 to 24 months of age\n"
    trial, problems = compile_trial_text(text, "text", "infants.txt")
    assert problems == []
    got, expected = _both_engines(trial, as_of)
    assert got == expected
    assert got[person][1] == ("pass" if 6 <= months <= 24 else "fail")
