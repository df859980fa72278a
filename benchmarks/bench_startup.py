"""Start-up benchmark: `eligibility screen` on a 10-patient file, cold (empty cache) and warm (cache filled).

Usage: python benchmarks/bench_startup.py [--runs 3]
On 10 patients a run is almost all start-up: imports, the trial (compiled, or
read from eligibility.compile.cache), the query (generated, or read from
engines/query_cache.py) and DuckDB's connection.  Each cold run gets an empty
cache directory; warm runs share one filled by a first, untimed run.
Prints a markdown table.  Not a test: timings depend on the machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "trials" / "ucmsc_t2dm.txt"
CLI = [sys.executable, "-c", "from eligibility.cli import main; main()"]


def run(data: Path, out: Path, engine: str, cache: Path) -> float:
    env = {**os.environ, "ELIGIBILITY_CACHE_DIR": str(cache)}
    env.pop("ELIGIBILITY_NO_CACHE", None)
    started = time.perf_counter()
    subprocess.run([*CLI, "screen", str(TRIAL), str(data), "-o", str(out), "--as-of", "2026-01-01",
                    "--engine", engine], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "p10.csv"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gen_patients.py"), "10", str(data)], check=True)
        rows = []
        for engine in ("duckdb", "python"):
            cold = [run(data, folder / "out.csv", engine, folder / f"cold-{engine}-{n}") for n in range(args.runs)]
            warm_cache = folder / f"warm-{engine}"
            run(data, folder / "out.csv", engine, warm_cache)
            warm = [run(data, folder / "out.csv", engine, warm_cache) for _ in range(args.runs)]
            rows += [(engine, "cold", cold), (engine, "warm", warm)]
    print("| engine | cache | median s | min s | runs |")
    print("|---|---|---:|---:|---|")
    for engine, mode, times in rows:
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(f"| {engine} | {mode} | {statistics.median(times):.2f} | {min(times):.2f} | {shown} |")


if __name__ == "__main__":
    main()
