"""The postgres-dialect SQL on a real PostgreSQL server gives DuckDB's outcomes for every patient.

scripts/run-tests starts a private server on loopback and exports ELIGIBILITY_PG_DSN.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from eligibility.registry.concepts import default_registry
from eligibility.sql.query import trial_to_sql
from sql_engines_data import AS_OF, HEADER, duckdb_results, patients, trials, write_csv
from shared_paths import SHARED

DSN = os.environ.get("ELIGIBILITY_PG_DSN")
OMOP = (SHARED / "data/omop_eunomia")
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


# the infant trial (trials()[2], age bounds in months) references the age a dozen times: it took minutes
# for 400 rows until each query layer was fenced with OFFSET 0 (eligibility.sql.query.render)
@pytest.mark.parametrize("which", [0, 1, 2], ids=["seed-trial", "example-trial", "infant-trial"])
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
    # the data is varied enough that the comparison covers every criterion outcome (the example
    # trial, with a dozen computable criteria, leaves almost no random patient without a fail)
    assert {o for v in expected.values() for o in v[1:]} >= {"pass", "fail", "unknown"}
    assert {v[0] for v in expected.values()} >= ({"ineligible", "needs_review"} if which == 0 else {"ineligible"})


@pytest.fixture(scope="module")
def omop_loaded():
    """The Eunomia OMOP CDM sample, as the DuckDB views present it, copied into schema `cdm` on PostgreSQL."""
    import duckdb
    import psycopg

    from eligibility.engines.long_views import TABLES, register_long_views

    pg_type = {"VARCHAR": "TEXT", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "DOUBLE": "DOUBLE PRECISION",
               "DATE": "DATE", "TIMESTAMP": "TIMESTAMP"}
    duck = duckdb.connect()
    register_long_views(duck, OMOP)
    with psycopg.connect(DSN, autocommit=True) as con:
        con.execute("DROP SCHEMA IF EXISTS cdm CASCADE")
        con.execute("CREATE SCHEMA cdm")
        for table, columns in TABLES.items():
            con.execute(f"CREATE TABLE cdm.{table} ({', '.join(f'{c} {pg_type[t]}' for c, t in columns.items())})")
            rows = duck.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            with con.cursor().copy(f"COPY cdm.{table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    return duck


@pytest.mark.parametrize("which", [0, 1], ids=["seed-trial", "example-trial"])
def test_postgres_omop_matches_duckdb(omop_loaded, which):
    import psycopg

    trial = trials()[which]
    as_of = date(2019, 6, 1)
    duck_sql = trial_to_sql(trial, dialect="duckdb", schema="omop", as_of=as_of, registry=default_registry())
    expected = {r[0]: (r[1], *r[3:]) for r in omop_loaded.execute(duck_sql).fetchall()}
    pg_sql = trial_to_sql(trial, dialect="postgres", schema="omop", table="cdm", as_of=as_of, registry=default_registry())
    with psycopg.connect(DSN) as con:
        got = {r[0]: (r[1], *r[3:]) for r in con.execute(pg_sql).fetchall()}
    assert len(expected) == 28 and got == expected
