"""The OMOP export runs where users load the CDM: tables DuckDB loaded from the CDM CSVs with its own
type detection (an all-empty `range_high` becomes VARCHAR), then the SQL `eligibility sql --schema omop`
prints.  Its outcomes must equal `eligibility screen` on the same folder (issue 10)."""
from __future__ import annotations

import csv
import io
import subprocess
import sys

import duckdb
import pytest

from tests.shared_paths import SHARED

FOLDER = SHARED / "data" / "omop_eunomia"
TRIALS = SHARED / "trials"


def _cli(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "eligibility", *args], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("as_of", ["2019-06-01", "2010-01-01"])
@pytest.mark.parametrize("name", ["ucmsc_t2dm.txt", "example_t2dm_addon.txt"])
def test_printed_sql_on_auto_typed_cdm_tables_equals_screen(name, as_of):
    if not FOLDER.exists():
        pytest.skip("shared OMOP sample not present")
    sql = _cli("sql", str(TRIALS / name), "--schema", "omop", "--as-of", as_of)
    con = duckdb.connect()
    for path in FOLDER.glob("*.csv"):
        con.execute(f"CREATE TABLE {path.stem.lower()} AS SELECT * FROM read_csv_auto('{path}')")
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'measurement'").fetchall())
    assert types["range_high"] == "VARCHAR"          # the case the casts are for
    con.execute("CREATE TABLE death (person_id BIGINT, death_date DATE)")   # the sample has no DEATH.csv
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    exported = {str(r[0]): (r[1], *r[3:]) for r in cursor.fetchall()}
    screened = list(csv.reader(io.StringIO(_cli("screen", str(TRIALS / name), str(FOLDER), "--as-of", as_of,
                                                "--engine", "python"))))
    header, rows = screened[0], screened[1:]
    assert names[3:] == header[3:]
    python = {r[0]: (r[1], *r[3:]) for r in rows}
    assert exported == python
