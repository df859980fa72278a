"""How much of whole real trials compiles: the share of criteria that are computable (compiled or partial).

Runs the coverage report (eligibility.compile.coverage_report, also
`eligibility compile PATHS --report`) on the 20 real ClinicalTrials.gov trials of
../shared/corpus/real_trials_sample.csv and on our own real-phrased trials under
tests/cases/trials_real/ (if present), and prints one markdown table.  `manual`
criteria are those a coordinator must still read whole; age/sex fields are not counted.

    python benchmarks/bench_coverage.py [--by-trial] [--jobs N]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eligibility.compile.coverage_report import CoverageReport, run_coverage  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "corpus" / "real_trials_sample.csv"
OWN = ROOT / "tests" / "cases" / "trials_real"


def _sets() -> dict[str, list[Path]]:
    sets = {"20 real CT.gov trials (shared corpus)": [SAMPLE]} if SAMPLE.exists() else {}
    own = sorted(OWN.glob("*.txt")) if OWN.exists() else []
    if own:
        sets[f"{len(own)} real-phrased trials of ours (tests/cases/trials_real)"] = own
    return sets


def _row(label: str, report: CoverageReport) -> str:
    c = report.summary()["criteria"]
    return (f"| {label} | {c['total']} | {c['compiled']['count']} | {c['partial']['count']} | "
            f"{c['manual']['count']} | {100 * c['computable']['share']:.1f}% |")


def main() -> None:
    by_trial = "--by-trial" in sys.argv
    jobs = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else None
    print("| trials | criteria | compiled | partial | manual | computable |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, paths in _sets().items():
        report = run_coverage(paths, jobs=jobs)
        for failure in report.failures:
            print(failure, file=sys.stderr)
        if by_trial:
            for t in report.read:
                n = t.criteria
                print(f"| {t.name} | {n} | {(t.statuses['compiled'] + t.statuses['partial']) / max(n, 1):.0%} |")
        print(_row(label, report))


if __name__ == "__main__":
    main()
