"""Criterion compiler speed: steady-state throughput and start-up costs (prints a markdown table).

    .venv/bin/python benchmarks/bench_compile.py [--rounds 20]

- steady state: compile_criterion over every criterion of the shared dev corpus
  (and of the 20 real CT.gov trials, one criterion per bullet), repeated;
- first call: a fresh Python process importing the compiler and compiling one
  criterion, with the persisted conversion cache warm and cold (cold builds pint);
- `eligibility compile` on the seed trial, wall time including interpreter start-up.
Targets (issue 2): >= 2,000 criteria/s; <= 0.5 s for the command.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ELIGIBILITY_SHARED") or ROOT / "tests" / "shared")
PYTHON = sys.executable


def dev_criteria() -> list[tuple[str, str]]:
    path = SHARED / "corpus" / "criteria_dev.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [(r["text"], r["section"]) for r in rows]


def real_criteria() -> list[tuple[str, str]]:
    """One criterion per `-` bullet of the real CT.gov sample (wrapped lines joined)."""
    path = SHARED / "corpus" / "real_trials_sample.csv"
    items: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            section, current = "inclusion", []
            for line in row["eligibility_criteria"].splitlines():
                text = line.strip()
                if re.match(r"(?i)(in|ex)clusion criteria", text):
                    if current:
                        items.append((" ".join(current), section))
                    current = []
                    section = "exclusion" if text.lower().startswith("ex") else "inclusion"
                elif text.startswith("-") or not text:
                    if current:
                        items.append((" ".join(current), section))
                    current = [text.lstrip("- ")] if text else []
                else:
                    current.append(text)
            if current:
                items.append((" ".join(current), section))
    return [i for i in items if i[0]]


def throughput(criteria: list[tuple[str, str]], rounds: int) -> str:
    """Criteria per second, by the wall clock and by this process's CPU time (best of three runs):
    on a shared machine the CPU figure is the one that does not depend on other people's jobs."""
    from eligibility.compile.compiler import compile_criterion

    for text, section in criteria:          # warm: grammar, lexer, conversions
        compile_criterion(text, section=section)
    wall = cpu = 0.0
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            for text, section in criteria:
                compile_criterion(text, section=section)
        n = rounds * len(criteria)
        wall = max(wall, n / (time.perf_counter() - start))
        cpu = max(cpu, n / max(time.process_time() - start_cpu, 1e-9))
    return f"{wall:,.0f} criteria/s (CPU time: {cpu:,.0f}/s)"


_FIRST_CALL = """
import time
t0 = time.perf_counter()
from eligibility.compile.compiler import compile_criterion
t1 = time.perf_counter()
compile_criterion("FPG 7,0 – 13,3 mmol/l and serum creatinine < 133 µmol/L")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def first_call(cache_dir: str, runs: int) -> tuple[float, float]:
    env = {**os.environ, "ELIGIBILITY_CACHE_DIR": cache_dir}
    imports, firsts = [], []
    for _ in range(runs):
        out = subprocess.run([PYTHON, "-c", _FIRST_CALL], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
        a, b = map(float, out.stdout.split())
        imports.append(a)
        firsts.append(b)
    return statistics.median(imports), statistics.median(firsts)


def command_wall(runs: int) -> float:
    exe = Path(PYTHON).with_name("eligibility")
    cmd = [str(exe)] if exe.exists() else [PYTHON, "-m", "eligibility"]
    times = []
    for _ in range(runs + 1):                  # the first run warms the conversion cache
        start = time.perf_counter()
        subprocess.run([*cmd, "compile", "trials/ucmsc_t2dm.txt"], cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per start-up measurement")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    rows = []
    dev = dev_criteria()
    rows.append(("steady state, dev corpus", throughput(dev, args.rounds), f"{len(dev)} criteria x {args.rounds}"))
    real = real_criteria()
    rows.append(("steady state, real CT.gov sample", throughput(real, max(1, args.rounds // 4)),
                 f"{len(real)} criteria x {max(1, args.rounds // 4)}"))
    warm = os.environ.get("ELIGIBILITY_CACHE_DIR") or str(Path(tempfile.gettempdir()) / "eligibility-bench-cache")
    first_call(warm, 1)                         # fill the persisted conversions
    imp, first = first_call(warm, args.runs)
    rows.append(("import eligibility.compile.compiler", f"{imp * 1000:.0f} ms", "fresh process, median"))
    rows.append(("first compile_criterion call, cache warm", f"{first * 1000:.0f} ms", "lexer build + conversions from disk"))
    with tempfile.TemporaryDirectory() as cold:
        _, first_cold = first_call(cold, 1)
    rows.append(("first compile_criterion call, cache cold", f"{first_cold * 1000:.0f} ms", "builds pint's registry once"))
    rows.append(("`eligibility compile` seed trial", f"{command_wall(args.runs) * 1000:.0f} ms",
                 "wall time incl. interpreter start-up, median"))
    print("| measure | result | notes |\n|---|---|---|")
    for name, value, note in rows:
        print(f"| {name} | {value} | {note} |")
    print(f"\n(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
