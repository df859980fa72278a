"""The spark-dialect SQL on Apache Spark (local mode) gives DuckDB's outcomes for every patient."""
from __future__ import annotations

from datetime import date

import pytest

from eligibility.registry.concepts import default_registry
from eligibility.sql.query import trial_to_sql
from sql_engines_data import AS_OF, HEADER, duckdb_results, patients, trials, write_csv
from shared_paths import SHARED

pyspark = pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark_table(tmp_path_factory):
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType, StructField, StructType

    spark = (SparkSession.builder.master("local[1]").appName("eligibility-test")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
             # ANSI mode on (Spark 4's default): malformed cells must not fail the generated SQL
             .config("spark.sql.ansi.enabled", "true").getOrCreate())
    rows = patients()
    path = write_csv(tmp_path_factory.mktemp("spark") / "patients.csv", rows)
    schema = StructType([StructField(h, StringType()) for h in HEADER])
    data = [tuple((r + [None] * len(HEADER))[: len(HEADER)]) for r in rows]
    # the table holds the cells as text; empty cells stay empty strings, as in the CSV
    spark.createDataFrame(data, schema).createOrReplaceTempView("wide_patients")
    yield spark, path
    spark.stop()


@pytest.mark.parametrize("which", [0, 1, 2], ids=["seed-trial", "example-trial", "infant-trial"])
def test_spark_matches_duckdb(spark_table, which):
    spark, path = spark_table
    trial = trials()[which]
    sql = trial_to_sql(trial, dialect="spark", schema="wide", table="wide_patients", as_of=AS_OF,
                       registry=default_registry(), header=HEADER)
    got = {r[0]: (r[1], *r[3:]) for r in (tuple(row) for row in spark.sql(sql).collect())}
    expected = duckdb_results(trial, path)
    assert len(got) == len(expected) == 400
    differing = {pid: (got[pid], expected[pid]) for pid in expected if got[pid] != expected[pid]}
    assert not differing


def test_spark_omop_matches_duckdb(spark_table):
    """The omop-schema SQL on Spark, over the Eunomia sample as the DuckDB views present it."""
    import duckdb
    from pyspark.sql.types import (DateType, DoubleType, IntegerType, LongType, StringType, StructField,
                                   StructType, TimestampType)

    from eligibility.engines.long_views import TABLES, register_long_views

    spark, _path = spark_table
    kinds = {"VARCHAR": StringType(), "BIGINT": LongType(), "INTEGER": IntegerType(), "DOUBLE": DoubleType(),
             "DATE": DateType(), "TIMESTAMP": TimestampType()}
    duck = duckdb.connect()
    register_long_views(duck, str(SHARED / "data/omop_eunomia"))
    for table, columns in TABLES.items():
        rows = duck.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        schema = StructType([StructField(c, kinds[t]) for c, t in columns.items()])
        spark.createDataFrame(rows, schema).createOrReplaceTempView(table)
    as_of = date(2019, 6, 1)
    for trial in trials():
        expected = {r[0]: (r[1], *r[3:]) for r in duck.execute(
            trial_to_sql(trial, dialect="duckdb", schema="omop", as_of=as_of)).fetchall()}
        got = {r[0]: (r[1], *r[3:]) for r in (tuple(x) for x in spark.sql(
            trial_to_sql(trial, dialect="spark", schema="omop", as_of=as_of)).collect())}
        assert len(expected) == 28 and got == expected
