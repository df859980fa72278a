"""The bundled oncology example (trials/example_oncology.txt, patients/demo_oncology.csv) screened with
the `labs` pack: verdicts and every non-pass outcome against tests/cases/demo_oncology_expected.csv,
worked out by hand (the `why` column says how)."""
from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import eligibility

ROOT = Path(__file__).resolve().parents[1]


def test_oncology_example_outcomes_worked_by_hand():
    trial = eligibility.compile_trial(ROOT / "trials" / "example_oncology.txt", registry_files=["labs"])
    expected = {row["patient_id"]: row for row in
                csv.DictReader(open(ROOT / "tests" / "cases" / "demo_oncology_expected.csv", newline=""))}
    results = list(eligibility.screen(trial, ROOT / "patients" / "demo_oncology.csv", as_of=date(2026, 1, 1),
                                      registry_files=["labs"]))
    assert [r.patient_id for r in results] == list(expected)
    for result in results:
        want = expected[result.patient_id]
        not_pass = " ".join(f"{cid}={c.outcome}" for cid, c in result.outcomes.items() if c.outcome != "pass")
        assert (result.verdict, not_pass) == (want["verdict"], want["not_pass"]), (result.patient_id, want["why"])
