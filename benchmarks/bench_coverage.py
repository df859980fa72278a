"""How much of whole real trials compiles: the share of criteria that are computable (compiled or partial).

Runs on the 20 real ClinicalTrials.gov trials of ../shared/corpus/real_trials_sample.csv
and on our own real-phrased trials under tests/cases/trials_real/ (if present), and prints
one markdown table.  `manual` criteria are those a coordinator must still read whole.

    python benchmarks/bench_coverage.py [--by-trial]
"""
from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eligibility.compile.trials import compile_trial_text  # noqa: E402
from eligibility.core.errors import EligibilityError  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "corpus" / "real_trials_sample.csv"
OWN = ROOT / "tests" / "cases" / "trials_real"


def _trials() -> dict[str, list[tuple[str, str]]]:
    sets: dict[str, list[tuple[str, str]]] = {}
    if SAMPLE.exists():
        csv.field_size_limit(10_000_000)
        with SAMPLE.open(newline="", encoding="utf-8") as handle:
            sets["20 real CT.gov trials (shared corpus)"] = [
                (row["#nct_id"], row["eligibility_criteria"]) for row in csv.DictReader(handle)]
    own = sorted(OWN.glob("*.txt")) if OWN.exists() else []
    if own:
        sets[f"{len(own)} real-phrased trials of ours (tests/cases/trials_real)"] = [
            (p.stem, p.read_text("utf-8")) for p in own]
    return sets


def coverage(trials: list[tuple[str, str]], by_trial: bool = False) -> Counter:
    total: Counter = Counter()
    for name, text in trials:
        try:
            trial, _problems = compile_trial_text(text, source_name=name)
        except EligibilityError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            continue
        counts = Counter(c.status for c in trial.criteria if c.id not in ("age", "sex"))
        total += counts
        if by_trial:
            n = sum(counts.values())
            print(f"| {name} | {n} | {(counts['compiled'] + counts['partial']) / max(n, 1):.0%} |")
    return total


def main() -> None:
    by_trial = "--by-trial" in sys.argv
    print("| trials | criteria | compiled | partial | manual | computable |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, trials in _trials().items():
        c = coverage(trials, by_trial)
        n = sum(c.values())
        share = (c["compiled"] + c["partial"]) / max(n, 1)
        print(f"| {label} | {n} | {c['compiled']} | {c['partial']} | {c['manual']} | {share:.1%} |")


if __name__ == "__main__":
    main()
