"""One pass over the results: verdict counts, the attrition funnel, outcome counts, data problems.

Memory stays bounded whatever the number of patients: counters per criterion,
a few example texts per criterion, and the first `patient_cap` rows for the
patient table.

The funnel follows the trial order.  A patient "enters" a step while no earlier
criterion has failed; a fail at the step removes them, while unknown and review
leave them in (they are not ruled out, only undecided).  So the last step's
"remaining" equals the eligible plus needs-review count, and "passed every
criterion so far" ends at the eligible count.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .inputs import OUTCOMES, VERDICTS, Patient

_EXAMPLES = 3
DECEASED = "deceased"
_NOTE_EXAMPLES = 5


@dataclass(frozen=True)
class FunnelStep:
    id: str
    section: str
    entering: int
    failed: int
    unknown: int
    review: int
    passed: int
    remaining: int
    all_passed: int


@dataclass(frozen=True)
class DataProblems:
    """Unknown outcomes of one criterion, split by what the reason says was wrong with the data."""

    id: str
    unknown: int
    missing: int
    rejected: int
    unexplained: int
    examples: tuple[tuple[str, str], ...]


def problem_kind(reason: str) -> str:
    """`missing` (no value, not recorded), `rejected` (a value was there but unusable), `unexplained` (no text).

    A criterion can be unknown for several parts at once; any rejected value
    makes it `rejected`, since that is the one a data team can fix at source.
    """
    text = reason.lower()
    if not text.strip():
        return "unexplained"
    if "rejected" in text:
        return "rejected"
    if "missing" in text or "not recorded" in text:
        return "missing"
    return "rejected"


@dataclass
class Tally:
    ids: Sequence[str]
    sections: Sequence[str]
    patient_cap: int
    screened: int = 0
    verdicts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    table: list[Patient] = field(default_factory=list)
    rows_with_notes: int = 0
    note_examples: list[str] = field(default_factory=list)
    has_details: bool = False
    deceased: int = 0

    def __post_init__(self) -> None:
        n = len(self.ids)
        self._totals = [dict.fromkeys(OUTCOMES, 0) for _ in range(n)]
        self._steps = [dict.fromkeys(OUTCOMES, 0) for _ in range(n)]
        self._all_passed = [0] * n
        self._problems = [{"missing": 0, "rejected": 0, "unexplained": 0} for _ in range(n)]
        self._examples: list[list[tuple[str, str]]] = [[] for _ in range(n)]

    def add(self, patient: Patient) -> None:
        self.screened += 1
        self.verdicts[patient.verdict] += 1
        # Death on or before the as-of date rules a patient out before any criterion (docs/patient-data.md).
        alive = clean = not patient.deceased
        self.deceased += not alive
        for k, outcome in enumerate(patient.outcomes):
            self._totals[k][outcome] += 1
            if alive:
                self._steps[k][outcome] += 1
                alive = outcome != "fail"
            clean = clean and outcome == "pass"
            self._all_passed[k] += clean
            if outcome == "unknown":
                self._problem(k, patient.reasons.get(self.ids[k], ""))
        if patient.notes:
            self.rows_with_notes += 1
            for note in patient.notes:
                if len(self.note_examples) < _NOTE_EXAMPLES and note not in self.note_examples:
                    self.note_examples.append(note)
        if patient.explanations is not None:
            self.has_details = True
        if len(self.table) < self.patient_cap:
            self.table.append(patient)

    def _problem(self, k: int, reason: str) -> None:
        kind = problem_kind(reason)
        self._problems[k][kind] += 1
        examples = self._examples[k]
        if reason and len(examples) < _EXAMPLES and all(text != reason for _, text in examples):
            examples.append((kind, reason))

    def add_all(self, patients: Iterable[Patient]) -> "Tally":
        for patient in patients:
            self.add(patient)
        return self

    @property
    def capped(self) -> bool:
        return self.screened > len(self.table)

    def outcome_counts(self) -> dict[str, dict[str, int]]:
        return {cid: dict(counts) for cid, counts in zip(self.ids, self._totals)}

    def funnel(self) -> tuple[FunnelStep, ...]:
        """The criteria in trial order, preceded by a `deceased` step when any patient died by the as-of date."""
        steps = []
        if self.deceased:
            living = self.screened - self.deceased
            steps.append(FunnelStep(id=DECEASED, section="row", entering=self.screened, failed=self.deceased,
                                    unknown=0, review=0, passed=living, remaining=living, all_passed=living))
        for k, cid in enumerate(self.ids):
            at = self._steps[k]
            entering = sum(at.values())
            steps.append(FunnelStep(
                id=cid, section=self.sections[k], entering=entering, failed=at["fail"],
                unknown=at["unknown"], review=at["review"], passed=at["pass"],
                remaining=entering - at["fail"], all_passed=self._all_passed[k]))
        return tuple(steps)

    def data_problems(self) -> tuple[DataProblems, ...]:
        return tuple(
            DataProblems(id=cid, unknown=self._totals[k]["unknown"], missing=self._problems[k]["missing"],
                         rejected=self._problems[k]["rejected"], unexplained=self._problems[k]["unexplained"],
                         examples=tuple(self._examples[k]))
            for k, cid in enumerate(self.ids))
