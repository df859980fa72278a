"""How fast the Python evaluator screens patients on the seed trial, beside a naive per-row pint evaluation.

    .venv/bin/python benchmarks/bench_evaluate.py [--patients 100000] [--naive 3000]

Patients: the demo CSV's 57 rows (every outcome, malformed cells, mmol/mol and
pmol/L values) cycled to the requested count.  Rows:
- plan, outcomes only: the compiled closures, no text;
- plan, CSV rows: outcomes + the `reasons` text of every non-pass criterion
  (what `screen` writes per patient);
- plan, full explanations: every criterion explained (what `--format jsonl` writes);
- naive per-row pint: walk the IR tree for every patient and convert each
  value with a pint Quantity (`Quantity(value, unit).to(canonical)`), the way
  a straightforward evaluator would;
- wide CSV reading: parsing the same patients from a CSV file (reported
  separately: it is I/O and parsing, not evaluation);
- screen() end to end: reading + evaluation + writing results.csv.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eligibility.evaluate.plan import Plan  # noqa: E402
from eligibility.core.ir import All, AnyOf, Compare, Has, Manual, Not, Range, Trial  # noqa: E402
from eligibility.core.patient import Measurement  # noqa: E402
from eligibility.readers import ReadStats  # noqa: E402
from eligibility.readers.wide_csv import read_wide_csv  # noqa: E402
from eligibility.registry.concepts import default_registry  # noqa: E402
from eligibility.registry.units import pint_expression, ureg  # noqa: E402

AS_OF = date(2026, 1, 1)
DEMO = ROOT / "patients" / "demo_ucmsc.csv"


def seed_trial() -> tuple[Trial, str]:
    try:
        from eligibility.compile.trials import compile_trial_file

        trial, _ = compile_trial_file(ROOT / "trials" / "ucmsc_t2dm.txt")
        return trial, "trials/ucmsc_t2dm.txt (compiled)"
    except Exception as exc:   # the compiler may not be installed yet: use the hand-built fixture
        trial = Trial.from_json((ROOT / "tests" / "cases" / "seed_trial.json").read_text("utf-8"))
        return trial, f"tests/cases/seed_trial.json (compiler unavailable: {type(exc).__name__})"


# -- the naive evaluator: tree walk + pint per row ------------------------------------------
def naive_value(measurement, concept_id: str, registry) -> float | None:
    """Convert the value as given with a fresh pint Quantity (what the plan avoids)."""
    if not isinstance(measurement, Measurement):
        return None
    concept = registry.concepts[concept_id]
    number = float(measurement.raw.split(" ")[0]) if measurement.raw[:1].isdigit() else measurement.value
    unit = measurement.unit
    if unit is None:
        return number
    for affine in concept.affine:   # pint cannot do the NGSP/IFCC equation either
        if affine.unit == unit.lower():
            return affine.scale * number + affine.offset
    reg = ureg()
    quantity = reg.Quantity(number, reg.parse_expression(pint_expression(unit, registry)).units)
    target = reg.parse_expression(registry.canonical_units[concept.canonical_unit]).units
    if concept.molar_mass:
        return quantity.to(target, "chemistry", mw=concept.molar_mass * reg("g/mol")).magnitude
    return quantity.to(target).magnitude


def naive(node, patient, registry) -> int | None:
    """1 / 0 / None (unknown) by walking the tree."""
    if isinstance(node, All):
        vals = [naive(c, patient, registry) for c in node.children]
        out = 0 if 0 in vals else (None if None in vals else 1)
    elif isinstance(node, AnyOf):
        vals = [naive(c, patient, registry) for c in node.children]
        out = 1 if 1 in vals else (None if None in vals else 0)
    elif isinstance(node, Not):
        v = naive(node.child, patient, registry)
        out = None if v is None else 1 - v
    elif isinstance(node, (Compare, Range)):
        x = naive_value(patient.measurements.get(node.concept), node.concept, registry)
        if x is None or node.canonical_unit == "{ULN}":
            out = None
        elif isinstance(node, Compare):
            b = node.canonical_value
            out = int({"<": x < b, "<=": x <= b, ">": x > b, ">=": x >= b, "==": x == b, "!=": x != b}[node.op])
        else:
            ok = (node.canonical_low is None or x >= node.canonical_low) and (node.canonical_high is None or x <= node.canonical_high)
            out = int(ok)
    elif isinstance(node, Has):
        if node.category == "medication":
            meds = patient.medications
            out = None if meds is None else int(any(registry.drug_class_contains(node.code, m, m) for m in meds)) \
                if node.code in registry.categories else None
        elif node.category == "condition":
            out = None if patient.conditions is None else int(node.code in patient.conditions)
        else:
            s = patient.statuses.get(node.code)
            out = s if isinstance(s, bool) else None
    elif isinstance(node, Manual):
        out = None
    else:
        out = None
    if out != 0 and node.qualifiers:
        out = None
    return out


def timed(label: str, count: int, fn) -> tuple[str, int, float]:
    started = time.perf_counter()
    fn()
    return label, count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=3_000, help="patients for the (slow) naive pint evaluator")
    args = parser.parse_args()
    registry = default_registry()
    trial, trial_source = seed_trial()
    base = list(read_wide_csv([DEMO], as_of=AS_OF, registry=registry, stats=ReadStats()))
    patients = list(itertools.islice(itertools.cycle(base), args.patients))
    plan = Plan(trial, registry, AS_OF)
    plan.evaluate(base[0])   # warm caches (constant texts)
    rows = []

    rows.append(timed("plan: outcomes only", len(patients), lambda: [plan.codes(p) for p in patients]))
    rows.append(timed("plan: CSV rows (outcomes + reasons)", len(patients),
                      lambda: ["; ".join(plan.evaluate(p).reasons) for p in patients]))
    few = patients[: max(1, args.patients // 5)]
    rows.append(timed("plan: full explanations (jsonl)", len(few), lambda: [plan.evaluate(p, detail=True) for p in few]))
    sample = patients[: args.naive]
    rows.append(timed("naive: tree walk + pint per row", len(sample),
                      lambda: [[naive(c.tree, p, registry) for c in trial.criteria] for p in sample]))

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "patients.csv"
        with DEMO.open(encoding="utf-8", newline="") as src, big.open("w", encoding="utf-8", newline="") as dst:
            reader = csv.reader(src)
            header = next(reader)
            data = list(reader)
            writer = csv.writer(dst)
            writer.writerow(header)
            for n, row in enumerate(itertools.islice(itertools.cycle(data), args.patients)):
                writer.writerow([f"P{n}", *row[1:]])
        rows.append(timed("wide CSV reading (separate cost)", args.patients,
                          lambda: sum(1 for _ in read_wide_csv([big], as_of=AS_OF, registry=registry, stats=ReadStats()))))
        from eligibility.screening import screen

        trial_file = Path(tmp) / "trial.json"
        trial_file.write_text(trial.to_json(), "utf-8")
        rows.append(timed("screen() end to end, python engine", args.patients,
                          lambda: screen(trial_file, [str(big)], output=str(Path(tmp) / "out.csv"),
                                         engine="python", as_of=AS_OF)))

    print(f"Seed trial: {trial_source}; {len(trial.criteria)} criteria; patients cycled from {DEMO.name} ({len(base)} rows)\n")
    print("| path | patients | seconds | patients/s |")
    print("|---|---:|---:|---:|")
    for label, count, seconds in rows:
        print(f"| {label} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} |")
    plan_rate = rows[1][1] / rows[1][2]
    naive_rate = rows[3][1] / rows[3][2]
    print(f"\nCSV-row evaluation is {plan_rate / naive_rate:,.0f}× the naive per-row pint evaluator "
          f"(target ≥ 20,000 patients/s: {'met' if plan_rate >= 20_000 else 'NOT met'}).")


if __name__ == "__main__":
    main()
