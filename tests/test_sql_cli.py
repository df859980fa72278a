"""`eligibility sql`: one query per dialect and schema, runnable as printed."""
from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from eligibility.cli import main
from shared_paths import SHARED

TRIAL = str(SHARED / "trials/example_t2dm_addon.txt")


@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "spark", "bigquery", "snowflake", "tsql"])
def test_sql_command_prints_one_statement(dialect):
    result = CliRunner().invoke(main, ["sql", TRIAL, "--dialect", dialect, "--as-of", "2025-01-01"])
    assert result.exit_code == 0, result.output
    import sqlglot

    statements = [s for s in sqlglot.parse(result.stdout, read=dialect) if s is not None]
    assert len(statements) == 1


def test_printed_duckdb_query_runs_on_the_default_layout():
    """The default warehouse layout (concept ids as columns) screens a patient: HbA1c 53 mmol/mol is 7.0 %."""
    result = CliRunner().invoke(main, ["sql", TRIAL, "--as-of", "2025-01-01", "--table", "pts"])
    assert result.exit_code == 0, result.output
    from eligibility.registry.concepts import default_registry
    from eligibility.sql.wide import default_header
    from eligibility.sql.nodes import trial_needs
    from eligibility.compile.trials import compile_trial_file

    layout = default_header(trial_needs(compile_trial_file(TRIAL)[0]), default_registry())
    assert layout[0] == "patient_id" and "hba1c" in layout and "medications" in layout
    con = duckdb.connect()
    con.execute(f"CREATE TABLE pts ({', '.join(f'{c} VARCHAR' for c in layout)})")
    con.execute("INSERT INTO pts (patient_id, age, hba1c, bmi, egfr) VALUES "
                "('a', '50', '53 mmol/mol', '30', '60'), ('b', '50', '6.9', '30', '60')")
    columns = [d[0] for d in con.execute(result.stdout).description]
    rows = {r[0]: dict(zip(columns, r)) for r in con.execute(result.stdout).fetchall()}
    hba1c = next(c for c in columns if c.startswith("I") and rows["a"][c] != rows["b"][c])
    assert (rows["a"][hba1c], rows["b"][hba1c]) == ("pass", "fail")
