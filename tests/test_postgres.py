"""The postgres-dialect SQL on a real PostgreSQL server gives DuckDB's outcomes for every patient.

scripts/run-tests starts a private server on loopback and exports ELIGIBILITY_PG_DSN.
"""
from __future__ import annotations

import os

import pytest

from eligibility.registry import default_registry
from eligibility.sqlgen import trial_to_sql
from sql_engines_data import AS_OF, HEADER, duckdb_results, patients, trials, write_csv

DSN = os.environ.get("ELIGIBILITY_PG_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="ELIGIBILITY_PG_DSN not set (run through scripts/run-tests)")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    import psycopg

    rows = patients()
    path = write_csv(tmp_path_factory.mktemp("pg") / "patients.csv", rows)
    with psycopg.connect(DSN, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS wide_patients")
        columns = ", ".join(f'"{h}" TEXT' for h in HEADER)
        con.execute(f"CREATE TABLE wide_patients ({columns})")
        with con.cursor().copy(f"COPY wide_patients ({', '.join(chr(34) + h + chr(34) for h in HEADER)}) FROM STDIN") as copy:
            for row in rows:
                # the table has the header's width: short rows padded, long rows cut, as both readers do
                copy.write_row((row + [None] * len(HEADER))[: len(HEADER)])
    return path


@pytest.mark.parametrize("which", [0, 1], ids=["seed-trial", "example-trial"])
def test_postgres_matches_duckdb(loaded, which):
    import psycopg

    trial = trials()[which]
    sql = trial_to_sql(trial, dialect="postgres", schema="wide", table="wide_patients", as_of=AS_OF,
                       registry=default_registry(), header=HEADER)
    with psycopg.connect(DSN) as con:
        got = {r[0]: (r[1], *r[3:]) for r in con.execute(sql).fetchall()}
    expected = duckdb_results(trial, loaded)
    assert len(got) == len(expected) == 400
    differing = {pid: (got[pid], expected[pid]) for pid in expected if got[pid] != expected[pid]}
    assert not differing
    # the data is varied enough that every verdict occurs
    assert {v[0] for v in expected.values()} >= {"ineligible", "needs_review"}
