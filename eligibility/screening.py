"""`screen` and `explain`: patients in, one result row per input row out (DESIGN §8).

The Python evaluator is the reference (and the only one that explains); the
DuckDB engine takes over batch runs of wide CSVs when asked for, or on `auto`.
Output rows are written as patients stream in, so memory stays flat.  The
trial comes from the compiled-trial cache (eligibility.compile.cache) and the
evaluator is imported only when it runs, so a DuckDB run starts fast.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

from eligibility.core.errors import DataInputError, EligibilityError
from eligibility.evaluate.summary import VERDICTS, ScreenSummary
from eligibility.compile.cache import load_trial, prepare_trial
from eligibility.engines.python_engine import screen_python

__all__ = ["VERDICTS", "ScreenSummary", "explain", "load_trial", "screen"]


def _duckdb_engine(engine: str, fmt: str, data: list[str], input_format: str):
    """The DuckDB engine module when it should run, else None (python)."""
    if engine == "python":
        return None
    try:
        from eligibility.engines import duckdb_engine
    except ImportError:
        if engine == "duckdb":
            raise EligibilityError("the DuckDB engine is not available in this installation", code="E-ENGINE") from None
        return None
    if engine == "duckdb":
        return duckdb_engine
    from eligibility.readers import detect_format

    formats = {detect_format(Path(p)) for p in data} if input_format == "auto" else {input_format}
    return duckdb_engine if fmt == "csv" and formats == {"wide"} else None


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


def explain(trial: str | Path, data: list[str], patient_id: str, *, as_of: date | None = None,
            lookback_days: int = 365, input_format: str = "auto", registry_files=()) -> str:
    """A readable per-criterion explanation for one patient (every row with that id)."""
    as_of = as_of or date.today()
    prepared = prepare_trial(trial, registry_files)
    compiled, registry = prepared.trial, prepared.registry
    from eligibility.evaluate.plan import Plan
    from eligibility.evaluate.explain import render_patient
    from eligibility.readers import read_patients

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
