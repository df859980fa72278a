"""The DuckDB-only fast paths of eligibility.sql.cells agree with the portable expressions they shortcut."""
from __future__ import annotations

import duckdb
import pytest
from sqlglot import exp

from eligibility.sql import cells as sc

DATES = ["2020-02-29", "2021-02-29", "1900-02-29", "2000-02-29", "0000-01-01", "0001-01-01", "2020-1-05",
         "2020-01-05x", "2020-01-05T", "2020-01-05 12:00", "2020-01-05T08:30:00", "+202-01-01", "2020-13-01",
         "2020-00-01", "2020-04-31", "2020-04-30", "9999-12-31", "20200101", "2020/01/01", "2020-01-05T\nx", "", None]
# calendar facts: 2020 and 2000 are leap years, 1900 and 2021 are not; April has 30 days
EXPECTED = {"2020-02-29": "2020-02-29", "2000-02-29": "2000-02-29", "0001-01-01": "0001-01-01",
            "2020-01-05T": "2020-01-05", "2020-01-05 12:00": "2020-01-05", "2020-01-05T08:30:00": "2020-01-05",
            "2020-04-30": "2020-04-30", "9999-12-31": "9999-12-31"}

NUMBERS = ["1", "-2.5", "+3", ".5", "5.", "1e3", "1E-2", "inf", "-inf", "nan", "1_000", "+-1", "-+1", "0x10",
           "1e400", "7.5 %", "58 mmol/mol", "abc", "", None]


def _eval(expr: exp.Expression, values: list[str | None]) -> list:
    con = duckdb.connect()
    con.execute("CREATE TABLE cells (t VARCHAR)")
    con.executemany("INSERT INTO cells VALUES (?)", [(v,) for v in values])
    sql = exp.select(exp.alias_(expr, "out")).from_("cells").sql(dialect="duckdb")
    return [row[0] for row in con.execute(sql).fetchall()]


def test_fast_date_matches_iso_date():
    t = exp.column("t")
    fast = _eval(sc.fast_date(t), DATES)
    portable = _eval(sc.iso_date(t), DATES)
    assert fast == portable
    assert {d: str(v) for d, v in zip(DATES, fast) if v is not None} == EXPECTED


@pytest.mark.parametrize("cell", NUMBERS)
def test_fast_value_only_for_plain_finite_numbers(cell):
    t = exp.column("t")
    (value,) = _eval(sc.fast_value(t), [cell])
    plain = {"1": 1.0, "-2.5": -2.5, "+3": 3.0, ".5": 0.5, "5.": 5.0, "1e3": 1000.0, "1E-2": 0.01}
    assert value == plain.get(cell)


def test_plain_number_shown_as_written(tmp_path):
    """A plain number in the canonical unit appears in the reason as the cell spells it."""
    import csv
    from datetime import date

    from eligibility.engines.duckdb_engine import screen_duckdb
    from eligibility.registry.concepts import default_registry
    from eligibility.compile.trials import compile_trial_text

    trial, _ = compile_trial_text("Inclusion Criteria:\n- BMI between 24 and 40 kg/m2\n")
    data = tmp_path / "d.csv"
    data.write_text("patient_id,bmi\nP1,18.70\nP2,30\nP3,410 kg/m2\n")
    out = tmp_path / "out.csv"
    screen_duckdb(trial, [data], output=str(out), as_of=date(2026, 1, 1), registry=default_registry())
    rows = list(csv.DictReader(out.open()))
    assert [r["verdict"] for r in rows] == ["ineligible", "eligible", "needs_review"]
    assert rows[0]["reasons"] == "I1 fail: BMI 18.70 kg/m² < 24.0 kg/m²"   # the cell as written, then the bound
    # 410 is outside the plausible BMI range (8-150 kg/m2): unknown, with the reader's reason
    assert "410" in rows[2]["reasons"] and "plausible" in rows[2]["reasons"]


def test_explanation_concatenations_become_one_concat():
    from sqlglot import parse_one

    from eligibility.engines.duckdb_engine import _one_concat

    query = parse_one("SELECT 'a' || x || 'b' || (y || 'c') AS r, CASE WHEN q THEN 'p' || z END AS s", read="duckdb")
    assert query.transform(_one_concat).sql("duckdb") == \
        "SELECT CONCAT('a', x, 'b', y, 'c') AS r, CASE WHEN q THEN CONCAT('p', z) END AS s"
