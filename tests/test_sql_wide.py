"""Generated SQL on single cells: outcomes known from the clinical facts (tests/cases/sql_wide_cases.jsonl)."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlglot
from pydantic import TypeAdapter

from eligibility.core import ir
from eligibility.registry.concepts import default_registry
from eligibility.sql.query import DIALECTS, trial_to_sql

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases/sql_wide_cases.jsonl").read_text().splitlines()
         if line.strip()]
AS_OF = date(2026, 1, 1)
TREE = TypeAdapter(ir.Tree)


def one_criterion(case) -> ir.Trial:
    tree = TREE.validate_python(case["tree"])
    criterion = ir.Criterion(id="I1" if case.get("section", "inclusion") == "inclusion" else "E1",
                             section=case.get("section", "inclusion"), text=case["why"], span=(0, 1),
                             status="compiled", tree=tree)
    return ir.Trial(trial=ir.TrialInfo(title="case"), criteria=(criterion,))


@pytest.mark.parametrize("case", CASES, ids=[c["why"][:50] for c in CASES])
def test_cell_outcome(case):
    trial = one_criterion(case)
    header = ["patient_id", case["header"]]
    con = duckdb.connect()
    con.execute(f'CREATE TABLE patients ("patient_id" VARCHAR, "{case["header"]}" VARCHAR)')
    con.execute("INSERT INTO patients VALUES ('p1', ?)", [case["cell"]])
    sql = trial_to_sql(trial, dialect="duckdb", schema="wide", as_of=AS_OF, registry=default_registry(), header=header)
    (patient, verdict, reasons, outcome), = con.execute(sql).fetchall()
    assert patient == "p1"
    assert outcome == case["expected"], reasons
    assert verdict == {"pass": "eligible", "fail": "ineligible"}.get(outcome, "needs_review")
    assert (reasons == "") == (outcome == "pass")


def test_every_dialect_renders_and_parses_back():
    trial = one_criterion(CASES[0])
    for dialect in DIALECTS:
        sql = trial_to_sql(trial, dialect=dialect, schema="wide", as_of=AS_OF, header=["patient_id", "HbA1c"])
        assert sqlglot.parse_one(sql, read=dialect) is not None
        assert "mmol/mol" in sql        # the per-cell unit CASE is in the query, not in Python


def test_threshold_is_a_compile_time_literal():
    """The bound appears once as a number (shifted by the evaluator's tolerance), not as a per-row conversion."""
    sql = trial_to_sql(one_criterion(CASES[0]), as_of=AS_OF, header=["patient_id", "HbA1c"])
    assert "6.999999993" in sql


@pytest.mark.parametrize("header,cell,shown", [("birth_date", "2023-07-01", "Age 30 completed months"),
                                               ("age", "0", "(months unknown)")])
def test_month_bound_reasons_name_completed_months(header, cell, shown):
    """'6 to 24 months': 2023-07-01 is 30 completed months on 2026-01-01; an age of 0 years leaves them unknown."""
    case = next(c for c in CASES if c["why"].startswith("age in months: born 2023-07-01"))
    sql = trial_to_sql(one_criterion(case), dialect="duckdb", schema="wide", as_of=AS_OF, registry=default_registry(),
                       header=["patient_id", header])
    con = duckdb.connect()
    con.execute(f'CREATE TABLE patients ("patient_id" VARCHAR, "{header}" VARCHAR)')
    con.execute("INSERT INTO patients VALUES ('p1', ?)", [cell])
    (_patient, _verdict, reasons, _outcome), = con.execute(sql).fetchall()
    assert shown in reasons
