"""The HTML screening report without a browser: numbers, cap, inputs, errors (eligibility/report/).

The small trial and the nine patients below are written by hand; every expected
count in FUNNEL, TOTALS and VERDICTS was worked out by hand from the table of
outcomes (the working is in the comments), not taken from the code.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tracemalloc
from html.parser import HTMLParser
from pathlib import Path

import pytest

from eligibility.report import ReportInputError, write_report
from eligibility.report.trial_view import segments

ROOT = Path(__file__).resolve().parent.parent

CRITERIA_TEXT = "Inclusion:\n1. HbA1c 7-10%\n2. BMI >= 25 kg/m2 as measured\nExclusion:\n1. ALT > 3 x ULN\n"
TRIAL = {
    "schema": "eligibility.trial/1",
    "trial": {"title": "Hand-made <test> trial", "ids": {"org_study_id": "T-1"}},
    "criteria_text": CRITERIA_TEXT,
    "criteria": [
        {"id": "I1", "section": "inclusion", "text": "HbA1c 7-10%", "span": [14, 25], "status": "compiled",
         "unparsed": [], "problems": [],
         "tree": {"kind": "range", "concept": "hba1c", "low": 7.0, "high": 10.0, "low_inclusive": True,
                  "high_inclusive": True, "unit": "%", "canonical_low": 7.0, "canonical_high": 10.0,
                  "canonical_unit": "%", "span": [14, 25], "qualifiers": {}}},
        # "BMI >= 25 kg/m2" is [29, 44); " as measured" is left uncompiled: unparsed [45, 56).
        {"id": "I2", "section": "inclusion", "text": "BMI >= 25 kg/m2 as measured", "span": [29, 56],
         "status": "partial", "unparsed": [[45, 56]], "problems": [],
         "tree": {"kind": "compare", "concept": "bmi", "op": ">=", "value": 25.0, "unit": "kg/m2",
                  "canonical_value": 25.0, "canonical_unit": "kg/m2", "span": [29, 44], "qualifiers": {}}},
        {"id": "E1", "section": "exclusion", "text": "ALT > 3 x ULN", "span": [71, 84], "status": "compiled",
         "unparsed": [], "problems": [],
         "tree": {"kind": "compare", "concept": "alt", "op": ">", "value": 3.0, "unit": "x ULN",
                  "canonical_value": 3.0, "canonical_unit": "{ULN}", "span": [71, 84], "qualifiers": {}}},
    ],
}
IDS = ["I1", "I2", "E1"]

# patient, verdict, row-level entries, outcomes I1 I2 E1, reasons of the non-pass criteria
PATIENTS = [
    ("P1", "eligible", [], ("pass", "pass", "pass"), {}),
    ("P2", "ineligible", [], ("fail", "pass", "pass"), {"I1": "HbA1c 6.1 % < 7 %"}),
    ("P3", "ineligible", [], ("fail", "fail", "fail"),
     {"I1": "HbA1c 11 % > 10 %", "I2": "BMI 20 kg/m² < 25 kg/m²", "E1": "ALT 5 x ULN > 3 x ULN"}),
    ("P4", "ineligible", [], ("unknown", "fail", "pass"), {"I1": "HbA1c missing", "I2": "BMI 21 kg/m² < 25 kg/m²"}),
    ("P5", "needs_review", [], ("pass", "unknown", "review"),
     {"I2": "BMI rejected: 'abc' is not a number", "E1": "ALT: reviewer must check the reference range"}),
    ("P6", "ineligible", [], ("review", "pass", "fail"), {"I1": "HbA1c: a person decides", "E1": "ALT 4 x ULN > 3 x ULN"}),
    ("P7", "needs_review", [], ("pass", "pass", "unknown"), {"E1": "ALT 900.0 is outside the plausible range 0–500 U/L"}),
    ("P8", "ineligible", ["deceased 2020-01-01"], ("pass", "pass", "pass"), {}),
    ("P9", "needs_review", ["data: duplicate id P1 (first at row 1)"], ("pass", "pass", "review"),
     {"E1": "ALT: reviewer must check the reference range"}),
]
VERDICTS = {"eligible": 1, "needs_review": 3, "ineligible": 5}   # P1 | P5 P7 P9 | P2 P3 P4 P6 P8
# step: entering, failed, unknown, review, passed, remaining, all_passed
FUNNEL = {
    "deceased": (9, 1, 0, 0, 8, 8, 8),   # P8 died before the as-of date: out before any criterion
    "I1": (8, 2, 1, 1, 4, 6, 4),         # P2 P3 fail; P4 unknown; P6 review; P1 P5 P7 P9 pass
    "I2": (6, 1, 1, 0, 4, 5, 3),         # of P1 P4 P5 P6 P7 P9: P4 fails, P5 unknown; still all-pass: P1 P7 P9
    "E1": (5, 1, 1, 2, 1, 4, 1),         # of P1 P5 P6 P7 P9: P6 fails, P7 unknown, P5 P9 review; P1 all-pass
}
TOTALS = {  # every patient, each criterion on its own
    "I1": {"pass": 5, "fail": 2, "unknown": 1, "review": 1},
    "I2": {"pass": 6, "fail": 2, "unknown": 1, "review": 0},
    "E1": {"pass": 4, "fail": 2, "unknown": 1, "review": 2},
}
PROBLEMS = {"I1": (1, 1, 0), "I2": (1, 0, 1), "E1": (1, 0, 1)}   # unknown, missing, rejected


def reason_list(entries: list[str], outcomes: tuple[str, ...], reasons: dict[str, str]) -> list[str]:
    return [*entries, *(f"{cid} {o}: {reasons[cid]}" for cid, o in zip(IDS, outcomes) if o != "pass")]


def write_csv(path: Path, rows=PATIENTS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, quoting=csv.QUOTE_ALL)
        handle.write("patient_id,verdict,reasons," + ",".join(IDS) + "\n")
        for pid, verdict, entries, outcomes, reasons in rows:
            out.writerow([pid, verdict, "; ".join(reason_list(entries, outcomes, reasons)), *outcomes])
    return path


def write_jsonl(path: Path, rows=PATIENTS) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for n, (pid, verdict, entries, outcomes, reasons) in enumerate(rows, start=1):
            criteria = [{"id": cid, "section": "exclusion" if cid.startswith("E") else "inclusion", "outcome": o,
                         "explanation": [f"{cid} detail for {pid}: {reasons.get(cid, 'within limits')}"],
                         "reviewer_decision": False} for cid, o in zip(IDS, outcomes)]
            notes = [e for e in entries if e.startswith("data:")]
            handle.write(json.dumps({"patient_id": pid, "row": n, "verdict": verdict, "as_of": "2026-01-01",
                                     "reasons": reason_list(entries, outcomes, reasons), "criteria": criteria,
                                     "notes": notes}, ensure_ascii=False) + "\n")
    return path


class Page(HTMLParser):
    """What the tests read back from the page: funnel rows, table rows, problem rows, marks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.funnel: dict[str, dict[str, int]] = {}
        self.problems: dict[str, dict[str, int]] = {}
        self.patients: list[str] = []
        self.marks: list[tuple[str, str]] = []
        self._row: dict[str, int] | None = None
        self._mark: str | None = None
        self._text = ""
        self.cap_note = ""
        self._in_cap = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-step" in a:
            self._row = self.funnel.setdefault(a["data-step"], {})
        elif tag == "tr" and "data-problem" in a:
            self._row = self.problems.setdefault(a["data-problem"], {})
        elif tag == "td" and "data-count" in a and self._row is not None:
            self._row[a["data-count"]] = int(a["data-value"])
        elif tag == "tbody" and "data-id" in a:
            self.patients.append(a["data-id"])
        elif tag == "mark" and "seg" in (a.get("class") or ""):
            self._mark, self._text = a["class"].split()[-1], ""
        elif tag == "p" and a.get("id") == "cap-note":
            self._in_cap = True

    def handle_endtag(self, tag):
        if tag == "mark" and self._mark:
            self.marks.append((self._mark, self._text))
            self._mark = None
        elif tag == "p":
            self._in_cap = False

    def handle_data(self, data):
        if self._mark:
            self._text += data
        if self._in_cap:
            self.cap_note += data


