"""Coverage report: how much of many trials compiles (`eligibility compile PATHS... --report`).

Trials come as files (CT.gov API v2 JSON, legacy CT.gov XML, plain text, a
compiled trial), folders of such files (`.json`, `.xml`, `.txt`, `.csv`, read
recursively, in name order), or CSV files with an `eligibility_criteria`
column, one trial per row (named by `#nct_id` / `nct_id` when there is one).
Each record is counted here (`trial_coverage`, run in a worker process);
`coverage_report.run_coverage` runs them and sums them up.

What is counted (per top-level criterion from the criteria text; the
structured age/sex fields of a record are counted apart, as `fields`):
- status: `compiled`, `partial` (a tree plus unparsed text), `manual`;
  `computable` = compiled + partial (benchmarks/bench_coverage.py's share), and
  how many of those hold a `manual` node all the same ('Severe heart failure':
  the condition is computed, 'Severe' is left to a reviewer);
- manual phrases: the text of every `manual` node and every unparsed span,
  normalised (`normalise_phrase`), counted across trials;
- concepts: numeric concepts (`compare` / `range` nodes) and `has` nodes by
  category and code, fields included, one count per node;
- failures: a record that cannot be compiled at all is one line naming the
  file and the problem (never a traceback); the run goes on.
"""
from __future__ import annotations

import csv
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from time import perf_counter

from eligibility.core.errors import EligibilityError, TrialInputError
from eligibility.core.ir import Compare, Has, Manual, Range, Trial, walk

SUFFIXES = (".json", ".xml", ".txt", ".csv")
CSV_COLUMN = "eligibility_criteria"
CSV_IDS = ("#nct_id", "nct_id", "nctid", "nct id", "id")
STATUSES = ("compiled", "partial", "manual")
FIELDS = ("age", "sex")      # structured fields, not criteria of the text


@dataclass(frozen=True)
class Record:
    """One trial to compile: a file read in the worker, or text taken from a CSV row."""

    name: str
    path: str | None = None
    text: str | None = None


@dataclass
class TrialCoverage:
    """What one record gave (plain data: it travels back from a worker process)."""

    name: str
    error: str | None = None                     # one line when the record could not be compiled
    statuses: Counter = field(default_factory=Counter)   # criterion status -> count (and "with_manual_part")
    fields: Counter = field(default_factory=Counter)     # structured field status -> count
    phrases: list[str] = field(default_factory=list)     # normalised manual phrases and unparsed text
    numeric: Counter = field(default_factory=Counter)    # concept id -> nodes
    codes: Counter = field(default_factory=Counter)      # (category, code, label) -> nodes
    problems: list[str] = field(default_factory=list)    # criterion problems, one line each
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def criteria(self) -> int:
        return sum(self.statuses[s] for s in STATUSES)


# -- which records ------------------------------------------------------------------------

def find_records(paths) -> tuple[list[Record | TrialCoverage], list[str]]:
    """The records named by files and folders, in order; a CSV that cannot be read is a failed entry.

    Returns the entries and one line per thing left out on purpose (files of
    other types in folders, a CSV's header row repeated inside it).
    """
    entries: list[Record | TrialCoverage] = []
    skipped: list[str] = []
    for given in map(Path, paths):
        files = [given]
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.is_file())
            files = [p for p in found if p.suffix.lower() in SUFFIXES]
            if len(found) > len(files):
                skipped.append(f"{given}: {len(found) - len(files)} files not .json/.xml/.txt/.csv skipped")
        for path in files:
            if path.suffix.lower() == ".csv":
                entries.extend(_csv_records(path, skipped))
            else:
                entries.append(Record(str(path), path=str(path)))
    return entries, skipped


