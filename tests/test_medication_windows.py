"""Drugs asked for within a window ("Use of opioid analgesics within the past 6 months") meet the drug history.

Dates are counted by hand: as of 2024-07-01, the past 6 months reach back to
about 2024-01-01; a drug stopped 2024-04-01 was taken in them, one stopped
2023-05-01 was not, one taken today always was.
"""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

TRIAL = """Inclusion Criteria:

- Adults

Exclusion Criteria:

- Use of opioid analgesics within the past 6 months
- Current use of statins
"""
MEDICATIONS = [
    # patient, start, stop, RxNorm, description
    ("p1", "2023-10-01", "2024-04-01", "197696", "Oxycodone Hydrochloride 5 MG Oral Tablet"),   # stopped 3 months ago
    ("p2", "2022-01-01", "2023-05-01", "197696", "Oxycodone Hydrochloride 5 MG Oral Tablet"),   # stopped 14 months ago
    ("p3", "2024-06-01", "", "197696", "Oxycodone Hydrochloride 5 MG Oral Tablet"),             # current
    ("p4", "2020-01-01", "", "312961", "Simvastatin 20 MG Oral Tablet"),                        # no opioid
]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "synthea"
    folder.mkdir()
    with open(folder / "patients.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Id", "BIRTHDATE", "DEATHDATE", "GENDER"])
        for pid in ("p1", "p2", "p3", "p4"):
            w.writerow([pid, "1970-01-01", "", "F"])
    with open(folder / "medications.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION"])
        for pid, start, stop, code, text in MEDICATIONS:
            w.writerow([start, stop, pid, "x", "e", code, text])
    (folder / "observations.csv").write_text("DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n")
    (folder / "conditions.csv").write_text("START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION\n")
    return folder


@pytest.mark.parametrize("engine", ["python", "auto"])
def test_opioids_within_six_months(tmp_path, engine):
    trial = tmp_path / "trial.txt"
    trial.write_text(TRIAL)
    out = tmp_path / "out.csv"
    run = subprocess.run([sys.executable, "-m", "eligibility", "screen", str(trial), str(_folder(tmp_path)),
                          "--as-of", "2024-07-01", "--engine", engine, "-o", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = {r["patient_id"]: r for r in csv.DictReader(open(out))}
    assert rows["p1"]["E1"] == "fail" and "until 2024-04-01" in rows["p1"]["reasons"]
    assert rows["p2"]["E1"] == "pass"
    assert rows["p3"]["E1"] == "fail"
    assert rows["p4"]["E1"] == "pass" and rows["p4"]["E2"] == "fail"
