"""How fast the public API evaluates one patient at a time: `eligibility.evaluate(trial, dict, as_of=...)`.

    .venv/bin/python benchmarks/bench_api.py [--patients 50000] [--repeat 3]

What a screening tool serving requests does: one call per patient, the
patient a plain dict read like a wide-CSV row (strings with units, numbers,
lists), the trial compiled once (seed trial, trials/ucmsc_t2dm.txt), warm
(the first calls, which build the evaluation plan and the column rules, are
not timed).  Two shapes of dict:
- the DESIGN §10 example's: id, age, BMI and HbA1c with its unit
  (`{"patient_id": "P1", "age": 54, "BMI": 27.5, "hba1c": "58 mmol/mol"}`),
  values drawn at random (seeded);
- a full row of the demo CSV: 18 columns, every value the trial reads
  (numbers, dates, medication and condition lists, reviewer decisions),
  its 57 rows cycled with fresh ids.
Rows: evaluate (verdict and outcomes; reasons and explanations are worded
when read); + every outcome read; + full explanations (`r.to_dict()`, what
`--format jsonl` writes); evaluate of a `Patient` already read (the
evaluation alone); screen over the list of dicts (one call for all).
Prints a markdown table (best of --repeat runs).  Target: evaluate ≥ 20,000 patients/s.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eligibility  # noqa: E402

AS_OF = dt.date(2026, 1, 1)
TARGET = 20_000


def patients(count: int) -> list[dict[str, str]]:
    with (ROOT / "patients" / "demo_ucmsc.csv").open(newline="", encoding="utf-8") as handle:
        base = [{k: v for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]
    return [{**row, "patient_id": f"P{n}"} for n, row in enumerate(itertools.islice(itertools.cycle(base), count))]


def small_dicts(count: int) -> list[dict[str, object]]:
    rng = random.Random(15)
    return [{"patient_id": f"S{n}", "age": rng.randint(18, 80), "BMI": round(rng.uniform(18, 45), 1),
             "hba1c": f"{rng.randint(40, 110)} mmol/mol"} for n in range(count)]


def best(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trial = eligibility.compile_trial(ROOT / "trials" / "ucmsc_t2dm.txt")
    dicts = patients(args.patients)
    small = small_dicts(args.patients)
    evaluate = eligibility.evaluate
    for row in dicts[:100] + small[:100]:   # warm: the plan and the column rules are built on the first calls
        evaluate(trial, row, as_of=AS_OF)
    people = [evaluate(trial, row, as_of=AS_OF)._patient for row in dicts]
    few = dicts[: max(1, len(dicts) // 5)]

    rows = [
        ("evaluate(trial, dict), §10-shaped dict (4 values)", len(small),
         best(args.repeat, lambda: [evaluate(trial, row, as_of=AS_OF) for row in small])),
        ("evaluate(trial, dict), full demo row (18 columns)", len(dicts),
         best(args.repeat, lambda: [evaluate(trial, row, as_of=AS_OF) for row in dicts])),
        ("full row + every outcome read", len(dicts),
         best(args.repeat, lambda: [[c.outcome for c in evaluate(trial, row, as_of=AS_OF).outcomes.values()]
                                    for row in dicts])),
        ("full row + full explanations (to_dict)", len(few),
         best(args.repeat, lambda: [evaluate(trial, row, as_of=AS_OF).to_dict() for row in few])),
        ("evaluate(trial, Patient) of the full rows (no reading)", len(people),
         best(args.repeat, lambda: [evaluate(trial, person, as_of=AS_OF) for person in people])),
        ("screen(trial, list of full-row dicts)", len(dicts),
         best(args.repeat, lambda: list(eligibility.screen(trial, dicts, as_of=AS_OF)))),
    ]
    print(f"Seed trial ({len(trial.criteria)} criteria); warm; best of {args.repeat}\n")
    print("| path | patients | seconds | patients/s |")
    print("|---|---:|---:|---:|")
    for label, count, seconds in rows:
        print(f"| {label} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} |")
    for shape, (_label, count, seconds) in zip(("§10-shaped dict", "full demo row"), rows):
        rate = count / seconds
        print(f"\nTarget evaluate ≥ {TARGET:,} patients/s, {shape}: {'met' if rate >= TARGET else 'NOT met'} "
              f"({rate:,.0f}).", end="")
    print()


if __name__ == "__main__":
    main()
