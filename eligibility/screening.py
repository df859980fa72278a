"""`screen`, `report` and `explain`: patients in, one result row per input row out (DESIGN §8).

The Python evaluator is the reference (and the only one that explains); the
DuckDB engine takes over batch runs of wide CSVs when asked for, or on `auto`.
Output rows are written as patients stream in, so memory stays flat.  The
trial comes from the compiled-trial cache (eligibility.compile.cache) and the
evaluator is imported only when it runs, so a DuckDB run starts fast.

Results go to CSV, JSONL or Parquet (chosen by `fmt`, else by the output
file's extension); `columns="outcomes"` leaves out the reasons column.  The
HTML report (eligibility.report) is drawn from a results file and the compiled
trial's JSON document: `screen_with_report` hands it the very trial the run
used, `report` compiles (or loads from the cache) the trial named.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from eligibility.core.errors import DataInputError, EligibilityError
from eligibility.evaluate.summary import VERDICTS, ScreenSummary
from eligibility.compile.cache import PreparedTrial, load_trial, prepare_trial
from eligibility.engines.arrow_output import OutputOptionError, check_output
from eligibility.engines.python_engine import screen_python

if TYPE_CHECKING:
    from eligibility.report import ReportStats

__all__ = ["VERDICTS", "OutputOptionError", "ScreenSummary", "explain", "load_trial", "output_format", "report", "screen",
           "screen_with_report"]

# what an output file's extension asks for when no format is given
SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
REPORT_PATIENT_CAP = 5000   # eligibility.report.DEFAULT_PATIENT_CAP, without importing Jinja2 for every run


def output_format(output: str | Path | None, fmt: str | None = None) -> str:
    """`fmt` when given, else the format the output file's extension names (`.parquet`, `.jsonl`), else csv."""
    if fmt:
        return fmt
    return SUFFIX_FORMATS.get(Path(output).suffix.lower(), "csv") if output is not None else "csv"


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
    return duckdb_engine if fmt in ("csv", "parquet") and formats == {"wide"} else None


def screen(trial: str | Path, data: list[str], *, output: str | None = None, fmt: str | None = None,
           engine: str = "auto", as_of: date | None = None, lookback_days: int = 365,
           input_format: str = "auto", registry_files=(), progress: bool = False,
           columns: str = "reasons") -> ScreenSummary:
    """Screen every patient in `data` against `trial`; one output row per input row, in input order.

    `fmt`: csv, jsonl or parquet (None: by the output's extension); `columns`:
    "reasons" (outcomes and reasons, the default) or "outcomes" (no reasons column).
    """
    fmt = output_format(output, fmt)
    check_output(output, fmt, columns)
    return _screen(prepare_trial(trial, registry_files), data, output=output, fmt=fmt, engine=engine,
                   as_of=as_of or date.today(), lookback_days=lookback_days, input_format=input_format,
                   progress=progress, columns=columns)


def _screen(prepared: PreparedTrial, data: list[str], *, output: str | None, fmt: str, engine: str, as_of: date,
            lookback_days: int, input_format: str, progress: bool, columns: str) -> ScreenSummary:
    module = _duckdb_engine(engine, fmt, data, input_format)
    if module is not None:
        summary = module.screen_duckdb(prepared, [Path(p) for p in data], output=output, fmt=fmt, as_of=as_of,
                                       lookback_days=lookback_days, input_format=input_format, columns=columns)
        summary.problems.extend(f"trial: {problem}" for problem in prepared.problems)
        return summary
    return screen_python(prepared, data, output=output, fmt=fmt, as_of=as_of, lookback_days=lookback_days,
                         input_format=input_format, progress=progress, columns=columns,
                         notes=[f"trial: {problem}" for problem in prepared.problems])


def screen_with_report(trial: str | Path, data: list[str], report_path: str | Path, *, output: str,
                       fmt: str | None = None, engine: str = "auto", as_of: date | None = None,
                       lookback_days: int = 365, input_format: str = "auto", registry_files=(),
                       progress: bool = False, columns: str = "reasons",
                       patient_cap: int = REPORT_PATIENT_CAP) -> tuple[ScreenSummary, ReportStats]:
    """`screen` to the file `output`, then the HTML report of that file to `report_path`.

    The report reads the results back (so they must go to a file) and needs
    their reasons column; both are checked before any patient is screened.
    """
    fmt = output_format(output, fmt)
    check_output(output, fmt, columns)
    if output is None:
        raise OutputOptionError("the report reads the results back: write them to a file (-o results.csv)")
    if columns != "reasons":
        raise OutputOptionError("the report needs the reasons column (data problems, deaths): "
                                "drop --columns outcomes")
    _not_the_same(output, report_path)
    prepared = prepare_trial(trial, registry_files)
    summary = _screen(prepared, data, output=output, fmt=fmt, engine=engine, as_of=as_of or date.today(),
                      lookback_days=lookback_days, input_format=input_format, progress=progress, columns=columns)
    from eligibility.report import write_report

    stats = write_report(json.loads(prepared.json), Path(output), Path(report_path), patient_cap=patient_cap)
    return summary, stats


def _not_the_same(results: str | Path, report_path: str | Path) -> None:
    if Path(report_path).resolve() == Path(results).resolve():
        raise OutputOptionError(f"{report_path}: the report would overwrite the results")


def report(trial: str | Path, results: str | Path, report_path: str | Path, *, details: str | Path | None = None,
           patient_cap: int = REPORT_PATIENT_CAP, registry_files=()) -> ReportStats:
    """The HTML report of an existing results file (CSV, JSONL or Parquet) screened against `trial`.

    `trial` is the trial file the results were screened with (text, CT.gov, or
    compiled JSON); `details`, the JSONL of the same run, gives a CSV's patient
    table the full explanations.
    """
    from eligibility.report import write_report

    _not_the_same(results, report_path)
    prepared = prepare_trial(trial, registry_files)
    return write_report(json.loads(prepared.json), Path(results), Path(report_path),
                        details_path=Path(details) if details is not None else None, patient_cap=patient_cap)


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
