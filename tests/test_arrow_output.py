"""DuckDB results streamed to CSV through Arrow: RFC 4180 text the csv module reads back, counts on the way."""
from __future__ import annotations

import csv

import duckdb
import pytest

from eligibility.engines.arrow_output import QueryFailed, write_csv

ROWS = [
    ("a,b", "eligible", "", "pass", "pass"),
    ('say "hi"', "ineligible", "I1 fail: x", "fail", "pass"),
    ("line\nbreak", "needs_review", "I2 review: Willing to consent", "pass", "review"),
    ("José²", "ineligible", "I1 fail: y; I2 unknown: z", "fail", "unknown"),
    ("", "needs_review", "I2 review: w", "pass", "review"),
]


def _select(rows) -> str:
    values = ", ".join("(" + ", ".join("'" + v.replace("'", "''") + "'" for v in row) + ")" for row in rows)
    return f'SELECT * FROM (VALUES {values}) AS t(patient_id, verdict, reasons, "I1", "I2")'


def test_rows_read_back_unchanged_in_order_with_counts(tmp_path):
    out = tmp_path / "out.csv"
    tally = write_csv(duckdb.connect(), _select(ROWS), str(out), ["I1", "I2"])
    with open(out, newline="", encoding="utf-8") as handle:
        back = list(csv.reader(handle))
    assert back[0] == ["patient_id", "verdict", "reasons", "I1", "I2"]
    assert [tuple(r) for r in back[1:]] == ROWS
    # counted by hand from ROWS
    assert tally.rows == 5
    assert tally.verdicts == {"eligible": 1, "ineligible": 2, "needs_review": 2}
    assert tally.outcomes["I1"] == {"pass": 3, "fail": 2}
    assert tally.outcomes["I2"] == {"pass": 2, "review": 2, "unknown": 1}


def test_same_bytes_as_the_python_engines_csv_writer(tmp_path):
    out = tmp_path / "out.csv"
    write_csv(duckdb.connect(), _select(ROWS), str(out), ["I1", "I2"])
    expected = tmp_path / "expected.csv"
    with open(expected, "w", encoding="utf-8", newline="") as handle:
        handle.write("patient_id,verdict,reasons,I1,I2\n")
        csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(ROWS)
    assert out.read_bytes() == expected.read_bytes()


def test_many_batches_keep_input_order(tmp_path):
    out = tmp_path / "out.csv"
    n = 300_000   # more than two batches of ROWS_PER_BATCH
    select = (f"SELECT CAST(i AS VARCHAR) AS patient_id, CASE WHEN i % 3 = 0 THEN 'eligible' ELSE 'ineligible' END "
              f"AS verdict, '' AS reasons, 'pass' AS \"I1\" FROM range({n}) AS r(i)")
    tally = write_csv(duckdb.connect(config={"preserve_insertion_order": True}), select, str(out), ["I1"])
    with open(out, newline="", encoding="utf-8") as handle:
        ids = [row["patient_id"] for row in csv.DictReader(handle)]
    assert ids == [str(i) for i in range(n)]
    assert tally.verdicts == {"eligible": 100_000, "ineligible": 200_000}


def test_a_failing_query_raises_query_failed(tmp_path):
    with pytest.raises(QueryFailed, match="Conversion Error|Could not convert"):
        write_csv(duckdb.connect(), "SELECT CAST('x' AS INTEGER) AS patient_id", str(tmp_path / "o.csv"), [])
