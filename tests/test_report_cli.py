"""`eligibility screen --report` and `eligibility report`: the page of a run, exact output lines, bad input, usage.

The funnel on the page is checked against counts made here from the results
file itself (a patient leaves at their first fail, in trial order); the page
of `screen --report` must be the very page `eligibility report` and
`python -m eligibility.report` make from the same results and trial.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eligibility.cli import main
from eligibility.core.errors import EligibilityError
from eligibility.report import ReportInputError
from test_report import Page

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "cases" / "seed_trial.json"
DEMO = ROOT / "patients" / "demo_ucmsc.csv"
IDS = ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def screen(tmp_path: Path, *extra, out: str = "results.csv", report: str | None = "report.html"):
    args = ["screen", SEED, DEMO, "-o", tmp_path / out, "--as-of", "2026-01-01", *extra]
    result = run(*args, *(["--report", tmp_path / report] if report else []))
    assert result.exit_code == 0, result.output
    return result


def report_line(page: Path, patients: int, listed: int, cap: int | None = None) -> str:
    capped = f" (capped at {cap:,})" if cap is not None else ""
    return f"report: {page} ({page.stat().st_size:,} bytes; {patients:,} patients, {listed:,} listed{capped})"


def funnel_of(results: Path) -> dict[str, dict[str, int]]:
    """The attrition funnel counted from a results CSV: in trial order, a fail removes the patient."""
    with results.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    remaining, all_passed = rows, rows
    funnel = {}
    for cid in IDS:
        counts = {o: sum(r[cid] == o for r in remaining) for o in ("fail", "unknown", "review", "pass")}
        entering = len(remaining)
        remaining = [r for r in remaining if r[cid] != "fail"]
        all_passed = [r for r in all_passed if r[cid] == "pass"]
        funnel[cid] = {"entering": entering, "failed": counts["fail"], "unknown": counts["unknown"],
                       "review": counts["review"], "passed": counts["pass"], "remaining": len(remaining),
                       "all_passed": len(all_passed)}
    verdicts = [r["verdict"] for r in rows]
    assert funnel["E2"]["remaining"] == verdicts.count("eligible") + verdicts.count("needs_review")
    assert funnel["E2"]["all_passed"] == verdicts.count("eligible")
    return funnel


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_screen_report_draws_the_run_it_wrote(tmp_path, engine):
    result = screen(tmp_path, "--engine", engine)
    page = tmp_path / "report.html"
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("screened 57 patients") and lines[-1] == report_line(page, 57, 57)
    read = Page(page.read_text("utf-8"))
    assert {k: v for k, v in read.funnel.items() if k in IDS} == funnel_of(tmp_path / "results.csv")
    assert read.funnel["screened"]["entering"] == 57
    with (tmp_path / "results.csv").open(encoding="utf-8", newline="") as handle:
        assert read.patients == [r["patient_id"] for r in csv.DictReader(handle)]


def test_the_same_page_from_screen_report_and_from_the_results(tmp_path):
    screen(tmp_path)
    made = run("report", tmp_path / "results.csv", "--trial", SEED)   # default: next to the results
    assert made.exit_code == 0, made.output
    page = tmp_path / "results.html"
    assert made.stderr.splitlines() == [report_line(page, 57, 57)]
    assert page.read_bytes() == (tmp_path / "report.html").read_bytes()
    # the stand-alone module over the compiled trial's JSON document
    compiled = run("compile", SEED, "--format", "json")
    (tmp_path / "trial.json").write_text(compiled.stdout, encoding="utf-8")
    module = subprocess.run([sys.executable, "-m", "eligibility.report", tmp_path / "results.csv", "--trial",
                             tmp_path / "trial.json", "-o", tmp_path / "module.html"], capture_output=True, cwd=ROOT)
    assert module.returncode == 0, module.stderr
    assert (tmp_path / "module.html").read_bytes() == page.read_bytes()


def test_details_and_the_cap_reach_the_page(tmp_path):
    screen(tmp_path, "--engine", "python", report=None)
    screen(tmp_path, "--engine", "python", out="results.jsonl", report=None)
    page = tmp_path / "r.html"
    made = run("report", tmp_path / "results.csv", "--trial", SEED, "-o", page, "--details",
               tmp_path / "results.jsonl", "--patient-cap", 10)
    assert made.exit_code == 0, made.output
    assert made.stderr.splitlines() == [report_line(page, 57, 10, cap=10)]
    read = Page(page.read_text("utf-8"))
    assert len(read.patients) == 10 and "10 of 57" in " ".join(read.cap_note.split())
    # D02 passes every criterion: the CSV has no reason for it, the JSONL explains each pass (BMI 30 in the data)
    assert "BMI 30 kg/m² within 24.0–40.0 kg/m²" in page.read_text("utf-8")
    assert run("report", tmp_path / "results.csv", "--trial", SEED, "-o", tmp_path / "short.html").exit_code == 0
    assert "BMI 30 kg/m² within" not in (tmp_path / "short.html").read_text("utf-8")


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_parquet_and_jsonl_results_give_the_csv_page(tmp_path, engine):
    screen(tmp_path, "--engine", engine, report=None)
    screen(tmp_path, "--engine", engine, out="results.parquet", report="parquet.html")
    csv_page = tmp_path / "csv.html"
    assert run("report", tmp_path / "results.csv", "--trial", SEED, "-o", csv_page).exit_code == 0
    parquet_page = Page((tmp_path / "parquet.html").read_text("utf-8"))
    want = Page(csv_page.read_text("utf-8"))
    assert parquet_page.funnel == want.funnel and parquet_page.problems == want.problems
    assert parquet_page.patients == want.patients


def write_parquet(path: Path, columns: dict[str, list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def bad_inputs(tmp_path: Path) -> list[tuple[Path, str]]:
    """(results file, the one line expected) for results the report must refuse."""
    good = (tmp_path / "results.csv").read_text("utf-8").splitlines()
    outcome = tmp_path / "outcome.csv"
    outcome.write_text("\n".join([good[0], good[1].replace('"review","review"', '"review","maybe"')]) + "\n", "utf-8")
    outcomes_only = tmp_path / "outcomes.csv"
    outcomes_only.write_text("patient_id,verdict," + ",".join(IDS) + "\n", "utf-8")
    row = {"patient_id": ["P1", "P2"], "verdict": ["eligible", None], "reasons": ["", ""],
           **{cid: ["pass", "pass"] for cid in IDS}}
    null = write_parquet(tmp_path / "null.parquet", row)
    typed = write_parquet(tmp_path / "typed.parquet", {**row, "verdict": ["eligible", "eligible"], "age": [1, 2]})
    missing = tmp_path / "missing.csv"
    return [
        (outcome, f"{outcome}:2: error E-REPORT-OUTCOME: patient 'D01': criterion E2 outcome 'maybe' is not one "
                  "of pass, fail, unknown, review"),
        (outcomes_only, f"{outcomes_only}:1: error E-REPORT-HEADER: no reasons column (written with --columns "
                        "outcomes?): the report needs the reasons"),
        (null, f"{null}:2: error E-REPORT-ROW: column verdict is empty (null)"),
        (typed, f"{typed}: error E-REPORT-HEADER: column age holds int64; results columns hold text"),
        (missing, f"{missing}: error E-REPORT-FILE: no such results file"),
    ]


def test_bad_results_are_one_line_and_no_page(tmp_path):
    screen(tmp_path, "--engine", "python", report=None)
    for results, line in bad_inputs(tmp_path):
        made = run("report", results, "--trial", SEED, "-o", tmp_path / "bad.html")
        assert (made.exit_code, made.stderr.splitlines()) == (1, [line])
        assert not (tmp_path / "bad.html").exists()


def test_report_errors_belong_to_the_hierarchy():
    error = ReportInputError("x", code="E-REPORT-ROW", file="r.csv", line=3)
    assert isinstance(error, EligibilityError) and isinstance(error, ValueError)
    assert str(error) == error.one_line() == "r.csv:3: error E-REPORT-ROW: x"


USAGE = [
    (["-o", "{tmp}/r.csv", "--report", "{tmp}/r.html", "--columns", "outcomes"],
     "Error: the report needs the reasons column (data problems, deaths): drop --columns outcomes"),
    (["--report", "{tmp}/r.html"], "Error: the report reads the results back: write them to a file (-o results.csv)"),
    (["-o", "{tmp}/r.csv", "--report", "{tmp}/r.csv"], "Error: {tmp}/r.csv: the report would overwrite the results"),
]


@pytest.mark.parametrize("extra,message", USAGE, ids=["outcomes", "stdout", "same-file"])
def test_report_options_that_cannot_work_are_usage_errors(tmp_path, extra, message):
    made = run("screen", SEED, DEMO, *(a.format(tmp=tmp_path) for a in extra))
    assert made.exit_code == 2 and made.stderr.splitlines()[-1] == message.format(tmp=tmp_path)
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "r.html").exists()


def test_report_command_usage(tmp_path):
    assert run("report", tmp_path / "r.csv").exit_code == 2                       # no --trial
    missing_trial = run("report", tmp_path / "r.csv", "--trial", tmp_path / "none.txt")
    assert missing_trial.exit_code == 1 and len(missing_trial.stderr.splitlines()) == 1
    assert str(tmp_path / "none.txt") in missing_trial.stderr
