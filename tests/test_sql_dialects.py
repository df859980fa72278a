"""BigQuery, Snowflake and T-SQL renderings of `eligibility sql` (issue 10): parsed back by sqlglot, wide and OMOP.

No such warehouse runs here, so the renderings are checked as far as sqlglot can: each parses back in
its own dialect into one statement with no function sqlglot does not know there; BigQuery's and
Snowflake's, read back and written as DuckDB, give the same rows (outcomes *and* reasons) as the
DuckDB rendering on the same tables.  (T-SQL concatenates with `+`, which sqlglot reads back as an
addition, so its rendering is only parsed.)
"""
from __future__ import annotations

import subprocess
import sys
from datetime import date

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from eligibility.compile.trials import compile_trial_file
from eligibility.registry.concepts import default_registry
from eligibility.sql.nodes import trial_needs
from eligibility.sql.query import trial_to_sql
from eligibility.sql.wide import default_header
from shared_paths import SHARED

TRIALS = SHARED / "trials"
OMOP = SHARED / "data" / "omop_eunomia"
NAMES = ["ucmsc_t2dm.txt", "example_t2dm_addon.txt"]
WAREHOUSES = ["bigquery", "snowflake", "tsql"]
AS_OF = date(2019, 6, 1)


@pytest.fixture(scope="module")
def trials():
    return {name: compile_trial_file(TRIALS / name)[0] for name in NAMES}


@pytest.mark.parametrize("schema", ["wide", "omop"])
@pytest.mark.parametrize("dialect", WAREHOUSES)
def test_printed_sql_parses_back(dialect, schema):
    """The CLI's output, as a user gets it, is one statement of the dialect with only functions it knows."""
    run = subprocess.run([sys.executable, "-m", "eligibility", "sql", str(TRIALS / NAMES[1]), "--schema", schema,
                          "--dialect", dialect, "--as-of", AS_OF.isoformat()], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    statements = [s for s in sqlglot.parse(run.stdout, read=dialect) if s is not None]
    assert len(statements) == 1
    assert [f.name for f in statements[0].find_all(exp.Anonymous)] == []


def _omop_tables() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for path in OMOP.glob("*.csv"):
        con.execute(f"CREATE TABLE {path.stem.lower()} AS SELECT * FROM read_csv_auto('{path}')")
    con.execute("CREATE TABLE death (person_id BIGINT, death_date DATE)")
    return con


def _wide_table(trial) -> duckdb.DuckDBPyConnection:
    layout = default_header(trial_needs(trial), default_registry())
    con = duckdb.connect()
    con.execute(f"CREATE TABLE patients ({', '.join(f'{c} VARCHAR' for c in layout)})")
    rows = [{"patient_id": "a", "age": "50", "hba1c": "58 mmol/mol", "bmi": "30", "egfr": "60",
             "medications": "metformin; sitagliptin", "conditions": "type 2 diabetes"},
            {"patient_id": "b", "age": "17", "hba1c": "6.9", "bmi": "22.5", "medications": "",
             "conditions": "", "pregnancy": "no"},
            {"patient_id": "c", "age": "", "hba1c": "7,5 %", "bmi": "abc", "egfr": "30 mL/min/1.73m2",
             "pregnancy": "yes"},
            {"patient_id": "d"}]
    for row in rows:
        cols = [c for c in row if c in layout]
        con.execute(f"INSERT INTO patients ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    [row[c] for c in cols])
    return con


@pytest.mark.parametrize("schema", ["wide", "omop"])
@pytest.mark.parametrize("dialect", ["bigquery", "snowflake"])
@pytest.mark.parametrize("name", NAMES)
def test_rendering_read_back_gives_the_duckdb_rows(trials, name, dialect, schema):
    """Read back from BigQuery / Snowflake and written as DuckDB: the same rows, reasons included
    (Snowflake's CONCAT_WS returns NULL on a NULL piece and BigQuery has none: the reasons are joined
    with ARRAY_TO_STRING; BigQuery has no DATE + INT64: days are added with DATE_ADD)."""
    if schema == "omop" and not OMOP.exists():
        pytest.skip("shared OMOP sample not present")
    trial = trials[name]
    con = _omop_tables() if schema == "omop" else _wide_table(trial)
    reference = sorted(con.execute(trial_to_sql(trial, schema=schema, as_of=AS_OF)).fetchall())
    rendered = trial_to_sql(trial, dialect=dialect, schema=schema, as_of=AS_OF)
    back = sqlglot.transpile(rendered, read=dialect, write="duckdb")[0]
    assert sorted(con.execute(back).fetchall()) == reference
    assert any(r[2] for r in reference)      # some reasons were compared


def test_reasons_are_not_joined_with_concat_ws_where_it_keeps_nulls(trials):
    for dialect in ("bigquery", "snowflake"):
        sql = trial_to_sql(trials[NAMES[1]], dialect=dialect, schema="omop", as_of=AS_OF)
        assert "CONCAT_WS" not in sql and "ARRAY_TO_STRING" in sql
    assert "ARRAY_CONSTRUCT_COMPACT" in trial_to_sql(trials[NAMES[1]], dialect="snowflake", schema="omop", as_of=AS_OF)
    # SQL Server's CONCAT_WS skips NULLs, as DuckDB's
    assert "CONCAT_WS" in trial_to_sql(trials[NAMES[1]], dialect="tsql", schema="omop", as_of=AS_OF)
