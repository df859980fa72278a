"""`screen` and `explain`: patients in, one result row per input row out (DESIGN §8).

The Python evaluator is the reference (and the only one that explains); the
DuckDB engine takes over batch runs of wide CSVs when asked for, or on `auto`.
Output rows are written as patients stream in, so memory stays flat.  The
trial comes from the compiled-trial cache (eligibility.trial_cache) and the
evaluator is imported only when it runs, so a DuckDB run starts fast.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DataInputError, EligibilityError
from .summary import VERDICTS, ScreenSummary
from .trial_cache import load_trial, prepare_trial

if TYPE_CHECKING:
    from .evaluate import PatientResult, Plan

__all__ = ["VERDICTS", "ScreenSummary", "explain", "load_trial", "screen"]


def _duckdb_engine(engine: str, fmt: str, data: list[str], input_format: str):
    """The DuckDB engine module when it should run, else None (python)."""
    if engine == "python":
        return None
    try:
        from .engines import duckdb_engine
    except ImportError:
        if engine == "duckdb":
            raise EligibilityError("the DuckDB engine is not available in this installation", code="E-ENGINE") from None
        return None
    if engine == "duckdb":
        return duckdb_engine
    from .readers import detect_format

    formats = {detect_format(Path(p)) for p in data} if input_format == "auto" else {input_format}
    return duckdb_engine if fmt == "csv" and formats == {"wide"} else None


@contextmanager
def _sink(output: str | None):
    if output is None:
        yield sys.stdout
        return
    try:
        handle = open(output, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise DataInputError(f"{output}: cannot write results ({exc.strerror})", code="E-OUTPUT", file=output) from None
    with handle:
        yield handle


def screen(trial: str | Path, data: list[str], *, output: str | None = None, fmt: str = "csv",
           engine: str = "auto", as_of: date | None = None, lookback_days: int = 365,
           input_format: str = "auto", registry_files=(), progress: bool = False) -> ScreenSummary:
    """Screen every patient in `data` against `trial`; one output row per input row, in input order."""
    as_of = as_of or date.today()
    prepared = prepare_trial(trial, registry_files)
    module = _duckdb_engine(engine, fmt, data, input_format)
    if module is not None:
        summary = module.screen_duckdb(prepared, [Path(p) for p in data], output=output, fmt=fmt, as_of=as_of,
                                       lookback_days=lookback_days, input_format=input_format)
        summary.problems.extend(f"trial: {problem}" for problem in prepared.problems)
        return summary
    return screen_python(prepared, data, output=output, fmt=fmt, as_of=as_of, lookback_days=lookback_days,
                         input_format=input_format, progress=progress,
                         notes=[f"trial: {problem}" for problem in prepared.problems])


def screen_python(prepared, data: list, *, output: str | None, fmt: str, as_of: date, lookback_days: int,
                  input_format: str, progress: bool = False, notes: list[str] = ()) -> ScreenSummary:
    """The Python engine on a prepared trial (also the DuckDB engine's fallback); `notes` lead the summary's problems."""
    from .evaluate import Plan
    from .readers import read_patients

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
    with _sink(output) as handle:
        # every field quoted: the DuckDB engine's Arrow writer quotes the same way (identical files)
        writer = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
        if fmt == "csv":
            handle.write(",".join(["patient_id", "verdict", "reasons", *plan.ids]) + "\n")
        for patient in patients:
            result = plan.evaluate(patient, detail=fmt != "csv")
            if fmt == "csv":
                writer.writerow([result.patient_id, result.verdict, "; ".join(result.reasons), *result.outcomes])
            else:
                handle.write(json.dumps(_jsonl(result, plan, as_of), ensure_ascii=False) + "\n")
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


def explain(trial: str | Path, data: list[str], patient_id: str, *, as_of: date | None = None,
            lookback_days: int = 365, input_format: str = "auto", registry_files=()) -> str:
    """A readable per-criterion explanation for one patient (every row with that id)."""
    as_of = as_of or date.today()
    prepared = prepare_trial(trial, registry_files)
    compiled, registry = prepared.trial, prepared.registry
    from .evaluate import Plan
    from .explain import render_patient
    from .readers import read_patients

    source = read_patients(data, input_format=input_format, as_of=as_of, lookback_days=lookback_days, registry=registry)
    plan = Plan(compiled, registry, as_of)
    wanted = patient_id.strip()
    texts = [render_patient(plan.evaluate(p, detail=True), compiled, as_of) for p in source.patients if p.id == wanted]
    if not texts:
        names = ", ".join(str(p) for p in data)
        raise DataInputError(f"{names}: no patient with id {wanted!r} ({source.stats.rows} rows read)",
                             code="E-DATA-PATIENT")
    header = f"Trial: {prepared.title}"
    return "\n\n".join([header, *texts])
