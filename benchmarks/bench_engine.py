"""Columnar engine benchmark: (a) `eligibility screen` end to end, (b) a hand-written DuckDB query, (c) Python engine.

Also (a) writing Parquet (`-o results.parquet`) and the size and time of the HTML report of (a)'s results
(`eligibility report`, the patient table capped at 5,000 rows).

Usage: python benchmarks/bench_engine.py [--patients 1000000] [--big]   (--big adds a 10,000,000-patient run)
Prints a markdown table.  Not a test: timings depend on the machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = Path(__file__).resolve().parent.parent / "trials" / "ucmsc_t2dm.txt"
AS_OF = "2026-01-01"

# (b): what a data engineer would write by hand for this file's layout: read the same CSV (every
# column as text), convert the two unit spellings the file uses, compute each criterion's outcome
# with the trial's bounds and the verdict, and write patient_id, verdict and the outcomes to a CSV
# (COPY, in input order).  It does not check cells (plausible ranges, odd spellings) and writes no
# reasons column: that is the extra work (a) does.
HAND = """
COPY (
WITH p AS (
  SELECT c0 AS id, TRY_CAST(c1 AS DATE) AS born, TRY_CAST(c3 AS DOUBLE) AS dur,
         TRY_CAST(c4 AS DOUBLE) AS bmi, TRY_CAST(c5 AS DOUBLE) AS ins,
         CASE WHEN c6 LIKE '% mmol/mol' THEN 0.09148 * TRY_CAST(split_part(c6, ' ', 1) AS DOUBLE) + 2.152
              ELSE TRY_CAST(c6 AS DOUBLE) END AS a1c,
         CASE WHEN c7 LIKE '% pmol/L' THEN 0.0030203 * TRY_CAST(split_part(c7, ' ', 1) AS DOUBLE)
              ELSE TRY_CAST(c7 AS DOUBLE) END AS cpep,
         NULLIF(lower(c8), '') AS meds, NULLIF(lower(c9), '') AS conds, lower(c10) AS preg
  FROM read_csv('{path}', header=true, all_varchar=true, names=[{names}])),
o AS (
SELECT id,
  CASE WHEN date_diff('year', born, DATE '{as_of}') - (strftime(born, '%m%d') > '{mmdd}')::INT BETWEEN 20 AND 65 THEN 'pass' WHEN born IS NULL THEN 'unknown' ELSE 'fail' END AS age,
  CASE WHEN dur <= 20 THEN 'pass' WHEN dur > 20 THEN 'fail' ELSE 'unknown' END AS i2,
  CASE WHEN bmi BETWEEN 24 AND 40 THEN 'pass' WHEN bmi IS NULL THEN 'unknown' ELSE 'fail' END AS i3,
  CASE WHEN ins NOT BETWEEN 0.5 AND 1.0 OR regexp_matches(meds, 'gliptin|glutide|gliflozin') THEN 'fail' ELSE 'review' END AS i4,
  CASE WHEN a1c BETWEEN 7 AND 12 THEN 'pass' WHEN a1c IS NULL THEN 'unknown' ELSE 'fail' END AS i5,
  CASE WHEN cpep >= 1 - 1e-9 THEN 'pass' WHEN cpep IS NULL THEN 'unknown' ELSE 'fail' END AS i6,
  'review' AS i7,
  CASE WHEN regexp_matches(conds, 'drug abuse|f1[0-9]') OR preg = 'yes' THEN 'fail' ELSE 'review' END AS e2
FROM p)
SELECT id,
  CASE WHEN 'fail' IN (age, i2, i3, i4, i5, i6, i7, e2) THEN 'ineligible'
       WHEN age = 'pass' AND i2 = 'pass' AND i3 = 'pass' AND i4 = 'pass' AND i5 = 'pass' AND i6 = 'pass'
            AND i7 = 'pass' AND e2 = 'pass' THEN 'eligible'
       ELSE 'needs_review' END AS verdict,
  age, i2, i3, i4, i5, i6, i7, e2
FROM o) TO '{out}' (HEADER)
"""


def run_cli(path: Path, out: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/eligibility"), "screen", str(TRIAL), str(path), "-o", str(out),
                    "--as-of", AS_OF, "--engine", "duckdb"], check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def run_report(results: Path, out: Path) -> tuple[float, int]:
    """`eligibility report` over a results file: seconds and the page's size in bytes."""
    start = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/eligibility"), "report", str(results), "--trial", str(TRIAL), "-o", str(out)],
                   check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, out.stat().st_size


