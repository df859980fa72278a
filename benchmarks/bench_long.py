"""Long-format screening speed: DuckDB engine vs Python reader + evaluator.

Generates a Synthea-style export (patients.csv + observations.csv with
10,000,000 observation rows by default, not sorted by patient, a third of them
codes the registry does not know), then screens it with a trial against
HbA1c, BMI, blood pressure, creatinine and age:

- python: eligibility.readers (Synthea reader, latest value in the lookback
  window per patient and concept) + eligibility.evaluate.plan;
- duckdb: the OMOP-shaped views of eligibility.engines.long_views (the CSVs
  are scanned in place, nothing is loaded first) and the engine's
  `trial_to_sql(..., schema="omop")` query (eligibility.sql.omop).

Each engine runs in its own subprocess so its peak memory (ru_maxrss) is its
own.  Prints a markdown table.  Not a test: timings depend on the machine.

    python benchmarks/bench_long.py [--rows 10000000] [--patients 50000] [--dir /tmp/bench_long]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "tests" / "cases" / "ehr" / "trial_long.json"
AS_OF = date(2022, 1, 1)

# (LOINC, description, unit, low, high): mapped concepts first, then codes the registry ignores
CODES = [
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 11.0),
    ("39156-5", "Body Mass Index", "kg/m2", 17.0, 45.0),
    ("8480-6", "Systolic Blood Pressure", "mm[Hg]", 95.0, 185.0),
    ("8462-4", "Diastolic Blood Pressure", "mm[Hg]", 55.0, 110.0),
    ("29463-7", "Body Weight", "kg", 45.0, 140.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 2.5),
    ("8302-2", "Body Height", "cm", 150.0, 195.0),
    ("8867-4", "Heart rate", "/min", 50.0, 110.0),
    ("9279-1", "Respiratory rate", "/min", 10.0, 22.0),
]


def generate(folder: Path, rows: int, patients: int) -> None:
    """Write the export with DuckDB (fast, seeded), unless it is already there with this size."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "generated.json"
    spec = {"rows": rows, "patients": patients, "codes": [c[0] for c in CODES], "version": 2}
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""COPY (
        SELECT printf('p%07d', i) AS Id, DATE '1940-01-01' + CAST(floor(random() * 25000) AS INTEGER) AS BIRTHDATE,
               CASE WHEN random() < 0.02 THEN DATE '2018-01-01' + CAST(floor(random() * 1800) AS INTEGER) END AS DEATHDATE,
               '999-00-0000' AS SSN, CASE WHEN random() < 0.5 THEN 'F' ELSE 'M' END AS GENDER
        FROM range({patients}) t(i)) TO '{folder / "patients.csv"}' (HEADER, DELIMITER ',')""")
    codes = ", ".join(f"('{c}', '{d}', '{u}', {lo}, {hi})" for c, d, u, lo, hi in CODES)
    # 2/3 of the rows carry the six mapped codes, 1/3 the three others
    con.execute(f"""COPY (
        WITH codes(code, description, unit, lo, hi) AS (VALUES {codes}),
        numbered AS (SELECT row_number() OVER () - 1 AS n, * FROM codes),
        obs AS (SELECT i, CAST(floor(random() * {patients}) AS BIGINT) AS p,
                       CAST(floor(random() * 9) AS BIGINT) AS k, random() AS r,
                       TIMESTAMP '2014-01-01 00:00:00' + to_seconds(CAST(floor(random() * 8 * 365 * 86400) AS BIGINT)) AS t
                FROM range({rows}) r(i))
        SELECT strftime(t, '%Y-%m-%dT%H:%M:%SZ') AS DATE, printf('p%07d', p) AS PATIENT,
               printf('e%d', i) AS ENCOUNTER, code AS CODE, description AS DESCRIPTION,
               CAST(round(lo + r * (hi - lo), 1) AS VARCHAR) AS VALUE, unit AS UNITS, 'numeric' AS TYPE
        FROM obs JOIN numbered ON numbered.n = obs.k) TO '{folder / "observations.csv"}' (HEADER, DELIMITER ',')""")
    # a few conditions and drugs per patient, so the condition, status and drug paths run too:
    # type 2 diabetes (SNOMED 44054006), type 1 (46635009), pregnancy episodes (72892002),
    # and drugs by description (synthetic codes 900001-900003: resolved by ingredient name)
    con.execute(f"""COPY (
        WITH c(code, description, share, months) AS (VALUES ('44054006', 'Diabetes mellitus type 2', 0.3, NULL),
             ('46635009', 'Diabetes mellitus type 1', 0.02, NULL), ('72892002', 'Normal pregnancy', 0.03, 9))
        SELECT strftime(s, '%Y-%m-%d') AS START,
               CASE WHEN months IS NOT NULL THEN strftime(s + to_months(CAST(months AS INTEGER)), '%Y-%m-%d') END AS STOP,
               printf('p%07d', i) AS PATIENT, 'e0' AS ENCOUNTER, code AS CODE, description AS DESCRIPTION
        FROM (SELECT i, c.*, random() AS r, DATE '2000-01-01' + CAST(floor(random() * 8000) AS INTEGER) AS s
              FROM range({patients}) t(i), c) WHERE r < share) TO '{folder / "conditions.csv"}' (HEADER, DELIMITER ',')""")
    con.execute(f"""COPY (
        WITH d(code, description, share) AS (VALUES
             ('900001', '24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet', 0.25),
             ('900002', '3 ML semaglutide 0.68 MG/ML Pen Injector', 0.05),
             ('900003', 'Naproxen sodium 220 MG Oral Tablet', 0.2))
        SELECT strftime(s, '%Y-%m-%dT%H:%M:%SZ') AS START,
               CASE WHEN r2 < 0.5 THEN strftime(s + INTERVAL 365 DAY, '%Y-%m-%dT%H:%M:%SZ') END AS STOP,
               printf('p%07d', i) AS PATIENT, 'x' AS PAYER, 'e0' AS ENCOUNTER, code AS CODE, description AS DESCRIPTION
        FROM (SELECT i, d.*, random() AS r, random() AS r2,
                     TIMESTAMP '2015-01-01 08:00:00' + to_days(CAST(floor(random() * 2900) AS INTEGER)) AS s
              FROM range({patients}) t(i), d) WHERE r < share) TO '{folder / "medications.csv"}' (HEADER, DELIMITER ',')""")
    stamp.write_text(json.dumps(spec))


def run_python(folder: Path) -> dict:
    from eligibility.evaluate.plan import compile_plan
    from eligibility.core.ir import Trial
    from eligibility.readers import read_patients
    from eligibility.registry.concepts import default_registry

    start = time.perf_counter()
    registry = default_registry()
    trial = Trial.from_json(TRIAL.read_text())
    plan = compile_plan(trial, registry, AS_OF)
    source = read_patients([folder], as_of=AS_OF, lookback_days=365, registry=registry)
    verdicts: dict[str, int] = {}
    rows = []
    for patient in source.patients:
        result = plan.evaluate(patient)
        verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
        rows.append((patient.id, result.verdict, *result.outcomes))
    return {"seconds": time.perf_counter() - start, "verdicts": verdicts, "digest": _digest(rows)}


def run_duckdb(folder: Path) -> dict:
    import duckdb

    from eligibility.engines.long_views import register_long_views
    from eligibility.core.ir import Trial
    from eligibility.sql.query import trial_to_sql

    start = time.perf_counter()
    trial = Trial.from_json(TRIAL.read_text())
    con = duckdb.connect()
    register_long_views(con, folder)
    sql = trial_to_sql(trial, schema="omop", as_of=AS_OF, lookback_days=365)
    ids = ", ".join(f'"{c.id}"' for c in trial.criteria)
    rows = con.execute(f"SELECT CAST(patient_id AS VARCHAR), verdict, {ids} FROM ({sql}) AS screened").fetchall()
    verdicts: dict[str, int] = {}
    for row in rows:
        verdicts[row[1]] = verdicts.get(row[1], 0) + 1
    return {"seconds": time.perf_counter() - start, "verdicts": verdicts, "digest": _digest(rows)}


def _digest(rows: list[tuple]) -> str:
    """Order-free fingerprint of every patient's verdict and criterion outcomes."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(",".join(map(str, r)) for r in rows)).encode()).hexdigest()[:16]


