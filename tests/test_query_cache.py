"""The DuckDB engine's on-disk query cache: a repeated run reuses the query text without sqlglot."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

TRIAL = "Inclusion Criteria:\n- Age 18 to 65 years\n- BMI between 24 and 40 kg/m2\n"
DATA = "patient_id,age,bmi,extra\nP1,40,30,x\nP2,70,22,y\nP3,,41,z\n"

# run in a fresh interpreter: whether sqlglot was imported is the observable
SCRIPT = """
import sys
from datetime import date
from pathlib import Path
from eligibility.engines.duckdb_engine import screen_duckdb
from eligibility.registry.concepts import default_registry
from eligibility.compile.trials import compile_trial_file
trial, _ = compile_trial_file(Path(sys.argv[1]))
summary = screen_duckdb(trial, [Path(sys.argv[2])], output=sys.argv[3], as_of=date.fromisoformat(sys.argv[4]),
                        registry=default_registry())
print("sqlglot" in sys.modules, summary.problems)
"""


def _run(tmp_path: Path, as_of: str, out: str) -> str:
    env = {**os.environ, "ELIGIBILITY_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("ELIGIBILITY_NO_CACHE", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "t.txt"), str(tmp_path / "d.csv"),
                           str(tmp_path / out), as_of], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_repeated_run_reuses_the_query(tmp_path):
    (tmp_path / "t.txt").write_text(TRIAL)
    (tmp_path / "d.csv").write_text(DATA)
    first = _run(tmp_path, "2026-01-01", "a.csv")
    second = _run(tmp_path, "2026-01-01", "b.csv")
    assert first.startswith("True") and second.startswith("False")
    # the note about the ignored column is kept with the cached query
    assert "unknown columns ignored: extra" in second
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    with open(tmp_path / "b.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["verdict"] for r in rows] == ["eligible", "ineligible", "ineligible"]
    assert len(list((tmp_path / "cache").glob("query-*.json"))) == 1
    # another as-of date is another query (a new cache entry, built with sqlglot)
    assert _run(tmp_path, "2026-06-01", "c.csv").startswith("True")
    assert len(list((tmp_path / "cache").glob("query-*.json"))) == 2



def test_damaged_or_edited_cache_entry_is_rebuilt_not_run(tmp_path, monkeypatch):
    """A query-cache file whose content does not match its checksum is never used (as the trial cache)."""
    import json

    from eligibility.engines import query_cache

    monkeypatch.setenv("ELIGIBILITY_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)
    key = "0123456789abcdef0123456789abcdef"
    query_cache.save(key, "SELECT 1 AS patient_id", ["a note"])
    assert query_cache.load(key) == ("SELECT 1 AS patient_id", ["a note"])
    [entry] = tmp_path.glob("query-*.json")
    data = json.loads(entry.read_text())
    assert set(data) == {"body", "checksum"}
    # edited: another query, the checksum left as it was
    data["body"]["sql"] = "SELECT 'x' AS patient_id, 'eligible' AS verdict"
    entry.write_text(json.dumps(data))
    assert query_cache.load(key) is None
    # moved: a whole entry copied under another key
    query_cache.save(key, "SELECT 1 AS patient_id", [])
    (tmp_path / f"query-{'f' * 32}.json").write_bytes(entry.read_bytes())
    assert query_cache.load("f" * 32) is None
    # damaged: cut in the middle (not JSON any more), or not the expected shape
    entry.write_bytes(entry.read_bytes()[:40])
    assert query_cache.load(key) is None
    entry.write_text(json.dumps({"sql": "SELECT 1", "notes": []}))     # the format before checksums
    assert query_cache.load(key) is None
