"""The compiled-trial cache (eligibility.compile.cache): a hit is the fresh compile, and nothing stale survives.

Outcomes are worked out by hand from the small trial below:
  I1 "Age 18 to 65 years", I2 "Total bilirubin < 2 mg/dL" (a concept only a --registry file adds);
  P1 is 40 with bilirubin 1.0, P2 50 with 3.0, P3 70 with 1.5.
Without the registry file I2 cannot be computed (review); with it P2 fails I2 (3.0 ≥ 2);
with a plausible range 0–2.5 P2's 3.0 is rejected (unknown).  P3 fails I1 (70 > 65).
I3 names an unknown unit: a compile problem, and a criterion left to review, so no one is eligible.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import eligibility.compile.trials
from eligibility.cli import main
from eligibility.compile.cache import load_trial, prepare_trial

ROOT = Path(__file__).resolve().parent.parent
TRIAL = "Inclusion Criteria:\n- Age 18 to 65 years\n- Total bilirubin < 2 mg/dL\n- HbA1c above 7 furlongs\n"
DATA = "patient_id,age,total bilirubin\nP1,40,1.0\nP2,50,3.0\nP3,70,1.5\n"
REGISTRY = ('[[concept]]\nid = "total_bilirubin"\nname = "Total bilirubin"\ncanonical_unit = "mg/dL"\n'
            'synonyms = ["total bilirubin", "tbil"]\nplausible = [0, {high}]\n')


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Trial, data and registry files, a fresh cache directory, and a count of real compiles."""
    monkeypatch.setenv("ELIGIBILITY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ELIGIBILITY_NO_CACHE", raising=False)
    (tmp_path / "t.txt").write_text(TRIAL, encoding="utf-8")
    (tmp_path / "d.csv").write_text(DATA, encoding="utf-8")
    (tmp_path / "r.toml").write_text(REGISTRY.format(high=50), encoding="utf-8")
    compiles = []
    real = eligibility.compile.trials.compile_trial_file

    def counted(*args, **kwargs):
        compiles.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(eligibility.compile.trials, "compile_trial_file", counted)
    return tmp_path, compiles


