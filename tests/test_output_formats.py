"""Results as Parquet and as outcomes only (issues 10, 11), from both engines, against the CSV they must equal.

- Parquet: each engine's Parquet file read back equals its own CSV (same columns,
  same rows, same order, every column a string column), on the demo patients and
  on a few thousand generated ones (benchmarks/gen_patients.py).
- `--columns outcomes`: the two engines write the same bytes; the verdicts and
  outcomes are the hand-derived ones of tests/cases/demo_ucmsc_expected.csv and
  equal the default output's columns with the reasons column left out.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eligibility.cli import main
from eligibility.engines.arrow_output import ParquetRows, write_results

ROOT = Path(__file__).resolve().parent.parent
CTGOV = ROOT / "trials" / "ucmsc_t2dm.ctgov.json"
SEED = ROOT / "tests" / "cases" / "seed_trial.json"
DEMO = ROOT / "patients" / "demo_ucmsc.csv"
EXPECTED = ROOT / "tests" / "cases" / "demo_ucmsc_expected.csv"
IDS = ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]
ENGINES = ["python", "duckdb"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def screen(trial: Path, data: Path, out: Path, engine: str, *extra) -> str:
    result = run("screen", trial, data, "-o", out, "--as-of", "2026-01-01", "--engine", engine, *extra)
    assert result.exit_code == 0, result.output
    # the engine asked for is the one that ran (the DuckDB engine may hand a run to Python and say so)
    assert f"({engine} engine" in result.stderr, result.stderr
    return result.stderr


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def parquet_rows(path: Path) -> list[list[str]]:
    table = pq.read_table(path)
    return [table.column_names, *([str(v) for v in row] for row in zip(*table.to_pydict().values()))]


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "patients_3000.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_patients.py"), "3000", str(path)], check=True)
    return path


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("data", ["demo", "generated"])
def test_parquet_reads_back_equal_to_the_csv(tmp_path, engine, data, generated):
    source = DEMO if data == "demo" else generated
    screen(CTGOV, source, tmp_path / "r.csv", engine)
    screen(CTGOV, source, tmp_path / "r.parquet", engine)
    assert (tmp_path / "r.parquet").read_bytes()[:4] == b"PAR1"
    from_csv = csv_rows(tmp_path / "r.csv")
    assert len(from_csv) == (58 if data == "demo" else 3001)    # header + one row per input row
    assert parquet_rows(tmp_path / "r.parquet") == from_csv
    schema = pq.read_schema(tmp_path / "r.parquet")
    assert schema.names == ["patient_id", "verdict", "reasons", *IDS]
    assert all(t == pa.string() for t in schema.types)


@pytest.mark.parametrize("columns", ["reasons", "outcomes"])
def test_both_engines_parquet_files_hold_the_same_types(tmp_path, columns):
    schemas = []
    for engine in ENGINES:
        screen(CTGOV, DEMO, tmp_path / f"{engine}.parquet", engine, "--columns", columns)
        schemas.append(pq.read_schema(tmp_path / f"{engine}.parquet").remove_metadata())
    assert schemas[0].equals(schemas[1])
    assert schemas[0].names == ["patient_id", "verdict", *(["reasons"] if columns == "reasons" else []), *IDS]


@pytest.mark.parametrize("data", ["demo", "generated"])
def test_outcomes_only_output_is_the_same_bytes_from_both_engines(tmp_path, data, generated):
    source = DEMO if data == "demo" else generated
    for engine in ENGINES:
        screen(CTGOV, source, tmp_path / f"{engine}.csv", engine, "--columns", "outcomes")
        screen(CTGOV, source, tmp_path / f"{engine}-full.csv", engine)
    outcomes = (tmp_path / "python.csv").read_bytes()
    assert outcomes == (tmp_path / "duckdb.csv").read_bytes()
    assert outcomes.split(b"\n", 1)[0] == b"patient_id,verdict," + ",".join(IDS).encode()
    # the default output with its reasons column taken out
    for engine in ENGINES:
        full = [row[:2] + row[3:] for row in csv_rows(tmp_path / f"{engine}-full.csv")]
        assert csv_rows(tmp_path / f"{engine}.csv") == full


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_outcomes_only_verdicts_are_the_hand_derived_ones(tmp_path, engine, suffix):
    out = tmp_path / f"r.{suffix}"
    screen(SEED, DEMO, out, engine, "--columns", "outcomes")
    rows = csv_rows(out) if suffix == "csv" else parquet_rows(out)
    with EXPECTED.open(encoding="utf-8", newline="") as handle:
        expected = [[r["patient_id"], r["verdict"], *(r[i] for i in IDS)] for r in csv.DictReader(handle)]
    assert rows[0] == ["patient_id", "verdict", *IDS]
    assert rows[1:] == expected


def test_format_follows_the_output_extension_unless_given(tmp_path):
    screen(SEED, DEMO, tmp_path / "a.parquet", "python")
    assert (tmp_path / "a.parquet").read_bytes()[:4] == b"PAR1"
    screen(SEED, DEMO, tmp_path / "b.jsonl", "python")
    assert (tmp_path / "b.jsonl").read_text("utf-8").startswith('{"patient_id": "D01"')
    screen(SEED, DEMO, tmp_path / "c.parquet", "python", "--format", "csv")
    assert (tmp_path / "c.parquet").read_text("utf-8").startswith("patient_id,verdict,reasons,")
    screen(SEED, DEMO, tmp_path / "d.out", "python", "--format", "parquet")
    assert parquet_rows(tmp_path / "d.out") == parquet_rows(tmp_path / "a.parquet")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_without_patients_gives_a_parquet_file_with_the_columns(tmp_path, engine):
    empty = tmp_path / "empty.csv"
    empty.write_text(DEMO.read_text("utf-8").splitlines()[0] + "\n", encoding="utf-8")
    screen(SEED, empty, tmp_path / "r.parquet", engine)
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == 0 and table.column_names == ["patient_id", "verdict", "reasons", *IDS]


USAGE = [
    (["--format", "parquet"], "Error: Parquet output needs a file (-o results.parquet), not stdout"),
    (["--format", "jsonl", "--columns", "outcomes"],
     "Error: --columns outcomes applies to CSV and Parquet output; a JSONL record always carries its explanations"),
]


@pytest.mark.parametrize("extra,message", USAGE, ids=["parquet-stdout", "jsonl-outcomes"])
def test_output_options_that_do_not_go_together_are_usage_errors(extra, message):
    result = run("screen", SEED, DEMO, *extra)
    assert result.exit_code == 2
    assert result.stdout == "" and result.stderr.strip().splitlines()[-1] == message


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unwritable_parquet_file_is_one_line(tmp_path, engine):
    target = tmp_path / "no such folder" / "r.parquet"
    result = run("screen", SEED, DEMO, "-o", target, "--engine", engine)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"{target}: error E-OUTPUT: cannot write results (No such file or directory)"]


def test_python_rows_are_written_a_batch_at_a_time(tmp_path):
    """2,500 rows in batches of 1,000 give three row groups (1,000 + 1,000 + 500) and every row in order."""
    path = tmp_path / "rows.parquet"
    with ParquetRows(str(path), ["patient_id", "verdict"], rows_per_batch=1000) as rows:
        for n in range(2500):
            rows.write([f"P{n}", "eligible" if n % 2 else "needs_review"])
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    table = pq.read_table(path)
    assert table.column("patient_id").to_pylist() == [f"P{n}" for n in range(2500)]
    assert table.column("verdict").to_pylist()[:3] == ["needs_review", "eligible", "needs_review"]


def test_duckdb_batches_keep_input_order_in_parquet(tmp_path):
    out = tmp_path / "out.parquet"
    n = 300_000   # more than two Arrow batches
    select = (f"SELECT CAST(i AS VARCHAR) AS patient_id, CASE WHEN i % 3 = 0 THEN 'eligible' ELSE 'ineligible' END "
              f"AS verdict, 'pass' AS \"I1\" FROM range({n}) AS r(i)")
    tally = write_results(duckdb.connect(config={"preserve_insertion_order": True}), select, str(out), ["I1"],
                          fmt="parquet")
    assert pq.read_table(out, columns=["patient_id"]).column(0).to_pylist() == [str(i) for i in range(n)]
    assert tally.verdicts == {"eligible": 100_000, "ineligible": 200_000} and tally.outcomes["I1"] == {"pass": n}
