"""Jinja2 environment and the page's view of each patient row.

All markup lives in templates/ (package data); Python hands over plain values.
Autoescaping is on for every template, so criterion texts and explanations
from the files are shown as text, never read as markup.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from .inputs import Patient

VERDICT_LABELS = {"eligible": "eligible", "needs_review": "needs review", "ineligible": "ineligible"}


@dataclass(frozen=True)
class CriterionDetail:
    id: str
    outcome: str
    lines: tuple[str, ...]
    by_reviewer: bool


@dataclass(frozen=True)
class PatientRow:
    number: int
    patient_id: str
    verdict: str
    outcomes: tuple[tuple[str, str], ...]
    details: tuple[CriterionDetail, ...]
    notes: tuple[str, ...]
    deceased: str


def patient_row(number: int, patient: Patient, ids: tuple[str, ...]) -> PatientRow:
    """Explanations from the JSONL when present; from the CSV, the short reason of each non-pass criterion."""
    details = []
    for cid, outcome in zip(ids, patient.outcomes):
        if patient.explanations is not None:
            lines = tuple(patient.explanations.get(cid) or ())
        elif cid in patient.reasons:
            lines = (patient.reasons[cid],)
        else:
            lines = ()
        details.append(CriterionDetail(cid, outcome, lines, cid in patient.decided_by_reviewer))
    return PatientRow(number=number, patient_id=patient.patient_id, verdict=patient.verdict,
                      outcomes=tuple(zip(ids, patient.outcomes)), details=tuple(details), notes=patient.notes,
                      deceased=patient.deceased)


def _count(value: int) -> str:
    return f"{value:,}"


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    share = 100 * part / whole
    return f"{share:.1f}%" if 0 < share < 99.95 else f"{share:.0f}%"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("eligibility.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["count"] = _count
    env.filters["percent"] = _percent
    env.globals["verdict_labels"] = VERDICT_LABELS
    return env


def render_to(out_path: Path, context: dict[str, Any]) -> int:
    """Write the page and return its size in bytes; rendering streams, so the page is never held whole."""
    template = environment().get_template("report.html.j2")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8", newline="\n") as handle:
        template.stream(**context).dump(handle)
    return out_path.stat().st_size
