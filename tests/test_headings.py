"""Section headings as trials write them, text that is no criterion, and text with no heading at all.

Cases are data (tests/cases/headings.jsonl, expectations written by hand from
each text): the criteria (id, section, text) and the other text (headings,
notes, narrative sections) the public API reports, and the warnings.  Every
case, and every real trial of the shared corpus, must also account for every
character: each non-space character lies in a criterion, in reported other
text, or in a list marker.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

import eligibility
from shared_paths import SHARED

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "headings.jsonl").read_text("utf-8").splitlines()
         if line.strip()]
REAL = SHARED / "corpus" / "real_trials_sample.csv"
# what may stand outside every criterion and every reported text: list markers only
_MARKER = re.compile(r"\(?(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})[.)-]|\((?:\d{1,3}|[a-zA-Z])\)|[*\-+•·▪◦‣⁃○●■□➢➤–—o\uf0b7\uf0a7]")


def _real_trials() -> list[tuple[str, str]]:
    if not REAL.exists():
        return []
    with REAL.open(newline="", encoding="utf-8") as handle:
        return [(r["#nct_id"], r["eligibility_criteria"]) for r in csv.DictReader(handle) if r["#nct_id"].startswith("NCT")]


def unaccounted(trial) -> list[str]:
    """Runs of text that are in no criterion, no reported other text, and are no list marker."""
    text = trial.criteria_text
    covered = bytearray(len(text))
    for start, end in [c.span for c in trial.criteria] + [o.span for o in trial.other_text]:
        covered[start:end] = b"\x01" * (end - start)
    gaps = re.sub(r"\S", lambda m: m.group() if not covered[m.start()] else " ", text)
    return [run for run in gaps.split() if not _MARKER.fullmatch(run)]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_heading_cases(case):
    trial = eligibility.compile_trial(case["text"])
    assert [[c.id, c.section, c.text] for c in trial.criteria] == case["criteria"]
    assert [[o.kind, o.section, o.text] for o in trial.other_text] == case["other"]
    assert [w.code for w in trial.warnings] == case["warnings"]
    for block in trial.other_text:
        assert case["text"][block.span[0]:block.span[1]] == block.text
    assert unaccounted(trial) == []


@pytest.mark.parametrize("form, section", [
    ("Subjects will be included if:", "inclusion"), ("Subjects will be excluded if:", "exclusion"),
    ("Inclusion conditions:", "inclusion"), ("Exclusion conditions:", "exclusion"),
    ("Key Inclusion Criteria", "inclusion"), ("Key Exclusion Criteria", "exclusion"),
    ("INCLUSION CRITERIA", "inclusion"), ("Inclusion:", "inclusion"),
    ("Participants must meet all of the following", "inclusion"), ("Patients are not eligible if", "exclusion"),
    ("Critères d'inclusion", "inclusion"), ("Critères de non-inclusion", "exclusion"),
    ("Critères d'exclusion", "exclusion"), ("Criterios de inclusión", "inclusion"),
    ("Criterios de exclusión", "exclusion"), ("Einschlusskriterien", "inclusion"), ("Ausschlusskriterien", "exclusion"),
    ("Criteri di esclusione", "exclusion"), ("Critérios de inclusão", "inclusion"),
])
def test_every_form_the_issue_names_opens_its_section(form, section):
    trial = eligibility.compile_trial(f"{form}\n- Age ≥ 18 years\n")
    assert [(o.kind, o.section, o.text) for o in trial.other_text] == [("heading", section, form)]
    assert [(c.id, c.section) for c in trial.criteria] == [("I1" if section == "inclusion" else "E1", section)]
    assert trial.warnings == ()


@pytest.mark.parametrize("line", [
    "Inclusion of the patient in the registry is voluntary",          # a sentence, not a heading
    "Patients are not eligible if they had a stroke",
    "- Meets inclusion criteria of the parent study",
])
def test_sentences_that_only_mention_inclusion_stay_criteria(line):
    trial = eligibility.compile_trial(f"Inclusion Criteria:\n- Age ≥ 18 years\n{line if line.startswith('-') else '- ' + line}\n")
    assert [c.text for c in trial.criteria] == ["Age ≥ 18 years", line.lstrip("- ")]


def test_no_heading_warning_is_in_the_json():
    trial = eligibility.compile_trial("Age 18 to 65 years\nBMI below 30 kg/m2\n")
    doc = json.loads(trial.to_json())
    assert [w["code"] for w in doc["warnings"]] == ["W-NO-SECTIONS"]
    assert "inclusion" in doc["warnings"][0]["message"]
    assert [c["section"] for c in doc["criteria"]] == ["inclusion", "inclusion"]
    assert eligibility.load_trial(trial.to_json()).warnings == trial.warnings


def test_a_plain_text_file_without_headings_compiles(tmp_path):
    path = tmp_path / "pasted.txt"
    path.write_text("Title: Pasted criteria\nAdults with type 2 diabetes\nHbA1c 7-10%\n", encoding="utf-8")
    trial = eligibility.compile_trial(path)
    assert [(c.id, c.section, c.text) for c in trial.criteria] == [
        ("I1", "inclusion", "Adults with type 2 diabetes"), ("I2", "inclusion", "HbA1c 7-10%")]
    assert trial.trial.title == "Pasted criteria" and [w.code for w in trial.warnings] == ["W-NO-SECTIONS"]


@pytest.mark.skipif(not REAL.exists(), reason="shared corpus not present")
@pytest.mark.parametrize("nct, text", _real_trials(), ids=[n for n, _ in _real_trials()])
def test_real_trials_account_for_every_character(nct, text):
    trial = eligibility.compile_trial(text)
    assert unaccounted(trial) == []
    assert trial.warnings == ()                       # every real trial has its headings
    assert {o.kind for o in trial.other_text} >= {"heading"}


@pytest.mark.parametrize("engine", ["python", "duckdb"])
def test_screening_a_trial_without_headings_says_so(tmp_path, monkeypatch, engine):
    from click.testing import CliRunner

    from eligibility.cli import main

    monkeypatch.setenv("ELIGIBILITY_NO_CACHE", "1")
    (tmp_path / "t.txt").write_text("Title: Pasted\nBMI 25-40 kg/m2\n", encoding="utf-8")
    (tmp_path / "d.csv").write_text("patient_id,BMI\nA,30\nB,45\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["screen", str(tmp_path / "t.txt"), str(tmp_path / "d.csv"), "-o", str(out),
                                       "--as-of", "2026-01-01", "--engine", engine])
    assert result.exit_code == 0
    assert "warning W-NO-SECTIONS" in result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["patient_id"], r["I1"], r["verdict"]) for r in rows] == [("A", "pass", "eligible"), ("B", "fail", "ineligible")]
