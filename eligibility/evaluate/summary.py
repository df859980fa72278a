"""The summary of a screening run (counts, problems) and its rendering for stderr.

Kept apart from eligibility.screening so the DuckDB engine can report without
importing the Python evaluator.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eligibility.evaluate.plan import PatientResult

VERDICTS = ("eligible", "needs_review", "ineligible")


@dataclass
class ScreenSummary:
    """What a run did, for stderr: counts, the date used, where results went, data problems."""

    trial_title: str
    as_of: date
    output: str
    engine: str
    criteria: list[str]
    rows: int = 0
    verdicts: Counter = field(default_factory=Counter)
    outcomes: dict[str, Counter] = field(default_factory=dict)     # criterion id -> outcome counts
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rows_read: int | None = None     # input rows as the reader counted them (None: not reported)

    def add(self, result: PatientResult) -> None:
        self.rows += 1
        self.verdicts[result.verdict] += 1
        for cid, outcome in zip(self.criteria, result.outcomes):
            self.outcomes.setdefault(cid, Counter())[outcome] += 1

    def render(self) -> str:
        rate = f", {self.rows / self.seconds:,.0f} patients/s" if self.seconds > 0.5 and self.rows else ""
        read = f" from {self.rows_read} input rows" if self.rows_read is not None else ""
        lines = [f"screened {self.rows} patients{read} against {self.trial_title!r} as of {self.as_of.isoformat()} "
                 f"({self.engine} engine{rate})",
                 "verdicts: " + ", ".join(f"{v} {self.verdicts.get(v, 0)}" for v in VERDICTS)]
        for label, outcome in (("failing", "fail"), ("unknown (missing or rejected data)", "unknown"), ("needing review", "review")):
            counts = [f"{cid} {self.outcomes[cid][outcome]}" for cid in self.criteria
                      if self.outcomes.get(cid, {}).get(outcome)]
            if counts:
                lines.append(f"{label}: " + ", ".join(counts))
        lines.append(f"results: {self.output}")
        if self.problems:
            lines.append("data problems:")
            lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)