FIELDS = ("entering", "failed", "unknown", "review", "passed", "remaining", "all_passed")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_funnel_totals_and_problems_equal_the_hand_counts(tmp_path, fmt):
    results = (write_csv if fmt == "csv" else write_jsonl)(tmp_path / f"results.{fmt}")
    stats = write_report(TRIAL, results, tmp_path / "report.html")
    assert stats.screened == 9
    assert stats.verdicts == VERDICTS
    assert {s.id: tuple(getattr(s, f) for f in FIELDS) for s in stats.funnel} == FUNNEL
    assert stats.outcome_counts == TOTALS
    assert {p.id: (p.unknown, p.missing, p.rejected) for p in stats.data_problems if p.unknown} == PROBLEMS
    page = Page((tmp_path / "report.html").read_text("utf-8"))
    assert page.funnel.pop("screened")["remaining"] == 9
    assert {k: tuple(v[f] for f in FIELDS) for k, v in page.funnel.items()} == FUNNEL
    assert {k: (v["unknown"], v["missing"], v["rejected"]) for k, v in page.problems.items()} == PROBLEMS
    assert page.patients == [p[0] for p in PATIENTS]


def test_the_last_step_leaves_eligible_plus_needs_review(tmp_path):
    """The funnel's invariant, on the hand data: what remains is exactly who was not ruled out."""
    stats = write_report(TRIAL, write_csv(tmp_path / "r.csv"), tmp_path / "r.html")
    assert stats.funnel[-1].remaining == VERDICTS["eligible"] + VERDICTS["needs_review"]
    assert stats.funnel[-1].all_passed == VERDICTS["eligible"]


