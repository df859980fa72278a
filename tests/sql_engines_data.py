"""Shared patients for the warehouse tests: one deterministic batch, screened by DuckDB as the reference."""
from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from test_differential import BAD, COLUMNS, HEADER, INFANT_TRIAL, MISSING

from eligibility.engines.duckdb_engine import build_query
from eligibility.registry.concepts import default_registry
from eligibility.compile.trials import compile_trial_file, compile_trial_text
from shared_paths import SHARED

AS_OF = date(2026, 1, 1)
TRIALS = (SHARED / "trials")


def patients(n: int = 400, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = [f"P{i:04d}"]
        for column in COLUMNS:
            pool = rng.choice([COLUMNS[column]] * 6 + [MISSING, BAD])
            row.append(rng.choice(pool))
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return path


def trials():
    """The seed trial, the example trial, and an infant trial with age bounds in months."""
    infant, _problems = compile_trial_text(INFANT_TRIAL, "text", "infants.txt")
    return [compile_trial_file(TRIALS / name)[0] for name in ("ucmsc_t2dm.txt", "example_t2dm_addon.txt")] + [infant]


def duckdb_results(trial, path: Path) -> dict[str, tuple]:
    import duckdb

    sql = build_query(trial, [path], as_of=AS_OF, registry=default_registry())
    return {r[0]: (r[1], *r[3:]) for r in duckdb.connect().execute(sql).fetchall()}