def child(engine: str, folder: Path) -> None:
    try:
        result = (run_python if engine == "python" else run_duckdb)(folder)
    except Exception as exc:            # report, do not hide: the table says what failed
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_long"))
    parser.add_argument("--engines", default="duckdb,python")
    parser.add_argument("--child", choices=["python", "duckdb"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dir)
        return 0
    t0 = time.perf_counter()
    generate(args.dir, args.rows, args.patients)
    gen = time.perf_counter() - t0
    size = (args.dir / "observations.csv").stat().st_size / 1e6
    print(f"{args.rows:,} observation rows, {args.patients:,} patients, observations.csv {size:,.0f} MB "
          f"(generated/checked in {gen:.1f} s); as-of {AS_OF}, lookback 365 days\n")
    print("| engine | time (s) | rows/s | peak memory (MB) | verdicts |")
    print("|---|---:|---:|---:|---|")
    verdicts = {}
    failed = False
    for engine in args.engines.split(","):
        out = subprocess.run([sys.executable, __file__, "--child", engine, "--dir", str(args.dir)],
                             capture_output=True, text=True, cwd=ROOT)
        try:
            result = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:120], "peak_mb": 0}
        if "error" in result:
            print(f"| {engine} | – | – | {result['peak_mb']:,.0f} | failed: {result['error']} |")
            failed = True
            continue
        verdicts[engine] = result["digest"]
        v = ", ".join(f"{k} {n:,}" for k, n in sorted(result["verdicts"].items()))
        print(f"| {engine} | {result['seconds']:.1f} | {args.rows / result['seconds']:,.0f} | "
              f"{result['peak_mb']:,.0f} | {v} |")
    if len(verdicts) == 2:
        same = verdicts["python"] == verdicts["duckdb"]
        print(f"\nper-patient verdicts and criterion outcomes {'agree' if same else 'DIFFER'} between the engines")
        failed = failed or not same
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