def test_explanations_come_from_the_jsonl_when_given(tmp_path):
    results, details = write_csv(tmp_path / "r.csv"), write_jsonl(tmp_path / "r.jsonl")
    plain = write_report(TRIAL, results, tmp_path / "plain.html")
    full = write_report(TRIAL, results, tmp_path / "full.html", details_path=details)
    assert plain.funnel == full.funnel and not plain.has_details and full.has_details
    plain_html, full_html = (tmp_path / "plain.html").read_text("utf-8"), (tmp_path / "full.html").read_text("utf-8")
    assert "I1 detail for P1: within limits" in full_html and "detail for" not in plain_html
    # from the CSV alone: the short reason of each non-pass criterion, and the row-level entries
    assert "BMI rejected: &#39;abc&#39; is not a number" in plain_html
    assert "deceased 2020-01-01" in plain_html and "duplicate id P1" in plain_html


def test_details_from_another_run_are_refused(tmp_path):
    results = write_csv(tmp_path / "r.csv")
    details = write_jsonl(tmp_path / "other.jsonl", rows=[PATIENTS[1], PATIENTS[0], *PATIENTS[2:]])
    with pytest.raises(ReportInputError) as caught:
        write_report(TRIAL, results, tmp_path / "r.html", details_path=details)
    assert caught.value.code == "E-REPORT-DETAILS" and caught.value.line == 1
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("cap", [0, 4, 9, 50])
def test_patient_table_cap_is_respected_and_stated(tmp_path, cap):
    stats = write_report(TRIAL, write_csv(tmp_path / "r.csv"), tmp_path / "r.html", patient_cap=cap)
    page = Page((tmp_path / "r.html").read_text("utf-8"))
    listed = min(cap, 9)
    assert stats.table_rows == listed == len(page.patients)
    assert page.patients == [p[0] for p in PATIENTS[:listed]]
    assert stats.capped == (cap < 9)
    note = " ".join(page.cap_note.split())
    assert f"capped at {cap:,} rows" in note
    assert (f"first {listed} of 9 patients" in note) if cap < 9 else ("lists all 9 patients" in note)
    assert stats.funnel[-1].remaining == 4   # the counts still cover every patient


def test_spans_are_offsets_into_the_criteria_text(tmp_path):
    """I2: the compare node [29, 44) and the unparsed [45, 56) sit at 0-15 and 16-27 of the criterion's text."""
    runs, note = segments(TRIAL["criteria"][1], CRITERIA_TEXT)
    assert [(s.kind, s.text) for s in runs] == [
        ("compiled", "BMI >= 25 kg/m2"), (None, " "), ("unparsed", "as measured")] and note == ""
    write_report(TRIAL, write_csv(tmp_path / "r.csv"), tmp_path / "r.html")
    page = Page((tmp_path / "r.html").read_text("utf-8"))
    assert ("seg-unparsed", "[not compiled: as measured]") in page.marks
    assert ("seg-compiled", "ALT > 3 x ULN") in page.marks


def test_spans_that_do_not_match_the_text_are_not_drawn():
    moved = dict(TRIAL["criteria"][1], span=[30, 57])
    runs, note = segments(moved, CRITERIA_TEXT)
    assert [(s.kind, s.text) for s in runs] == [(None, moved["text"])] and "do not match" in note


