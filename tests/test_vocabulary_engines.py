"""Both engines on long data for a trial of code-book conditions (ICD-10-CM terms the curated files lack).

The DuckDB engine joins each distinct condition record's keys as the readers
compute them (eligibility.engines.long_views.register_mappings), so its outcomes
must equal the Python engine's, and it must run the trial itself rather than
fall back.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_paths import SHARED

TRIAL = Path(__file__).parent / "cases" / "trial_code_book_conditions.txt"


def _screen(folder: Path, engine: str, out: Path) -> tuple[list[tuple], str]:
    run = subprocess.run([sys.executable, "-m", "eligibility", "screen", str(TRIAL), str(folder), "--as-of",
                          "2020-01-01", "--engine", engine, "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = [tuple(v for k, v in r.items() if k != "reasons") for r in csv.DictReader(open(out))]
    return rows, run.stderr


@pytest.mark.parametrize("sample", ["synthea", "omop_eunomia"])
def test_code_book_conditions_on_long_data_agree(tmp_path, sample):
    folder = SHARED / "data" / sample
    if not folder.exists():
        pytest.skip("shared sample not present")
    python, _ = _screen(folder, "python", tmp_path / "p.csv")
    duck, summary = _screen(folder, "duckdb", tmp_path / "d.csv")
    assert "(duckdb engine)" in summary
    assert duck == python
    # the trial has teeth: the code-book terms decide someone
    fails = {row[0] for row in python if "fail" in row[2:]}
    assert fails
