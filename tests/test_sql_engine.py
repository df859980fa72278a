"""`eligibility screen --engine duckdb` end to end: awkward files give the Python engine's rows, in order."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from eligibility.cli import main
from shared_paths import SHARED

TRIAL = str(SHARED / "trials/example_t2dm_addon.txt")
HEADER = "patient_id,birth_date,sex,HbA1c,BMI,egfr,fasting c-peptide,ALT,AST,medications,pregnant,odd column"
ROWS = [
    "p1,1970-05-01,F,7.5,30,60,0.5 nmol/L,30,30,metformin,no,x",
    "p2,1950-01-01,M,58 mmol/mol,41,44,0.2 nmol/L,130,20,semaglutide,NA",          # short row
    "p3,1980-01-01,f,abc,25,45,1,,,none,yes,x,extra,cells",                         # long row
    "",                                                                               # blank line
    'p4,1990-02-28,m,"10.5",25,90,"0.4 nmol/L",10,10,"sitagliptin;\nmetformin",no,"a, quoted, cell"',
    "p1,1970-05-01,F,7.5,30,60,0.5 nmol/L,30,30,metformin,no,duplicate id",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def screen(path: Path, engine: str, out: Path) -> tuple[list[list[str]], str]:
    result = CliRunner().invoke(main, ["screen", TRIAL, str(path), "-o", str(out), "--as-of", "2024-06-01",
                                       "--engine", engine])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8"))))
    return [r[:2] + r[3:] for r in rows], result.output      # reasons may be worded differently


@pytest.mark.parametrize("newline,bom", [("\n", ""), ("\r\n", "\ufeff")], ids=["lf", "crlf-bom"])
def test_awkward_file_same_rows_as_python(tmp_path, newline, bom):
    path = write(tmp_path / "patients.csv", bom + newline.join([HEADER, *ROWS]) + newline)
    duck, summary = screen(path, "duckdb", tmp_path / "duck.csv")
    python, _ = screen(path, "python", tmp_path / "python.csv")
    assert duck == python
    assert [r[0] for r in duck[1:]] == ["p1", "p2", "p3", "p4", "p1"]      # input order, blank line skipped
    assert "duckdb engine" in summary and "odd column" in summary


def test_latin1_file_falls_back_to_python(tmp_path):
    path = write(tmp_path / "latin.csv", "patient_id,HbA1c,note\np1,7.5,caf\xe9\n", encoding="latin-1")
    rows, summary = screen(path, "duckdb", tmp_path / "out.csv")
    assert rows[1][:2] == ["p1", "needs_review"]
    assert "python engine used" in summary


def test_semicolon_delimited_file(tmp_path):
    path = write(tmp_path / "semi.csv", "patient_id;HbA1c;BMI\np1;7,5;30\np2;8.0;30\n")
    duck, _ = screen(path, "duckdb", tmp_path / "duck.csv")
    python, _ = screen(path, "python", tmp_path / "python.csv")
    assert duck == python and len(duck) == 3


def test_stdout_output_matches_file_output(tmp_path):
    path = write(tmp_path / "patients.csv", "\n".join([HEADER, *ROWS[:3]]) + "\n")
    to_file, _ = screen(path, "duckdb", tmp_path / "duck.csv")
    result = CliRunner().invoke(main, ["screen", TRIAL, str(path), "--as-of", "2024-06-01", "--engine", "duckdb"])
    assert result.exit_code == 0
    lines = [r[:2] + r[3:] for r in csv.reader(io.StringIO(result.stdout))]
    assert lines == to_file


def test_several_files_read_in_order(tmp_path):
    first = write(tmp_path / "a.csv", "patient_id,HbA1c\na1,7.5\na2,6\n")
    second = write(tmp_path / "b.csv", "patient_id,HbA1c\nb1,8\nb2,x\n")
    result = CliRunner().invoke(main, ["screen", TRIAL, str(first), str(second), "-o", str(tmp_path / "out.csv"),
                                       "--as-of", "2024-06-01", "--engine", "duckdb"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [r[0] for r in rows[1:]] == ["a1", "a2", "b1", "b2"]      # each file's header skipped


NUMERIC_TRIAL = """Inclusion Criteria:
- BMI between 24 and 40 kg/m2
- HbA1c of 7.0% or more
Exclusion Criteria:
- eGFR < 30 mL/min/1.73m2
- Willingness to participate in the study and to attend every visit
"""
NUMERIC_ROWS = "patient_id,BMI,HbA1c,egfr,I1\nA,30,7.5,60,\nB,18.7,6.1,25,\n\"C,1\",41,,90,\nD,,8,,\nE,30,7.5,60,fail\n"


def test_both_engines_write_the_same_bytes_for_numeric_criteria(tmp_path):
    """Deciding values with their bounds, missing values and review labels are worded alike by both engines."""
    trial = write(tmp_path / "t.txt", NUMERIC_TRIAL)
    data = write(tmp_path / "d.csv", NUMERIC_ROWS)
    outs = {}
    for engine in ("python", "duckdb"):
        outs[engine] = tmp_path / f"{engine}.csv"
        result = CliRunner().invoke(main, ["screen", str(trial), str(data), "-o", str(outs[engine]),
                                           "--as-of", "2024-06-01", "--engine", engine])
        assert result.exit_code == 0, result.output
        assert f"({engine} engine" in result.output
    assert outs["python"].read_bytes() == outs["duckdb"].read_bytes()
    rows = list(csv.DictReader(io.StringIO(outs["duckdb"].read_text("utf-8"))))
    # B: BMI and HbA1c below their bounds, eGFR under 30 (exclusion met); C: BMI above 40, HbA1c missing
    assert rows[1]["reasons"].startswith("I1 fail: BMI 18.7 kg/m² < 24.0 kg/m²; I2 fail: HbA1c 6.1 % < 7.0 %; E1 fail: eGFR 25")
    assert rows[2]["patient_id"] == "C,1" and "I1 fail: BMI 41 kg/m² > 40.0 kg/m²" in rows[2]["reasons"]
    assert "I2 unknown: HbA1c missing" in rows[2]["reasons"]
    assert rows[0]["reasons"] == "E2 review: Willingness to participate…"
    # E: values that pass, but a reviewer's column (I1) says fail
    assert rows[4]["reasons"].startswith("I1 fail: reviewer decision (column I1)") and rows[4]["I1"] == "fail"


def test_infant_bounds_in_days_and_weeks_compare_days_lived_in_both_engines(tmp_path):
    """Counted by hand from the birth dates, as of 2026-01-01: A 29 days, B 27, C 44, D 41."""
    trial = write(tmp_path / "t.txt", "Inclusion Criteria:\n- Infants aged 28 days to 6 months\n- Age 6 weeks or older\n")
    data = write(tmp_path / "d.csv", "patient_id,birth_date\nA,2025-12-03\nB,2025-12-05\nC,2025-11-18\nD,2025-11-21\n")
    expected = {"A": ["pass", "fail"], "B": ["fail", "fail"], "C": ["pass", "pass"], "D": ["pass", "fail"]}
    for engine in ("python", "duckdb"):
        out = tmp_path / f"{engine}.csv"
        result = CliRunner().invoke(main, ["screen", str(trial), str(data), "-o", str(out), "--as-of", "2026-01-01",
                                           "--engine", engine])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8"))))
        assert {r["patient_id"]: [r["I1"], r["I2"]] for r in rows} == expected, engine
        assert "41 days" in rows[3]["reasons"]
