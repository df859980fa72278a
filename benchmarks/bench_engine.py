"""Columnar engine benchmark, one run: (a) `eligibility screen` end to end against (b) a hand-written DuckDB query.

(a1) `--columns outcomes` (id, verdict, one column per criterion) and (a2) the default output (with the
reasons column), each to CSV and to Parquet; (b) the same outcomes computed by a hand-written query over
the same file and written to CSV in the same layout.  Every command runs as its own process (start-up
included on both sides) and is timed by wall clock, CPU (user + system) and peak RSS; `uptime`'s load is
printed with each size.  Also (c) the Python engine on a sample, and the HTML report of (a2)'s results.

Usage: python benchmarks/bench_engine.py [--patients 1000000] [--big]   (--big adds a 10,000,000-patient run)
Prints markdown tables.  Not a test: timings depend on the machine.
"""
from __future__ import annotations

import argparse
import os
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
CRITERIA = ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]

# (b): what a data engineer would write by hand for this file's layout: read the same CSV (every
# column as text), convert the two unit spellings the file uses, compute each criterion's outcome
# with the trial's bounds and the verdict, and write patient_id, verdict and the outcomes to a CSV
# (COPY, in input order) in (a1)'s layout: the same columns, every field quoted, the header plain.
# It runs as its own Python process (python, `import duckdb`, the same memory limit as (a)), like (a).
# It does not check cells (plausible ranges, odd spellings, missing tokens): that is the extra work (a) does.
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
SELECT id AS patient_id,
  CASE WHEN 'fail' IN (age, i2, i3, i4, i5, i6, i7, e2) THEN 'ineligible'
       WHEN age = 'pass' AND i2 = 'pass' AND i3 = 'pass' AND i4 = 'pass' AND i5 = 'pass' AND i6 = 'pass'
            AND i7 = 'pass' AND e2 = 'pass' THEN 'eligible'
       ELSE 'needs_review' END AS verdict,
  age, 'pass' AS sex, i2 AS \"I2\", i3 AS \"I3\", i4 AS \"I4\", i5 AS \"I5\", i6 AS \"I6\", i7 AS \"I7\", e2 AS \"E2\"
FROM o) TO '{out}' (HEADER, FORCE_QUOTE *)
"""

HAND_SCRIPT = """
import sys, duckdb
con = duckdb.connect(config={"memory_limit": "1GB"})
con.execute(sys.argv[1])
"""


def measured(argv: list[str]) -> tuple[float, float, float]:
    """Run a command: (wall seconds, CPU seconds user + system, peak RSS MB) of that process alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(argv)}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def screen(path: Path, out: Path, *extra: str) -> tuple[float, float, float]:
    return measured([str(ROOT / ".venv/bin/eligibility"), "screen", str(TRIAL), str(path), "-o", str(out),
                     "--as-of", AS_OF, "--engine", "duckdb", *extra])


def hand(path: Path, out: Path) -> tuple[float, float, float]:
    names = ", ".join(f"'c{i}'" for i in range(11))
    query = HAND.format(path=path, out=out, as_of=AS_OF, mmdd=AS_OF[5:7] + AS_OF[8:10], names=names)
    return measured([sys.executable, "-c", HAND_SCRIPT, query])


def run_report(results: Path, out: Path) -> tuple[float, int]:
    """`eligibility report` over a results file: seconds and the page's size in bytes."""
    start = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/eligibility"), "report", str(results), "--trial", str(TRIAL), "-o", str(out)],
                   check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, out.stat().st_size


def agreement(a: Path, b: Path) -> float:
    """Share of (patient, verdict or criterion) values on which (a1) and (b) agree, rows matched by position."""
    import duckdb

    con = duckdb.connect()
    ids = ["patient_id", "verdict", *CRITERIA]
    same = " + ".join(f'(x."{i}" = y."{i}")::INT' for i in ids)
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


def load() -> str:
    return os.popen("uptime").read().strip().split("load average:")[-1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--big", action="store_true", help="also screen 10,000,000 patients (slow)")
    parser.add_argument("--sample", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command (the best is shown)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="elig-bench-"))
    # a fresh cache directory: the first start-up below is a cold one (no cached query or conversions)
    os.environ["ELIGIBILITY_CACHE_DIR"] = str(work / "cache")
    sizes = [args.patients] + ([10_000_000] if args.big else [])
    # start-up: the same command on 10 patients, run twice (the second run finds the query cache warm)
    tiny = work / "patients_10.csv"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/gen_patients.py"), "10", str(tiny)], check=True)
    startup = [screen(tiny, work / "a.csv")[0] for _ in range(2)] + [hand(tiny, work / "b.csv")[0]]
    print(f"start-up (10 patients): (a) first run (empty cache) {startup[0]:.2f} s, repeated run {startup[1]:.2f} s; "
          f"(b) {startup[2]:.2f} s\n")
    rows = []
    for n in sizes:
        data = work / f"patients_{n}.csv"
        subprocess.run([sys.executable, str(ROOT / "benchmarks/gen_patients.py"), str(n), str(data)], check=True)
        before = load()
        runs = {
            "(b) hand-written, CSV": lambda: hand(data, work / "b.csv"),
            "(a1) --columns outcomes, CSV": lambda: screen(data, work / "a1.csv", "--columns", "outcomes"),
            "(a2) default (reasons), CSV": lambda: screen(data, work / "a2.csv"),
            "(a1) --columns outcomes, Parquet": lambda: screen(data, work / "a1.parquet", "--columns", "outcomes"),
            "(a2) default (reasons), Parquet": lambda: screen(data, work / "a2.parquet"),
        }
        best = {name: min((run() for _ in range(args.repeat)), key=lambda r: r[0]) for name, run in runs.items()}
        same = agreement(work / "a1.csv", work / "b.csv")
        b_wall, b_cpu = best["(b) hand-written, CSV"][:2]
        print(f"### {n:,} patients (load before {before}, after {load()}; (a1) = (b) on {same:.2%} of values)\n")
        print("| run | wall s | / (b) | CPU s | / (b) | peak RSS MB | output MB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        files = {"(b)": "b.csv", "(a1) --columns outcomes, CSV": "a1.csv", "(a2) default (reasons), CSV": "a2.csv",
                 "(a1) --columns outcomes, Parquet": "a1.parquet", "(a2) default (reasons), Parquet": "a2.parquet"}
        for name, (wall, cpu, rss) in best.items():
            size = (work / files.get(name, "b.csv")).stat().st_size / 1e6
            print(f"| {name} | {wall:.2f} | {wall / b_wall:.2f} | {cpu:.2f} | {cpu / b_cpu:.2f} | {rss:,.0f} | {size:,.0f} |")
        if n == sizes[0]:
            rate = run_python(data, args.sample)
            report_s, report_bytes = run_report(work / "a2.csv", work / "report.html")
            print(f"\n(c) Python engine: {rate:,.0f} patients/s on a {args.sample:,}-row sample; "
                  f"report of (a2): {report_bytes / 1e6:.1f} MB in {report_s:.1f} s")
        print()
        rows.append(n)
        data.unlink()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