def test_texts_from_the_files_are_escaped(tmp_path):
    rows = [("<b>P1</b>", "eligible", [], ("pass", "pass", "pass"), {})]
    write_report(TRIAL, write_csv(tmp_path / "r.csv", rows), tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text("utf-8")
    assert "<b>P1</b>" not in html and "&lt;b&gt;P1&lt;/b&gt;" in html
    assert "Hand-made &lt;test&gt; trial" in html


def test_page_is_self_contained(tmp_path):
    write_report(TRIAL, write_csv(tmp_path / "r.csv"), tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text("utf-8")
    for reference in ("http://", "https://", "<link", " src=", "@import"):
        assert reference not in html


CSV_HEADER = "patient_id,verdict,reasons,I1,I2,E1\n"
BAD_RESULTS = [
    # (file name, content, code, line, words in the message)
    ("short.csv", CSV_HEADER + '"P1","eligible","","pass","pass","pass"\n"P2","eligible","","pass","pass"\n',
     "E-REPORT-ROW", 3, "row has 5 fields, the header has 6"),
    ("outcome.csv", CSV_HEADER + '"P1","eligible","","pass","maybe","pass"\n', "E-REPORT-OUTCOME", 2, "'maybe'"),
    ("verdict.csv", CSV_HEADER + '"P1","eligible","I1 fail: x","fail","pass","pass"\n', "E-REPORT-VERDICT", 2,
     "contradicts"),
    ("columns.csv", "patient_id,verdict,reasons,I1,I2\n", "E-REPORT-HEADER", 1, "missing: E1"),
    ("header.csv", "id,verdict,reasons,I1,I2,E1\n", "E-REPORT-HEADER", 1, "patient_id"),
    ("json.jsonl", json.dumps({"patient_id": "P1", "verdict": "eligible", "criteria": [
        {"id": c, "outcome": "pass"} for c in IDS]}) + "\n{\"patient_id\": \"P2\",\n", "E-REPORT-JSON", 2, "not JSON"),
    ("criteria.jsonl", json.dumps({"patient_id": "P1", "verdict": "eligible", "criteria": [
        {"id": "I1", "outcome": "pass"}]}) + "\n", "E-REPORT-ROW", 1, "missing: I2, E1"),
]


@pytest.mark.parametrize("name,content,code,line,words", BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS])
def test_malformed_results_give_one_line_naming_file_and_line(tmp_path, name, content, code, line, words):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportInputError) as caught:
        write_report(TRIAL, path, tmp_path / "r.html")
    err = caught.value
    assert isinstance(err, ValueError) and err.code == code and err.line == line
    text = str(err)
    assert "\n" not in text and text.startswith(f"{path}:{line}") and f"error {code}:" in text and words in text
    assert not (tmp_path / "r.html").exists()


def test_command_line_writes_the_page_and_reports_bad_input_in_one_line(tmp_path):
    trial = tmp_path / "trial.json"
    trial.write_text(json.dumps(TRIAL), encoding="utf-8")
    results = write_csv(tmp_path / "r.csv")
    run = [sys.executable, "-m", "eligibility.report"]
    ok = subprocess.run([*run, str(results), "--trial", str(trial), "-o", str(tmp_path / "r.html")],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert Page((tmp_path / "r.html").read_text("utf-8")).funnel["E1"]["remaining"] == 4
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_RESULTS[1][1], encoding="utf-8")
    failed = subprocess.run([*run, str(bad), "--trial", str(trial), "-o", str(tmp_path / "bad.html")],
                            capture_output=True, text=True, cwd=ROOT)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [f"{bad}:2: error E-REPORT-OUTCOME: patient 'P1': criterion I2 "
                                                  "outcome 'maybe' is not one of pass, fail, unknown, review"]
    trial.write_text('{"criteria": [}', encoding="utf-8")
    broken = subprocess.run([*run, str(results), "--trial", str(trial), "-o", str(tmp_path / "x.html")],
                            capture_output=True, text=True, cwd=ROOT)
    assert broken.returncode == 1 and broken.stderr.startswith(f"{trial}:1:15: error E-REPORT-TRIAL")
    usage = subprocess.run([*run, str(results)], capture_output=True, text=True, cwd=ROOT)
    assert usage.returncode == 2


def test_reading_is_streamed_in_bounded_memory(tmp_path):
    """12,500 rows (a ~17 MB file) are summarised while Python holds a small fraction of that."""
    path = tmp_path / "big.csv"
    row = '"P{n}","needs_review","I1 unknown: HbA1c missing{pad}; E1 review: ALT needs a person","unknown","pass","review"\n'
    with path.open("w", encoding="utf-8") as handle:
        handle.write(CSV_HEADER)
        for n in range(12_500):
            handle.write(row.format(n=n, pad=" " * 1200))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        stats = write_report(TRIAL, path, tmp_path / "big.html", patient_cap=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.screened == 12_500 and stats.table_rows == 100
    assert stats.funnel[-1].review == 12_500 and stats.data_problems[0].missing == 12_500
    assert size > 15_000_000 and peak < size / 5, (size, peak)
