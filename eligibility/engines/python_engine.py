"""The Python engine: patients read one by one, evaluated by the compiled plan, rows written as they come.

It is the reference engine (the only one that explains in full) and the DuckDB
engine's fallback for inputs it does not take.  Results go out as CSV, JSONL or
Parquet (engines/arrow_output.py, a batch at a time); `columns="outcomes"`
leaves the reasons column out and does not word the reasons at all.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from eligibility.core.errors import DataInputError
from eligibility.evaluate.summary import ScreenSummary

if TYPE_CHECKING:
    from eligibility.evaluate.plan import PatientResult, Plan


def cannot_write(output: str, exc: OSError) -> DataInputError:
    """The error for an output file that cannot be written, in one short line.

    pyarrow puts its whole message (path included) in `strerror`; the errno says it plainly.
    """
    why = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)
    return DataInputError(f"cannot write results ({why})", code="E-OUTPUT", file=output)


@contextmanager
def _sink(output: str | None):
    if output is None:
        yield sys.stdout
        return
    try:
        handle = open(output, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise cannot_write(output, exc) from None
    with handle:
        yield handle


@contextmanager
def _result_sink(output: str | None, fmt: str, columns: str, plan: Plan, as_of: date):
    """A function writing one PatientResult as a JSONL record, or as a CSV or Parquet row."""
    if fmt == "jsonl":
        with _sink(output) as handle:
            yield lambda result: handle.write(json.dumps(_jsonl(result, plan, as_of), ensure_ascii=False) + "\n")
        return
    if columns == "reasons":
        def row(result: PatientResult) -> list[str]:
            return [result.patient_id, result.verdict, "; ".join(result.reasons), *result.outcomes]
    else:
        def row(result: PatientResult) -> list[str]:
            return [result.patient_id, result.verdict, *result.outcomes]
    names = result_columns(plan.ids, columns)
    if fmt == "parquet":
        from eligibility.engines.arrow_output import ParquetRows

        try:
            rows = ParquetRows(output, names)
        except OSError as exc:
            raise cannot_write(output, exc) from None
        with rows:
            yield lambda result: rows.write(row(result))
        return
    with _sink(output) as handle:
        # every field quoted: the DuckDB engine's Arrow writer quotes the same way (identical files)
        handle.write(",".join(names) + "\n")
        writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
        yield lambda result: writer.writerow(row(result))


def result_columns(ids: list[str], columns: str = "reasons") -> list[str]:
    """The columns of a results CSV or Parquet file; `columns="outcomes"` has no reasons column."""
    return ["patient_id", "verdict", *(["reasons"] if columns == "reasons" else []), *ids]


def screen_python(prepared, data: list, *, output: str | None, fmt: str, as_of: date, lookback_days: int,
                  input_format: str, progress: bool = False, notes: list[str] = (),
                  columns: str = "reasons") -> ScreenSummary:
    """The Python engine on a prepared trial (also the DuckDB engine's fallback); `notes` lead the summary's problems."""
    from eligibility.engines.arrow_output import check_output
    from eligibility.evaluate.plan import Plan
    from eligibility.readers import read_patients

    check_output(output, fmt, columns)
    registry = prepared.registry
    source = read_patients(data, input_format=input_format, as_of=as_of, lookback_days=lookback_days, registry=registry)
    plan = Plan(prepared.trial, registry, as_of)
    summary = ScreenSummary(prepared.title, as_of, output or "stdout", "python", plan.ids)
    summary.problems.extend(notes)
    patients = source.patients
    if progress:
        from tqdm import tqdm

        patients = tqdm(patients, file=sys.stderr, unit=" patients", desc="screening", leave=False)
    started = time.perf_counter()
    unused_decisions: set[str] = set()
    known = set(plan.ids)
    # reasons are worded only where they are written (a JSONL record always carries them)
    with_reasons = columns == "reasons" or fmt == "jsonl"
    with _result_sink(output, fmt, columns, plan, as_of) as write:
        for patient in patients:
            result = plan.evaluate(patient, detail=fmt == "jsonl", reasons_text=with_reasons)
            write(result)
            summary.add(result)
            if patient.decisions:
                unused_decisions.update(set(patient.decisions) - known)
    summary.seconds = time.perf_counter() - started
    summary.rows_read = source.stats.rows
    summary.problems.extend(_data_problems(source.stats, unused_decisions))
    return summary


def _jsonl(result: PatientResult, plan: Plan, as_of: date) -> dict:
    return {
        "patient_id": result.patient_id, "row": result.row, "verdict": result.verdict, "as_of": as_of.isoformat(),
        "reasons": result.reasons,
        "criteria": [
            {"id": c.id, "section": c.criterion.section, "outcome": outcome, "explanation": texts,
             "reviewer_decision": by_reviewer}
            for c, outcome, texts, by_reviewer in zip(plan.criteria, result.outcomes, result.details, result.reviewer)
        ],
        "notes": result.notes,
    }


def _data_problems(stats, unused_decisions: set[str]) -> list[str]:
    problems = list(stats.notes)
    if stats.unknown_codes:
        shown = ", ".join(f"{code} ({n})" for code, n in stats.unknown_codes.most_common(10))
        more = len(stats.unknown_codes) - 10
        problems.append(f"unrecognised entries: {shown}{f' and {more} more' if more > 0 else ''}")
    if unused_decisions:
        problems.append(f"reviewer decision columns not in the trial (ignored): {', '.join(sorted(unused_decisions))}")
    return problems
