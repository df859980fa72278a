"""`eligibility compile` run as a real command: output, exit codes, and bad input without tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED_JSON = ROOT / "trials" / "ucmsc_t2dm.ctgov.json"
SEED_TXT = ROOT / "trials" / "ucmsc_t2dm.txt"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "eligibility", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_compile_json_prints_the_design_document():
    proc = run("compile", str(SEED_JSON), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "eligibility.trial/1"
    assert doc["trial"]["ids"] == {"org_study_id": "CHIN-PLAGH-ST-003"}
    assert [c["id"] for c in doc["criteria"]] == ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]
    i3 = next(c for c in doc["criteria"] if c["id"] == "I3")
    assert i3["text"] == "24.0 kg/m2 ≤ BMI ≤40.0 kg/m2;"
    assert i3["span"] == [66, 95]
    assert i3["status"] == "compiled" and i3["unparsed"] == []
    assert {k: i3["tree"][k] for k in ("kind", "concept", "low", "high", "canonical_unit")} == {
        "kind": "range", "concept": "bmi", "low": 24.0, "high": 40.0, "canonical_unit": "kg/m2"}
    for crit in doc["criteria"]:
        assert set(crit) >= {"id", "section", "text", "span", "status", "unparsed", "tree"}


def test_compile_text_is_readable():
    proc = run("compile", str(SEED_TXT))   # text is the default format
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Umbilical Cord Mesenchymal Stem Cells in Type 2 Diabetes Mellitus"
    assert lines[1] == "org_study_id CHIN-PLAGH-ST-003"
    assert "I3  inclusion  compiled" in lines
    assert "    tree: BMI 24.0–40.0 kg/m²" in lines
    assert "    tree: HbA1c 7.0–12.0 %" in lines
    assert "    tree: Age 20–65 years" in lines
    assert "    tree: true (no restriction)" in lines    # sex: all
    assert "    tree: Diabetes duration ≤ 20 years" in lines
    assert "I7  inclusion  manual" in lines
    i4 = lines[lines.index("I4  inclusion  compiled") + 2] if "I4  inclusion  compiled" in lines \
        else lines[lines.index("I4  inclusion  partial") + 2]
    assert "Insulin dose per kg 0.5–1.0 U/kg/d [for ≥ 3 months]" in i4
    assert "not any(DPP-4 inhibitor, GLP-1 receptor agonist, SGLT2 inhibitor)" in i4


def test_compiled_json_compiles_back_to_the_same_document(tmp_path):
    first = run("compile", str(SEED_JSON), "--format", "json")
    path = tmp_path / "edited.json"
    path.write_text(first.stdout, "utf-8")
    second = run("compile", str(path), "--format", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)


@pytest.mark.parametrize("command", [[], ["compile"], ["screen"], ["explain"], ["sql"]])
def test_help_on_every_subcommand(command):
    proc = run(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage:")


@pytest.mark.parametrize("args", [["compile"], ["compile", str(SEED_TXT), "--format", "yaml"], ["no-such-command"]])
def test_usage_errors_exit_2(args):
    proc = run(*args)
    assert proc.returncode == 2
    assert "Usage:" in proc.stderr


def _bad(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, "utf-8")
    return path


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.txt"
    proc = run("compile", str(path))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{path}: error E-TRIAL-READ: cannot read trial file: No such file or directory"
    assert proc.stdout == ""


def test_empty_file(tmp_path):
    path = _bad(tmp_path, "empty.txt", "  \n\n")
    proc = run("compile", str(path))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{path}: error E-TRIAL-EMPTY: trial file is empty"


def test_no_criteria_sections_compile_as_inclusion_with_a_warning(tmp_path):
    path = _bad(tmp_path, "nosections.txt", "Title: A trial\nMinimum Age: 18 Years\n\nAdults with diabetes\n")
    proc = run("compile", str(path))
    assert proc.returncode == 0
    assert "I1  inclusion" in proc.stdout
    assert proc.stderr.strip() == (f"{path}: warning W-NO-SECTIONS: no 'Inclusion Criteria' or 'Exclusion Criteria' "
                                   "heading: every item is read as an inclusion criterion")


def test_invalid_json_has_line_column_and_caret(tmp_path):
    path = _bad(tmp_path, "broken.json", '{"protocolSection": {\n  "eligibilityModule": {\n    "sex": ALL\n}}}\n')
    proc = run("compile", str(path))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    # line 3, column 12 is where `ALL` (not a JSON value) starts
    assert lines[0] == f"{path}:3:12: error E-TRIAL-JSON: invalid JSON: Expecting value"
    assert lines[1] == '        "sex": ALL'
    assert lines[2] == "               ^"


def test_invalid_xml(tmp_path):
    path = _bad(tmp_path, "broken.xml", "<clinical_study>\n  <eligibility>\n</clinical_study>\n")
    proc = run("compile", str(path))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{path}:3:3: error E-TRIAL-XML: invalid XML: mismatched tag")


def test_undecodable_bytes(tmp_path):
    path = _bad(tmp_path, "latin1.txt", "Inclusion Criteria:\n1. Caf\xe9 au lait\n".encode("latin-1"))
    proc = run("compile", str(path))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{path}:2:7: error E-TRIAL-ENCODING: not UTF-8 text (byte 0xe9)"


def test_unknown_unit_is_reported_and_other_criteria_still_compile(tmp_path):
    path = _bad(tmp_path, "furlongs.txt", (
        "Title: Unit trouble\n"
        "\n"
        "Inclusion Criteria:\n"
        "1. BMI 25 to 40 kg/m2\n"
        "2. HbA1c ≥ 7 furlongs\n"
        "3. Fasting C-peptide ≥ 1 ng/mL\n"
        "\n"
        "Exclusion Criteria:\n"
        "1. Pregnancy\n"
    ))
    proc = run("compile", str(path), "--format", "json")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if " error " in line]
    assert len(errors) == 1
    where, message = errors[0].split(": error ", 1)
    file, line, column = where.rsplit(":", 2)
    assert file == str(path) and line == "5"
    # the reported column lies on the criterion's text ("HbA1c" starts at column 4)
    assert 4 <= int(column) <= len("2. HbA1c ≥ 7 furlongs")
    assert message.startswith("E-UNIT") and "I2" in message and "furlongs" in message
    caret_lines = proc.stderr.splitlines()[1:3]
    assert caret_lines[0] == "    2. HbA1c ≥ 7 furlongs"
    assert caret_lines[1].strip().startswith("^") and caret_lines[1].index("^") == 4 + int(column) - 1
    doc = json.loads(proc.stdout)     # everything else still compiled and printed
    by_id = {c["id"]: c for c in doc["criteria"]}
    assert set(by_id) == {"I1", "I2", "I3", "E1"}
    assert by_id["I1"]["tree"]["kind"] == "range" and by_id["I1"]["tree"]["concept"] == "bmi"
    assert by_id["I3"]["tree"]["concept"] == "c_peptide_fasting"
    assert by_id["E1"]["tree"] == {**by_id["E1"]["tree"], "kind": "has", "code": "pregnancy"}
    assert [p["code"] for p in by_id["I2"]["problems"]] == [message.split(":")[0]]


def test_bad_age_field_is_collected_not_fatal(tmp_path):
    path = _bad(tmp_path, "age.txt", "Minimum Age: eighteen\nSex: Female\n\nInclusion Criteria:\n1. Pregnancy\n")
    proc = run("compile", str(path))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == (f"{path}:1:14: error E-TRIAL-AGE: age: Minimum Age 'eighteen' is not an age "
                        "such as '18 Years' or '6 Months'")
    assert lines[2] == "                 ^^^^^^^^"
    assert "sex  inclusion  compiled" in proc.stdout and "    tree: female" in proc.stdout
    assert "age  inclusion  manual" in proc.stdout
