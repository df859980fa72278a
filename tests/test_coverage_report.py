"""The coverage report (`eligibility compile PATHS... --report`, `eligibility.coverage_report`).

tests/cases/ctgov/ holds four records written here in registry phrasing (two
API v2 JSON, one inside a search response; two legacy XML, one with CDATA),
each criterion chosen so its status is known by reading it:

| record | criteria | compiled | partial | manual | fields |
|---|---:|---:|---:|---:|---|
| t2dm_addon.v2.json | 8 | 6 | 0 | 2 (consent, investigator's opinion) | age 18-75, sex ALL |
| nsclc_first_line.v2.json | 7 | 5 | 0 | 2 (life expectancy, swallowing) | age >= 18, sex ALL |
| hf_outpatients.xml | 7 | 4 | 1 ('Poorly controlled hypertension (SBP ...)') | 2 (consent, other trial) | age >= 40, sex All |
| ckd_anemia.xml | 7 | 5 | 1 ('Uncontrolled diabetes ... HbA1c > 10%') | 1 (consent) | age 18-80, sex Female |

and tests/cases/ctgov/broken/ six files that are no trial (empty, binary,
JSON without eligibility module, JSON that is no study, XML without criteria,
truncated XML).
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import eligibility
from eligibility.compile.coverage import normalise_phrase
from eligibility.compile.coverage_report import run_coverage
from shared_paths import SHARED

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases" / "ctgov"
BROKEN = CASES / "broken"
REAL = SHARED / "corpus" / "real_trials_sample.csv"

EXPECTED = {   # name -> (compiled, partial, manual)
    "t2dm_addon.v2.json": (6, 0, 2),
    "nsclc_first_line.v2.json": (5, 0, 2),
    "hf_outpatients.xml": (4, 1, 2),
    "ckd_anemia.xml": (5, 1, 1),
}
BROKEN_CODES = {
    "empty.json": "E-TRIAL-EMPTY",
    "garbage.json": "E-TRIAL-ENCODING",
    "no_criteria.xml": "E-TRIAL-NO-CRITERIA",
    "no_eligibility_module.v2.json": "E-TRIAL-NO-CRITERIA",
    "not_a_study.json": "E-TRIAL-JSON-SHAPE",
    "truncated.xml": "E-TRIAL-XML",
}


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "eligibility", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def without_timing(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "throughput"}


@pytest.fixture(scope="module")
def cases() -> dict:
    return eligibility.coverage_report(CASES, jobs=1).summary()


def test_counts_of_records_written_here(cases):
    assert cases["trials"] == {"records": 10, "read": 4, "failed": 6, "skipped": 0}
    per_trial = {Path(t["name"]).name: (t["compiled"], t["partial"], t["manual"]) for t in cases["per_trial"]}
    assert per_trial == EXPECTED
    c = cases["criteria"]
    assert c["total"] == 29
    assert (c["compiled"]["count"], c["partial"]["count"], c["manual"]["count"]) == (20, 2, 7)
    assert c["computable"] == {"count": 22, "share": round(22 / 29, 4)}
    # 'Chronic heart failure' and 'Histologically confirmed NSCLC': the condition computed, the word left manual
    assert c["with_manual_part"]["count"] == 2
    assert cases["fields"] == {"compiled": 8, "partial": 0, "manual": 0}   # age and sex of each record


def test_concepts_and_phrases(cases):
    numeric = {x["concept"]: x["count"] for x in cases["concepts"]["numeric"]}
    # four age fields and 'Female subjects aged 18-80 years'; eGFR and hemoglobin twice each
    assert numeric == {"age": 5, "egfr": 2, "hba1c": 2, "hemoglobin": 2, "systolic_bp": 2, "alt": 1, "ast": 1,
                       "bmi": 1, "diastolic_bp": 1, "platelets": 1}
    has = {(x["category"], x["code"]): x["count"] for x in cases["concepts"]["has"]}
    assert has[("status", "pregnancy")] == 2 and has[("status", "sex_female")] == 2
    assert has[("condition", "heart_failure")] == 1 and has[("procedure", "kidney_transplant")] == 1
    phrases = {p["phrase"]: p["count"] for p in cases["manual_phrases"]["top"]}
    # 'Signed written informed consent' and '... consent.' are one phrase; numbers read as '#'
    assert cases["manual_phrases"]["top"][0] == {"phrase": "signed written informed consent", "count": 2}
    assert phrases["life expectancy of at least # weeks"] == 1
    assert phrases["uncontrolled diabetes mellitus"] == 1    # a partial criterion's unparsed text


def test_every_broken_record_is_one_line_naming_its_file(cases):
    assert len(cases["failures"]) == len(BROKEN_CODES)
    for line, (name, code) in zip(cases["failures"], sorted(BROKEN_CODES.items())):
        assert "\n" not in line and "Traceback" not in line
        assert line.startswith(str(BROKEN / name)), line
        assert f"error {code}: " in line


def test_normalise_phrase():
    assert normalise_phrase("Patients with  known HIV-infection;") == "known hiv-infection"
    assert normalise_phrase("Life expectancy < 12\n   weeks.") == "life expectancy < # weeks"
    assert normalise_phrase("Subjects who have received ≥2 prior lines") == "received ≥# prior lines"
    assert normalise_phrase("  .  ") == ""


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_the_20_real_trials_compile_and_add_up():
    report = run_coverage([REAL], jobs=1)
    doc = report.summary()
    with REAL.open(newline="", encoding="utf-8") as handle:
        ids = [r["#nct_id"] for r in csv.DictReader(handle) if r["#nct_id"].startswith("NCT")]
    assert len(ids) == 20
    assert doc["failures"] == [] and doc["trials"]["read"] == 20
    assert [t["name"].rpartition(":")[2] for t in doc["per_trial"]] == ids
    assert doc["skipped"] == [f"{REAL}:479: the header row repeated, skipped"]   # two files joined
    c = doc["criteria"]
    assert c["compiled"]["count"] + c["partial"]["count"] + c["manual"]["count"] == c["total"]
    assert c["with_manual_part"]["count"] <= c["computable"]["count"]
    assert sum(t["criteria"] for t in doc["per_trial"]) == c["total"]
    for t in doc["per_trial"]:
        assert t["compiled"] + t["partial"] + t["manual"] == t["criteria"] > 0
    assert c["computable"]["share"] >= 0.5        # README: 50.4 % of 234 (that count held the repeated header)
    assert doc["manual_phrases"]["total"] >= c["manual"]["count"]   # each manual criterion is a phrase at least


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
def test_parallel_and_one_job_give_the_same_summary():
    paths = [CASES, REAL]
    one = run_coverage(paths, jobs=1)
    two = run_coverage(paths, jobs=2)
    assert (one.jobs, two.jobs) == (1, 2)
    assert without_timing(one.summary()) == without_timing(two.summary())
    assert one.to_text().split("Throughput")[0] == two.to_text().split("Throughput")[0]


def test_csv_without_the_criteria_column_and_a_missing_path(tmp_path):
    bad = tmp_path / "trials.csv"
    bad.write_text("nct_id,title\nNCT1,x\n", "utf-8")
    doc = run_coverage([bad, tmp_path / "absent.json"], jobs=1).summary()
    assert doc["failures"] == [
        f"{bad}: error E-TRIAL-CSV: CSV has no 'eligibility_criteria' column (one trial per row)",
        f"{tmp_path / 'absent.json'}: error E-TRIAL-READ: cannot read trial file: No such file or directory"]
    assert doc["trials"]["read"] == 0


def test_public_api():
    assert "coverage_report" in eligibility.__all__
    report = eligibility.coverage_report(str(CASES / "t2dm_addon.v2.json"))   # one path as a string
    assert report.summary()["criteria"]["total"] == 8 and report.jobs == 1


def test_cli_text_report_lists_failures_and_exits_0():
    proc = run("compile", str(CASES), "--report", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Trials: 4 read, 6 failed, of 10 records" in out
    assert "Criteria: 29 — compiled 20 (69.0 %), partial 2 (6.9 %), manual 7 (24.1 %)" in out
    for name, code in BROKEN_CODES.items():
        assert sum(line.strip().startswith(str(BROKEN / name)) and f"error {code}: " in line
                   for line in out.splitlines()) == 1, name
    assert "2 jobs" in out and "criteria/s" in out


def test_cli_json_and_markdown():
    proc = run("compile", str(CASES / "hf_outpatients.xml"), str(BROKEN / "empty.json"), "--report",
               "--report-format", "json", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "eligibility.coverage/1"
    assert doc["criteria"]["total"] == 7 and doc["trials"]["failed"] == 1
    md = run("compile", str(CASES / "hf_outpatients.xml"), "--report", "--report-format", "markdown").stdout
    assert md.startswith("# Coverage report") and "| count | phrase |" in md


def test_cli_nothing_readable_exits_1():
    proc = run("compile", str(BROKEN), "--report")
    assert proc.returncode == 1
    assert "Trials: 0 read, 6 failed" in proc.stdout
    assert proc.stderr.strip() == "error E-COVERAGE-NONE: no trial could be read (6 failed)"


def test_cli_single_trial_unchanged():
    proc = run("compile", str(CASES / "t2dm_addon.v2.json"))
    assert proc.returncode == 0 and "I4  inclusion  manual" in proc.stdout
    two = run("compile", str(CASES / "t2dm_addon.v2.json"), str(CASES / "ckd_anemia.xml"))
    assert two.returncode == 2 and "several paths need --report" in two.stderr
    folder = run("compile", str(CASES))
    assert folder.returncode == 2 and "is a directory" in folder.stderr
