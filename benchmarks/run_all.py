"""Run every benchmark under benchmarks/ in turn; each prints its own markdown table.

    .venv/bin/python benchmarks/run_all.py [--quick]

`--quick` passes smaller sizes so the whole set finishes in a few minutes; the
README's figures come from the full sizes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, full-size arguments, quick arguments)
BENCHES = [
    ("bench_compile.py", [], ["--rounds", "5", "--runs", "3"]),
    ("bench_evaluate.py", [], ["--patients", "20000", "--naive", "1000"]),
    ("bench_engine.py", [], ["--patients", "100000"]),
    ("bench_startup.py", [], []),
    ("bench_long.py", [], ["--rows", "1000000", "--patients", "10000"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    failed = []
    for script, full, quick in BENCHES:
        path = HERE / script
        if not path.exists():
            print(f"## {script}: missing", flush=True)
            failed.append(script)
            continue
        print(f"## {script}", flush=True)
        rc = subprocess.call([sys.executable, str(path), *(quick if args.quick else full)])
        if rc:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