def _csv_records(path: Path, skipped: list[str]) -> list[Record | TrialCoverage]:
    from eligibility.compile.trials import read_trial_file

    name = str(path)
    try:
        text = read_trial_file(path)
        csv.field_size_limit(1 << 30)
        rows = csv.DictReader(text.splitlines(keepends=True))
        header = {h.strip().lower(): h for h in rows.fieldnames or ()}
        if CSV_COLUMN not in header:
            raise TrialInputError(f"CSV has no '{CSV_COLUMN}' column (one trial per row)",
                                  code="E-TRIAL-CSV", file=name)
        column = header[CSV_COLUMN]
        ident = next((header[k] for k in CSV_IDS if k in header), None)
        out: list[Record | TrialCoverage] = []
        for row in rows:
            where = f"{name}:{rows.line_num}"
            if all(row.get(h) == h for h in header.values()):   # two CSV files joined: their header again
                skipped.append(f"{where}: the header row repeated, skipped")
                continue
            label = (row.get(ident) or "").strip() if ident else ""
            out.append(Record(f"{name}:{label}" if label else where, text=row.get(column) or ""))
        return out
    except EligibilityError as exc:
        return [TrialCoverage(name, error=exc.one_line())]
    except csv.Error as exc:
        return [TrialCoverage(name, error=f"{name}: error E-TRIAL-CSV: unreadable CSV: {exc}")]


# -- one record -----------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _registry(registry_files: tuple[str, ...]):
    from eligibility.registry.concepts import build_registry, default_registry

    return build_registry(*map(Path, registry_files)) if registry_files else default_registry()


def warm(registry_files: tuple[str, ...] = ()) -> None:
    """Load the registry, grammar and units once, so a worker's first trial is timed like the rest."""
    from eligibility.compile.trials import compile_trial_text

    compile_trial_text("Inclusion Criteria:\n- Age 18 to 65 years\n- HbA1c 7.0-10.0% on metformin\n", "text",
                       None, _registry(tuple(registry_files)))


def trial_coverage(record: Record, registry_files: tuple[str, ...] = ()) -> TrialCoverage:
    """Compile one record and count what it gave; never raises (a failure is the entry's `error`)."""
    from eligibility.compile.trials import compile_trial_text, read_trial_file

    start = perf_counter()
    try:
        text = read_trial_file(record.path) if record.path is not None else record.text or ""
        trial, problems = compile_trial_text(text, "auto", record.name, _registry(tuple(registry_files)))
    except EligibilityError as exc:
        return TrialCoverage(record.name, error=exc.one_line())
    except Exception as exc:   # a bug must not stop the run: named, on one line
        first = (str(exc).splitlines() or [""])[0]
        return TrialCoverage(record.name, error=f"{record.name}: error E-INTERNAL: {type(exc).__name__}: {first}")
    out = count_trial(record.name, trial)
    out.problems = [p.one_line() for p in problems]
    out.seconds = perf_counter() - start
    return out


def count_trial(name: str, trial: Trial) -> TrialCoverage:
    out = TrialCoverage(name, warnings=[w.code for w in trial.warnings])
    for crit in trial.criteria:
        (out.fields if crit.id in FIELDS else out.statuses)[crit.status] += 1
        manual = 0
        for node in walk(crit.tree):
            if isinstance(node, (Compare, Range)):
                out.numeric[node.concept] += 1
            elif isinstance(node, Has):
                out.codes[(node.category, node.code, node.label)] += 1
            elif isinstance(node, Manual) and crit.id not in FIELDS:
                out.phrases.append(normalise_phrase(node.text))
                manual += 1
        if manual and crit.status != "manual":
            out.statuses["with_manual_part"] += 1   # computable, yet a manual node may leave it to review
        out.phrases.extend(normalise_phrase(trial.criteria_text[a:b]) for a, b in crit.unparsed)
    out.phrases = [p for p in out.phrases if p]
    return out


_DASHES = re.compile(r"[\u2010-\u2015\u2212]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SUBJECT = re.compile(r"^(?:the )?(?:patients?|subjects?|participants?|individuals?)"
                      r" (?:who (?:has|have|is|are) |who |with |that )")


def normalise_phrase(text: str) -> str:
    """Lower case, NFKC, one space, numbers as `#`, no leading `patients with`, no end punctuation."""
    text = _DASHES.sub("-", unicodedata.normalize("NFKC", text).lower())
    text = " ".join(_NUMBER.sub("#", text).split()).strip(" .,;:-*•")
    return _SUBJECT.sub("", text)
