"""The wide SQL answers every categorical evaluation case (tests/cases/evaluate_categorical.jsonl) as expected.

The same hand-derived rows and outcomes as tests/test_evaluate_cases.py, run
through the generated DuckDB SQL over a table of text cells: the two engines
are held to one set of answers (sex-limited statuses, broad drug groups, lists,
yes/no columns).  Explanations are the Python evaluator's and are not compared.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
from pydantic import TypeAdapter

from eligibility.core import ir
from eligibility.registry.concepts import default_registry
from eligibility.sql.query import trial_to_sql

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases/evaluate_categorical.jsonl").read_text("utf-8").splitlines()
         if line.strip()]
AS_OF = date(2026, 1, 1)
TREE = TypeAdapter(ir.Tree)


def _with_spans(node: dict) -> dict:
    node = dict(node, span=node.get("span", [0, 0]))
    if "children" in node:
        node["children"] = [_with_spans(c) for c in node["children"]]
    if "child" in node:
        node["child"] = _with_spans(node["child"])
    return node


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_sql_outcome(case: dict) -> None:
    section = case.get("section", "inclusion")
    criterion = ir.Criterion(id="I1" if section == "inclusion" else "E1", section=section, text=case["name"],
                             span=(0, 1), status="compiled", tree=TREE.validate_python(_with_spans(case["tree"])))
    trial = ir.Trial(trial=ir.TrialInfo(title="case"), criteria=(criterion,))
    header = ["patient_id", *case["row"]]
    con = duckdb.connect()
    con.execute("CREATE TABLE patients (" + ", ".join(f'"{h}" VARCHAR' for h in header) + ")")
    con.execute(f"INSERT INTO patients VALUES ({', '.join('?' * len(header))})", ["P1", *case["row"].values()])
    sql = trial_to_sql(trial, dialect="duckdb", schema="wide", as_of=AS_OF, registry=default_registry(), header=header)
    (patient, verdict, reasons, outcome), = con.execute(sql).fetchall()
    assert patient == "P1"
    assert outcome == case["outcome"], reasons
    if "verdict" in case:
        assert verdict == case["verdict"]


# -- OMOP: sex-limited statuses from person + condition_occurrence -------------------
OMOP_FIXTURE = Path(__file__).parent / "cases/ehr/omop_sex_limited"
# By hand (as of 2026-01-01; exclusions: TRUE fail, FALSE pass, unknown unknown).  Persons:
# 1 female, 2 male, no pregnancy record; 3 female, 4 male with an open pregnancy episode (SNOMED
# 72892002 from 2025-10-01); 5 sex unknown (concept 0, no source value); 6 male by source value 'M'
# and 7 female, both with an episode that ended 2024-09-01 (a closed episode says nothing).
OMOP_EXPECTED = {
    "1": ("needs_review", "unknown", "unknown"),
    "2": ("eligible", "pass", "pass"),
    "3": ("ineligible", "fail", "unknown"),
    "4": ("ineligible", "fail", "pass"),      # a recorded pregnancy is evidence even with sex male
    "5": ("needs_review", "unknown", "unknown"),
    "6": ("eligible", "pass", "pass"),
    "7": ("needs_review", "unknown", "unknown"),
}


def _status_trial() -> ir.Trial:
    criteria = tuple(
        ir.Criterion(id=cid, section="exclusion", text=code, span=(0, 1), status="compiled",
                     tree=TREE.validate_python({"kind": "has", "category": "status", "code": code, "label": code, "span": [0, 1]}))
        for cid, code in (("E1", "pregnancy"), ("E2", "breastfeeding")))
    return ir.Trial(trial=ir.TrialInfo(title="statuses"), criteria=criteria)


def test_omop_sex_limited_statuses_both_engines() -> None:
    from eligibility.engines.long_views import register_long_views
    from eligibility.evaluate.plan import Plan
    from eligibility.readers import read_patients

    trial, registry = _status_trial(), default_registry()
    con = duckdb.connect()
    register_long_views(con, OMOP_FIXTURE)
    sql = trial_to_sql(trial, dialect="duckdb", schema="omop", as_of=AS_OF, lookback_days=365, registry=registry)
    got_sql = {str(r[0]): (r[1], *r[3:]) for r in con.execute(sql).fetchall()}
    source = read_patients([OMOP_FIXTURE], input_format="omop", as_of=AS_OF, lookback_days=365, registry=registry)
    plan = Plan(trial, registry, AS_OF)
    got_python = {p.id: (r.verdict, *r.outcomes) for p in source.patients for r in [plan.evaluate(p)]}
    assert got_python == OMOP_EXPECTED
    assert got_sql == OMOP_EXPECTED