def screen(tmp_path: Path, engine: str, *extra: str) -> tuple[dict[str, dict], str]:
    out = tmp_path / f"out-{engine}.csv"
    result = CliRunner().invoke(main, ["screen", str(tmp_path / "t.txt"), str(tmp_path / "d.csv"), "-o", str(out),
                                       "--as-of", "2026-01-01", "--engine", engine, *extra])
    assert result.exit_code == 0, result.output
    return {r["patient_id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}, result.stderr


def outcomes(rows: dict[str, dict]) -> dict[str, tuple[str, str, str]]:
    return {pid: (r["verdict"], r["I1"], r["I2"]) for pid, r in rows.items()}


WITHOUT_REGISTRY = {"P1": ("needs_review", "pass", "review"), "P2": ("needs_review", "pass", "review"),
                    "P3": ("ineligible", "fail", "review")}
WITH_REGISTRY = {"P1": ("needs_review", "pass", "pass"), "P2": ("ineligible", "pass", "fail"),
                 "P3": ("ineligible", "fail", "pass")}
NARROW_RANGE = {"P1": ("needs_review", "pass", "pass"), "P2": ("needs_review", "pass", "unknown"),
                "P3": ("ineligible", "fail", "pass")}


@pytest.mark.parametrize("trial", [ROOT / "trials" / "ucmsc_t2dm.txt", ROOT / "trials" / "ucmsc_t2dm.ctgov.json",
                                   ROOT / "tests" / "cases" / "seed_trial.json", "t.txt"])
def test_a_hit_is_the_fresh_compile(files, trial):
    tmp_path, compiles = files
    path = tmp_path / trial if trial == "t.txt" else trial
    fresh, problems = load_trial(path)
    first, second = prepare_trial(path), prepare_trial(path)
    assert len(compiles) == 2   # load_trial, then the miss; the second prepare is a hit
    assert second.trial == fresh and second.json == fresh.to_json()
    assert second.ids == [c.id for c in fresh.criteria] == first.ids
    assert second.problems == [p.one_line() for p in problems] == first.problems
    assert second.title == first.title


def test_title_and_problems_survive_the_cache(files):
    tmp_path, compiles = files
    for _ in range(2):
        prepared = prepare_trial(tmp_path / "t.txt")
        assert prepared.title == "t.txt"     # a text trial without a title line is named by its file
        assert prepared.ids == ["I1", "I2", "I3"]
        (problem,) = prepared.problems
        assert "furlongs" in problem and "E-UNIT" in problem and f"{tmp_path / 't.txt'}:4:" in problem
    assert len(compiles) == 1
    assert prepare_trial(ROOT / "trials" / "ucmsc_t2dm.txt").title == \
        "Umbilical Cord Mesenchymal Stem Cells in Type 2 Diabetes Mellitus"


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_warm_runs_screen_as_cold_ones(files, engine):
    tmp_path, compiles = files
    cold, cold_err = screen(tmp_path, engine)
    warm, warm_err = screen(tmp_path, engine)
    assert outcomes(cold) == outcomes(warm) == WITHOUT_REGISTRY
    assert cold == warm and cold_err == warm_err
    assert "trial: " in warm_err and "furlongs" in warm_err     # the compile problem is still reported
    assert len(compiles) == 1


@pytest.mark.parametrize("engine", ["duckdb", "python"])
def test_registry_files_are_part_of_the_key(files, engine):
    tmp_path, compiles = files
    registry = tmp_path / "r.toml"
    assert outcomes(screen(tmp_path, engine)[0]) == WITHOUT_REGISTRY
    assert outcomes(screen(tmp_path, engine, "--registry", str(registry))[0]) == WITH_REGISTRY
    assert len(compiles) == 2
    # the same trial JSON with another registry: the plausible range must reach the (cached) query too
    registry.write_text(REGISTRY.format(high=2.5), encoding="utf-8")
    assert outcomes(screen(tmp_path, engine, "--registry", str(registry))[0]) == NARROW_RANGE
    assert len(compiles) == 3
    assert outcomes(screen(tmp_path, engine)[0]) == WITHOUT_REGISTRY
    assert len(compiles) == 3


def test_editing_the_trial_invalidates(files):
    tmp_path, compiles = files
    assert outcomes(screen(tmp_path, "duckdb")[0]) == WITHOUT_REGISTRY
    (tmp_path / "t.txt").write_text(TRIAL.replace("18 to 65", "18 to 75"), encoding="utf-8")
    rows, _ = screen(tmp_path, "duckdb")
    assert rows["P3"]["I1"] == "pass"    # 70 is within 18-75
    assert len(compiles) == 2


def test_no_cache_switch_bypasses(files, monkeypatch):
    tmp_path, compiles = files
    monkeypatch.setenv("ELIGIBILITY_NO_CACHE", "1")
    for _ in range(2):
        assert outcomes(screen(tmp_path, "duckdb")[0]) == WITHOUT_REGISTRY
    assert len(compiles) == 2
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_only_costs_speed(files, monkeypatch):
    tmp_path, compiles = files
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache directory's parent should be")
    monkeypatch.setenv("ELIGIBILITY_CACHE_DIR", str(blocker / "cache"))
    for engine in ("duckdb", "python", "duckdb"):
        assert outcomes(screen(tmp_path, engine)[0]) == WITHOUT_REGISTRY
    assert len(compiles) == 3


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                                   # truncated
    lambda text: "",                                                       # empty
    lambda text: "[1, 2]",                                                 # another shape
    lambda text: text.replace('"I2"', '"I9"'),                             # edited: checksum no longer matches
    lambda text: text.replace("Total bilirubin", "Total bilirubim"),
], ids=["truncated", "empty", "shape", "ids edited", "trial edited"])
def test_a_damaged_entry_is_recompiled(files, damage):
    tmp_path, compiles = files
    expected = screen(tmp_path, "duckdb")
    (entry,) = (tmp_path / "cache").glob("trial-*.json")
    entry.write_text(damage(entry.read_text("utf-8")), encoding="utf-8")
    assert screen(tmp_path, "duckdb") == expected
    assert len(compiles) == 2
    # the entry was written again: the next run is a hit
    assert screen(tmp_path, "duckdb") == expected
    assert len(compiles) == 2


def test_a_warm_duckdb_run_imports_no_compiler(tmp_path):
    """The point of the cache: a repeated run needs neither pydantic, lark, sqlglot nor pint."""
    (tmp_path / "d.csv").write_text(DATA, encoding="utf-8")
    script = ("import sys; from eligibility.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'lark', 'sqlglot', 'pint'}))\n")
    env = {**os.environ, "ELIGIBILITY_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("ELIGIBILITY_NO_CACHE", None)
    outputs = []
    for n in range(2):
        out = tmp_path / f"{n}.csv"
        done = subprocess.run([sys.executable, "-c", script, "screen", str(ROOT / "trials" / "ucmsc_t2dm.txt"),
                               str(tmp_path / "d.csv"), "-o", str(out), "--as-of", "2026-01-01", "--engine", "duckdb"],
                              env=env, capture_output=True, text=True, check=True)
        outputs.append((done.stdout, out.read_text("utf-8")))
    assert outputs[0][0].strip() != "[]"          # the cold run compiled
    assert outputs[1][0].strip() == "[]"
    assert outputs[0][1] == outputs[1][1]
