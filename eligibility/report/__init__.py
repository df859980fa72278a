"""One self-contained HTML page about a screening run: trial panel, attrition funnel, patient table.

    from eligibility.report import write_report
    stats = write_report(trial_doc, Path("results.csv"), Path("report.html"),
                         details_path=Path("results.jsonl"))

It reads only the documents the CLI writes (the compiled-trial JSON and the
results CSV or JSONL), streaming, so a run of a million patients is summarised
in bounded memory; the patient table keeps the first `patient_cap` rows and the
page says so.  `python -m eligibility.report` is the command-line form.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .aggregate import DataProblems, FunnelStep, Tally
from .charts import funnel_chart, outcome_chart
from .errors import ReportInputError
from .inputs import OUTCOMES, VERDICTS, Patient, is_jsonl, read_jsonl, read_results
from .render import patient_row, render_to
from .trial_view import check_trial, criterion_views

__all__ = ["write_report", "ReportStats", "ReportInputError", "FunnelStep", "DataProblems", "DEFAULT_PATIENT_CAP"]

DEFAULT_PATIENT_CAP = 5000


@dataclass(frozen=True)
class ReportStats:
    """What the page states, for callers that print a summary or check a run."""

    screened: int
    verdicts: dict[str, int]
    funnel: tuple[FunnelStep, ...]
    outcome_counts: dict[str, dict[str, int]]
    data_problems: tuple[DataProblems, ...]
    table_rows: int
    patient_cap: int
    capped: bool
    has_details: bool
    bytes_written: int

    def summary_line(self, out_path: Path | str) -> str:
        """One line for stderr: where the page went, its size, how many patients it covers and lists."""
        listed = f"{self.table_rows:,} listed" + (f" (capped at {self.patient_cap:,})" if self.capped else "")
        return f"report: {out_path} ({self.bytes_written:,} bytes; {self.screened:,} patients, {listed})"


def _with_details(patients: Iterator[Patient], details_path: Path, ids: tuple[str, ...],
                  cap: int) -> Iterator[Patient]:
    """Attach the JSONL explanations to the rows that go into the table; both files are in input order."""
    if not details_path.is_file():
        raise ReportInputError("no such details file", code="E-REPORT-FILE", file=str(details_path))
    if not is_jsonl(details_path):
        raise ReportInputError("the details file must be the JSONL of `eligibility screen --format jsonl`",
                               code="E-REPORT-DETAILS", file=str(details_path))
    details = read_jsonl(details_path, ids)
    for n, patient in enumerate(patients):
        if n < cap:
            found = next(details, None)
            if found is None:
                raise ReportInputError(f"the details file ends before patient {patient.patient_id!r} "
                                       f"(results line {patient.line})", code="E-REPORT-DETAILS",
                                       file=str(details_path))
            if found.patient_id != patient.patient_id:
                raise ReportInputError(f"patient {found.patient_id!r} here, {patient.patient_id!r} at line "
                                       f"{patient.line} of the results: not the same run",
                                       code="E-REPORT-DETAILS", file=str(details_path), line=found.line)
            patient = dataclasses.replace(patient, explanations=found.explanations,
                                          decided_by_reviewer=found.decided_by_reviewer)
        yield patient


def write_report(trial_doc: dict, results_path: Path, out_path: Path, *,
                 details_path: Path | None = None, patient_cap: int = DEFAULT_PATIENT_CAP) -> ReportStats:
    """Write the HTML report for `results_path` (CSV or JSONL from `eligibility screen`) to `out_path`.

    `trial_doc` is the compiled trial (`eligibility compile TRIAL --format json`,
    parsed) the results were screened with.  `details_path`, the JSONL of the
    same run, gives the patient table full explanations when the results are a
    CSV.  Raises ReportInputError (a ValueError with `code`, `file`, `line`) for
    input that does not follow the output contract; nothing is written then.
    """
    if patient_cap < 0:
        raise ValueError("patient_cap must be zero or more")
    results_path, out_path = Path(results_path), Path(out_path)
    check_trial(trial_doc)
    ids = tuple(c["id"] for c in trial_doc["criteria"])
    sections = tuple(c["section"] for c in trial_doc["criteria"])
    patients = read_results(results_path, ids)
    if details_path is not None:
        patients = _with_details(patients, Path(details_path), ids, patient_cap)
    tally = Tally(ids, sections, patient_cap).add_all(patients)
    funnel = tally.funnel()
    counts = tally.outcome_counts()
    problems = tally.data_problems()
    trial = trial_doc.get("trial") if isinstance(trial_doc.get("trial"), dict) else {}
    context = {
        "title": trial.get("title") or "Untitled trial",
        "trial_ids": trial.get("ids") if isinstance(trial.get("ids"), dict) else {},
        "trial_source": trial.get("source"),
        "results_name": results_path.name,
        "details_name": Path(details_path).name if details_path is not None else None,
        "criteria": criterion_views(trial_doc),
        "ids": ids,
        "screened": tally.screened,
        "verdicts": tally.verdicts,
        "verdict_order": VERDICTS,
        "outcome_order": OUTCOMES,
        "funnel": funnel,
        "funnel_chart": funnel_chart(tally.screened, funnel),
        "outcome_chart": outcome_chart(tally.screened, ids, counts),
        "counts": counts,
        "problems": problems,
        "rows_with_notes": tally.rows_with_notes,
        "deceased": tally.deceased,
        "note_examples": tally.note_examples,
        "patients": [patient_row(n, p, ids) for n, p in enumerate(tally.table, start=1)],
        "table_verdicts": {v: sum(p.verdict == v for p in tally.table) for v in VERDICTS},
        "patient_cap": patient_cap,
        "capped": tally.capped,
        "has_details": tally.has_details,
    }
    size = render_to(out_path, context)
    return ReportStats(
        screened=tally.screened, verdicts=dict(tally.verdicts), funnel=funnel, outcome_counts=counts,
        data_problems=problems, table_rows=len(tally.table), patient_cap=patient_cap, capped=tally.capped,
        has_details=tally.has_details, bytes_written=size)