def run_hand(path: Path, out: Path) -> float:
    import duckdb

    con = duckdb.connect(config={"memory_limit": "1GB"})
    start = time.perf_counter()
    names = ", ".join(f"'c{i}'" for i in range(11))
    con.execute(HAND.format(path=path, out=out, as_of=AS_OF, mmdd=AS_OF[5:7] + AS_OF[8:10], names=names))
    return time.perf_counter() - start


def run_query(path: Path, out: Path, *, reasons: bool) -> float:
    """The generated query alone, in-process (no start-up): with or without the reasons column."""
    sys.path.insert(0, str(ROOT))
    from eligibility.engines.duckdb_engine import _connect, build_query
    from eligibility.registry.concepts import default_registry
    from eligibility.compile.trials import compile_trial_file

    trial, _ = compile_trial_file(TRIAL)
    sql = build_query(trial, [path], as_of=date.fromisoformat(AS_OF), registry=default_registry())
    ids = ", ".join(f'"{c.id}"' for c in trial.criteria)
    con = _connect()
    start = time.perf_counter()
    con.execute(f"COPY (SELECT patient_id, verdict, {'reasons, ' if reasons else ''}{ids} FROM ({sql})) "
                f"TO '{out}' (FORMAT csv, HEADER true)")
    return time.perf_counter() - start


def agreement(a: Path, b: Path) -> float:
    """Share of (patient, verdict or criterion) outcomes on which (a) and (b) agree: the baseline must compute the same thing."""
    import duckdb

    con = duckdb.connect()
    ids = ["verdict", "age", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]
    same = " + ".join(f'(x."{i}" = y."{i.lower()}")::INT' for i in ids)
    (total, agree), = con.execute(
        f"SELECT count(*) * {len(ids)}, sum({same}) FROM "
        f"(SELECT row_number() OVER () AS n, * FROM read_csv('{a}', all_varchar=true, parallel=false)) x JOIN "
        f"(SELECT row_number() OVER () AS n, * FROM read_csv('{b}', all_varchar=true, parallel=false)) y USING (n)").fetchall()
    return agree / total


def run_python(path: Path, sample: int) -> float:
    sys.path.insert(0, str(ROOT))
    from itertools import islice

    from eligibility.evaluate.plan import Plan
    from eligibility.readers import read_patients
    from eligibility.registry.concepts import default_registry
    from eligibility.compile.trials import compile_trial_file

    registry = default_registry()
    trial, _ = compile_trial_file(TRIAL)
    plan = Plan(trial, registry, date.fromisoformat(AS_OF))
    source = read_patients([path], input_format="wide", as_of=date.fromisoformat(AS_OF), registry=registry)
    start = time.perf_counter()
    n = sum(1 for p in islice(source.patients, sample) if plan.evaluate(p))
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--big", action="store_true", help="also screen 10,000,000 patients (slow)")
    parser.add_argument("--sample", type=int, default=50_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="elig-bench-"))
    # a fresh cache directory: the first start-up below is a cold one (no cached query or conversions)
    os.environ["ELIGIBILITY_CACHE_DIR"] = str(work / "cache")
    sizes = [args.patients] + ([10_000_000] if args.big else [])
    # start-up: the same command on 10 patients, run twice (the second run finds the query cache warm)
    tiny = work / "patients_10.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/gen_patients.py"), "10", str(tiny)], check=True)
    startup = [run_cli(tiny, work / "a.csv")[0] for _ in range(2)]
    print(f"start-up (10 patients): first run (empty cache) {startup[0]:.2f} s, repeated run {startup[1]:.2f} s\n")
    print("| patients | (a) eligibility screen (s) | (b) hand-written DuckDB (s) | (a)/(b) | peak RSS (a) MB "
          "| (c) Python patients/s | (a) = (b) verdicts and outcomes | query alone: with reasons / without (s) "
          "| (a) to Parquet (s) | report of (a): MB, s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        data = work / f"patients_{n}.csv"
        subprocess.run([sys.executable, str(ROOT / "benchmarks/gen_patients.py"), str(n), str(data)], check=True)
        a, rss = run_cli(data, work / "a.csv")
        b = run_hand(data, work / "b.csv")
        c = run_python(data, args.sample) if n == sizes[0] else float("nan")
        same = agreement(work / "a.csv", work / "b.csv")
        with_reasons = run_query(data, work / "q.csv", reasons=True)
        without = run_query(data, work / "q.csv", reasons=False)
        parquet, _ = run_cli(data, work / "a.parquet")
        report_s, report_bytes = run_report(work / "a.csv", work / "report.html")
        print(f"| {n:,} | {a:.1f} | {b:.1f} | {a / b:.2f} | {rss:,.0f} | {c:,.0f} | {same:.2%} "
              f"| {with_reasons:.1f} / {without:.1f} | {parquet:.1f} | {report_bytes / 1e6:.1f}, {report_s:.1f} |")
        data.unlink()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
