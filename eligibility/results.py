"""What `eligibility.evaluate` and `eligibility.screen` return: one result per patient (DESIGN §7, §10).

A result carries the verdict, the short reasons (what the results CSV's
`reasons` column holds) and, per criterion, the outcome and its explanation.
Explanations are worded only when first asked for: screening many patients
for their verdicts need not pay for text nobody reads.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from eligibility.core.patient import Patient
    from eligibility.evaluate.plan import PatientResult as _Evaluated
    from eligibility.evaluate.plan import Plan

Verdict = Literal["eligible", "needs_review", "ineligible"]
OutcomeName = Literal["pass", "fail", "unknown", "review"]
Section = Literal["inclusion", "exclusion"]


class CriterionResult:
    """One criterion's outcome for one patient."""

    __slots__ = ("_owner", "_index", "id", "section", "outcome")

    def __init__(self, owner: PatientResult, index: int, ident: str, section: Section, outcome: OutcomeName) -> None:
        self._owner, self._index = owner, index
        self.id: str = ident
        self.section: Section = section
        self.outcome: OutcomeName = outcome

    @property
    def explanations(self) -> tuple[str, ...]:
        """Every finding behind the outcome: the values seen, the bounds, missing data, the part to review."""
        return self._owner._detail()[0][self._index]

    @property
    def explanation(self) -> str:
        """The findings as one text (`BMI 22.1 kg/m² < 24.0 kg/m²`)."""
        return "; ".join(self.explanations)

    @property
    def reviewer_decision(self) -> bool:
        """True when a reviewer's pass/fail (a column named after the criterion id) decided it."""
        return self._owner._detail()[1][self._index]

    def __repr__(self) -> str:
        return f"CriterionResult(id={self.id!r}, section={self.section!r}, outcome={self.outcome!r})"


class PatientResult:
    """The screening result of one patient: `verdict`, `outcomes[id].outcome`, `.explanation`, `reasons`."""

    __slots__ = ("patient_id", "row", "verdict", "notes", "as_of",
                 "_plan", "_patient", "_outcomes", "_reasons", "_map", "_details")

    def __init__(self, evaluated: _Evaluated, plan: Plan, patient: Patient, as_of: date,
                 extra_notes: tuple[str, ...] = ()) -> None:
        self.patient_id: str = evaluated.patient_id
        self.row: int = evaluated.row             # 1-based position in the input
        self.verdict: Verdict = evaluated.verdict  # type: ignore[assignment]
        # data problems of this patient (a bad cell, a duplicate id, an unknown column)
        self.notes: tuple[str, ...] = tuple(evaluated.notes) + extra_notes
        self.as_of: date = as_of
        self._plan, self._patient = plan, patient
        self._outcomes = evaluated.outcomes
        self._reasons: tuple[str, ...] | None = None
        self._map: dict[str, CriterionResult] | None = None
        self._details: tuple[list[tuple[str, ...]], list[bool]] | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        """Short texts of the data problems and of every non-pass criterion, as in the results CSV's
        `reasons` column (`I3 fail: BMI 22.1 kg/m² < 24.0 kg/m²`)."""
        if self._reasons is None:
            self._reasons = tuple(self._plan.evaluate(self._patient).reasons)
        return self._reasons

    @property
    def outcomes(self) -> Mapping[str, CriterionResult]:
        """Criterion id -> result, in the trial's order (`age`, `sex`, `I1`, ..., `E1`, ...)."""
        if self._map is None:
            self._map = {c.id: CriterionResult(self, k, c.id, c.criterion.section, outcome)  # type: ignore[arg-type]
                         for k, (c, outcome) in enumerate(zip(self._plan.criteria, self._outcomes))}
        return self._map

    def _detail(self) -> tuple[list[tuple[str, ...]], list[bool]]:
        if self._details is None:
            full = self._plan.evaluate(self._patient, detail=True)
            self._details = ([tuple(texts) for texts in full.details or ()], list(full.reviewer or ()))
        return self._details

    def to_dict(self) -> dict[str, Any]:
        """The record `eligibility screen --format jsonl` writes for this patient."""
        return {
            "patient_id": self.patient_id, "row": self.row, "verdict": self.verdict, "as_of": self.as_of.isoformat(),
            "reasons": list(self.reasons),
            "criteria": [{"id": r.id, "section": r.section, "outcome": r.outcome, "explanation": list(r.explanations),
                          "reviewer_decision": r.reviewer_decision} for r in self.outcomes.values()],
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return f"PatientResult(patient_id={self.patient_id!r}, verdict={self.verdict!r})"


class Screening(Iterator[PatientResult]):
    """The results of `eligibility.screen`, one per input row, in input order, produced as they are read.

    `notes` holds what concerns the run rather than one patient (columns
    nobody reads, codes no vocabulary knows); it is complete once every
    result has been taken.
    """

    def __init__(self, results: Iterator[PatientResult], notes: Callable[[], list[str]]) -> None:
        self._results = results
        self._notes = notes

    def __iter__(self) -> Screening:
        return self

    def __next__(self) -> PatientResult:
        return next(self._results)

    @property
    def notes(self) -> list[str]:
        return self._notes()
