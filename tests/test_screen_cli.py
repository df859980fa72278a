"""`eligibility screen` / `explain` end to end: exact output shape, the demo patients, bad input, exit codes.

The seed trial here is the hand-built compiled JSON in tests/cases/seed_trial.json
(so these tests do not depend on the compiler's reading of the text), and the
expected outcomes of the demo patients in tests/cases/demo_ucmsc_expected.csv
were derived by hand, row by row, from the values in patients/demo_ucmsc.csv.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eligibility.cli import main

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "tests" / "cases" / "seed_trial.json"
DEMO = ROOT / "patients" / "demo_ucmsc.csv"
EXPECTED = ROOT / "tests" / "cases" / "demo_ucmsc_expected.csv"
IDS = ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def screen_csv(tmp_path: Path, data: Path, *extra: str) -> tuple[list[dict], str]:
    out = tmp_path / "results.csv"
    result = run("screen", SEED, data, "-o", out, "--as-of", "2026-01-01", "--engine", "python", *extra)
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text))), result.stderr


def input_ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = [r for r in csv.reader(handle) if r and any(c.strip() for c in r)]
    return [r[0] for r in rows[1:]]


@pytest.mark.parametrize("trial", [SEED, ROOT / "trials" / "ucmsc_t2dm.txt", ROOT / "trials" / "ucmsc_t2dm.ctgov.json"],
                         ids=["hand-built IR", "compiled text", "compiled CT.gov JSON"])
def test_demo_outcomes_match_the_hand_derived_table(tmp_path, trial):
    out = tmp_path / "results.csv"
    result = run("screen", trial, DEMO, "-o", out, "--as-of", "2026-01-01", "--engine", "python")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    expected = list(csv.DictReader(EXPECTED.open(encoding="utf-8")))
    assert len(rows) == len(expected) == 57
    for got, want in zip(rows, expected):
        assert got["patient_id"] == want["patient_id"]
        assert {k: got[k] for k in ["verdict", *IDS]} == {k: want[k] for k in ["verdict", *IDS]}, want["patient_id"]


def test_output_columns_and_rows_in_input_order(tmp_path):
    out = tmp_path / "r.csv"
    assert run("screen", SEED, DEMO, "-o", out, "--as-of", "2026-01-01", "--engine", "python").exit_code == 0
    header = out.read_text("utf-8").splitlines()[0]
    assert header == "patient_id,verdict,reasons," + ",".join(IDS)
    rows, _ = screen_csv(tmp_path, DEMO)
    assert [r["patient_id"] for r in rows] == input_ids(DEMO)


def test_reasons_name_every_non_pass_criterion(tmp_path):
    rows, _ = screen_csv(tmp_path, DEMO)
    by_row = {n: r for n, r in enumerate(rows, 1)}
    for row in rows:
        for cid in IDS:
            if row[cid] != "pass":
                assert f"{cid} {row[cid]}: " in row["reasons"], (row["patient_id"], cid, row["reasons"])
    assert "I3 fail: BMI 23.9 kg/m² < 24.0 kg/m²" in by_row[5]["reasons"]
    assert "I5 fail: HbA1c 52 mmol/mol = 6.9 % < 7.0 %" in by_row[12]["reasons"]
    assert "I6 fail: Fasting C-peptide 331 pmol/L = 0.9997 ng/mL < 1.0 ng/mL" in by_row[21]["reasons"]
    assert "I4 fail: takes sitagliptin (DPP-4 inhibitor)" in by_row[23]["reasons"]
    assert "I5 unknown: HbA1c rejected: '7,5' is not a number (decimal comma?)" in by_row[34]["reasons"]
    assert "I3 unknown: BMI rejected: 400 kg/m² is outside the plausible range 8–150 kg/m²" in by_row[37]["reasons"]
    assert "I7 fail: reviewer decision (column I7)" in by_row[51]["reasons"]
    assert by_row[53]["reasons"].startswith("data: duplicate id D01 (first at row 1)")
    assert by_row[2]["reasons"] == ""


def test_summary_on_stderr(tmp_path):
    _rows, stderr = screen_csv(tmp_path, DEMO)
    assert "screened 57 patients from 57 input rows" in stderr and "as of 2026-01-01" in stderr
    assert "verdicts: eligible 3, needs_review 29, ineligible 25" in stderr
    assert "failing: age 3, I2 2, I3 3, I4 6, I5 4, I6 4, I7 1, E2 2" in stderr
    assert f"results: {tmp_path / 'results.csv'}" in stderr
    assert "duplicate id D01: rows 1 and 53" in stderr
    assert "unknown columns ignored: notes" in stderr


def test_jsonl_has_full_explanations_and_the_date(tmp_path):
    out = tmp_path / "r.jsonl"
    result = run("screen", SEED, DEMO, "-o", out, "--format", "jsonl", "--as-of", "2026-01-01")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len(lines) == 57 and [x["patient_id"] for x in lines] == input_ids(DEMO)
    d13 = lines[12]
    assert d13["as_of"] == "2026-01-01" and d13["verdict"] == "needs_review"
    assert [c["id"] for c in d13["criteria"]] == IDS
    i5 = d13["criteria"][IDS.index("I5")]
    assert i5["outcome"] == "pass" and "HbA1c 58 mmol/mol = 7.5 % within 7.0–12.0 %" in i5["explanation"][0]
    d02 = lines[1]
    assert d02["verdict"] == "eligible" and d02["criteria"][IDS.index("I7")]["reviewer_decision"] is True


def test_screen_to_stdout(tmp_path):
    result = run("screen", SEED, DEMO, "--as-of", "2026-01-01", "--engine", "python")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 57
    assert "results: stdout" in result.stderr


@pytest.mark.parametrize("name, data", [
    ("bom_crlf", "\ufeffpatient_id,BMI,HbA1c\r\nA,30,8\r\nB,22,7\r\nC,,\r\n".encode("utf-8")),
    ("latin1", "patient_id,BMI,notes\nJosé,30,caf\xe9\nZoë,31,\n".encode("latin-1")),
    ("short_long", b"patient_id,BMI,HbA1c\nA\nB,30,8,extra\nC,30\n"),
    ("duplicates", b"patient_id,BMI\nA,30\nA,31\nB,32\nA,33\n"),
    ("bad_cells", b"patient_id,BMI,HbA1c\nA,abc,\"7,5\"\nB,400,>12\nC,30,8.0 mg/dL\n"),
])
def test_bad_files_keep_every_row_in_order(tmp_path, name, data):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(data)
    rows, _ = screen_csv(tmp_path, path)
    text = data.decode("utf-8-sig") if name != "latin1" else data.decode("latin-1")
    expected = [line.split(",")[0] for line in text.replace("\r\n", "\n").splitlines()[1:] if line]
    assert [r["patient_id"] for r in rows] == expected
    assert all(r["verdict"] in ("eligible", "ineligible", "needs_review") for r in rows)


def test_explain_one_patient():
    result = run("explain", SEED, DEMO, "--patient", "D23", "--as-of", "2026-01-01")
    assert result.exit_code == 0, result.output
    assert "Patient D23 (row 23) — as of 2026-01-01: ineligible" in result.stdout
    assert "takes sitagliptin (DPP-4 inhibitor)" in result.stdout
    assert "Willingness to participate in the trial." in result.stdout


def test_explain_duplicate_id_shows_both_rows():
    result = run("explain", SEED, DEMO, "--patient", "D01", "--as-of", "2026-01-01")
    assert result.exit_code == 0
    assert "(row 1)" in result.stdout and "(row 53)" in result.stdout


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


def test_explain_unknown_patient_is_an_input_error():
    one_line_error(run("explain", SEED, DEMO, "--patient", "nobody"), "no patient with id 'nobody'")


def test_missing_data_file(tmp_path):
    missing = tmp_path / "missing.csv"
    one_line_error(run("screen", SEED, missing, "--engine", "python"), str(missing))


def test_no_id_column(tmp_path):
    path = tmp_path / "noid.csv"
    path.write_text("name,bmi\nA,30\n")
    out = tmp_path / "r.csv"
    one_line_error(run("screen", SEED, path, "-o", out, "--engine", "python"), str(path), "no patient id column")
    assert not out.exists()


def test_empty_trial(tmp_path):
    trial = tmp_path / "empty.txt"
    trial.write_text("")
    one_line_error(run("screen", trial, DEMO, "--engine", "python"), str(trial))


def test_missing_trial(tmp_path):
    one_line_error(run("screen", tmp_path / "nope.txt", DEMO), "nope.txt")


@pytest.mark.parametrize("args", [
    ["screen", str(SEED), str(DEMO), "--as-of", "01/02/2026"],
    ["screen", str(SEED), str(DEMO), "--format", "xml"],
    ["screen", str(SEED)],
    ["explain", str(SEED), str(DEMO)],
])
def test_usage_errors_exit_2(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_as_of_changes_ages(tmp_path):
    """D45 (born 1960-01-02) is 65 on 2026-01-01 and 66 one day later."""
    rows, _ = screen_csv(tmp_path, DEMO)
    assert rows[44]["age"] == "pass"
    out = tmp_path / "later.csv"
    assert run("screen", SEED, DEMO, "-o", out, "--as-of", "2026-01-02", "--engine", "python").exit_code == 0
    later = list(csv.DictReader(out.open(encoding="utf-8")))
    assert later[44]["age"] == "fail"


def test_unwritable_output_is_an_input_error(tmp_path):
    target = tmp_path / "no such folder" / "r.csv"
    one_line_error(run("screen", SEED, DEMO, "-o", target, "--engine", "python"), "cannot write results")


def test_decision_columns_for_other_criteria_are_reported(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("patient_id,BMI,I9,E2\nA,30,pass,pass\n")
    rows, stderr = screen_csv(tmp_path, path)
    assert rows[0]["E2"] == "pass"
    assert "reviewer decision columns not in the trial (ignored): I9" in stderr


def test_progress_bar_keeps_the_results(tmp_path):
    rows, stderr = screen_csv(tmp_path, DEMO, "--progress")
    assert len(rows) == 57
    assert "screening" in stderr


def test_deceased_patients_are_ineligible(tmp_path):
    path = tmp_path / "dead.csv"
    path.write_text("patient_id,BMI,death_date\nA,30,2025-06-01\nB,30,2026-06-01\n")
    rows, _ = screen_csv(tmp_path, path)
    assert rows[0]["verdict"] == "ineligible" and rows[0]["reasons"].startswith("deceased 2025-06-01")
    assert rows[1]["verdict"] == "needs_review" and "deceased" not in rows[1]["reasons"]


def screen_subprocess(tmp_path: Path, trial_text: str, csv_text: str, engine: str, *extra: str):
    """The real console command on a trial and a CSV written here; returns (completed run, output rows)."""
    import subprocess
    import sys

    trial = tmp_path / "trial.txt"
    trial.write_text(trial_text, encoding="utf-8")
    data = tmp_path / "p.csv"
    data.write_text(csv_text, encoding="utf-8")
    out = tmp_path / "out.csv"
    run = subprocess.run([sys.executable, "-m", "eligibility", "screen", str(trial), str(data), "-o", str(out),
                          "--engine", engine, "--as-of", "2026-01-01", *extra], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run, list(csv.DictReader(out.open(encoding="utf-8")))


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_trial_problems_reach_the_summary_and_the_run_goes_on(tmp_path, engine):
    """A criterion the compiler reports (unknown unit) is named in the summary by either engine; rows still come out."""
    run, rows = screen_subprocess(tmp_path, "Inclusion Criteria:\n1. HbA1c ≥ 7 furlongs\n2. BMI 25-40 kg/m2\n",
                                  "patient_id,bmi\nA,30\nB,50\n", engine)
    assert "furlongs" in run.stderr and "E-UNIT" in run.stderr
    assert list(rows[0])[:3] == ["patient_id", "verdict", "reasons"]
    assert [r["patient_id"] for r in rows] == ["A", "B"]


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_a_concept_added_by_a_registry_file_screens_without_code_changes(tmp_path, engine):
    """README's example: serum potassium defined only in a user TOML file compiles, reads from CSV and screens."""
    registry = tmp_path / "k.toml"
    registry.write_text('[[concept]]\nid = "potassium"\nname = "Serum potassium"\ncanonical_unit = "mmol/L"\n'
                        'synonyms = ["potassium", "serum potassium"]\nplausible = [1, 10]\n', encoding="utf-8")
    # 6.0 > 5.5 -> excluded; 4.1 -> not; empty -> unknown; 12 is outside the plausible range -> unknown
    _run, rows = screen_subprocess(tmp_path, "Exclusion Criteria:\n1. Serum potassium > 5.5 mmol/L\n",
                                   "patient_id,Serum potassium (mmol/L)\nA,6.0\nB,4.1\nC,\nD,12\n", engine,
                                   "--registry", str(registry))
    assert [(r["patient_id"], r["E1"]) for r in rows] == [("A", "fail"), ("B", "pass"), ("C", "unknown"), ("D", "unknown")]
