"""Batch screening of wide CSVs on embedded DuckDB: one generated query, streamed from CSV to CSV.

DuckDB reads the file itself (every column as text, positional names, short
rows padded, long rows cut, blank lines skipped), the query from
eligibility.sql.query parses cells with the reader's rules, and the results are
streamed as Arrow batches to CSV or Parquet (engines/arrow_output.py).  The plan is a pure projection, so DuckDB streams it and keeps
insertion order; memory is capped and may spill to a temp directory.  Files
DuckDB cannot read faithfully (not UTF-8, a quoted header line) go to the
Python engine, and the summary says so.

A Synthea or OMOP folder (`--engine duckdb`) runs the OMOP-schema query of
eligibility.sql.query over the views of engines/long_views.py (latest value in the
lookback window as a window query), rows in the person file's order.  `auto`
keeps such folders on the Python readers, which also count unknown codes for
the summary.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from eligibility.core.errors import DataInputError
from eligibility.compile.cache import PreparedTrial, as_prepared

if TYPE_CHECKING:
    from eligibility.core.ir import Trial
    from eligibility.registry.concepts import Registry

MEMORY_LIMIT = "1GB"


def _header(path: Path) -> tuple[list[str], str]:
    """The header cells and the delimiter, by the reader's rule (`,` unless only `;` or a tab appears)."""
    if path.is_dir():
        raise DataInputError(f"{path}: is a folder, expected a CSV file", code="E-DATA-READ", file=str(path))
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except FileNotFoundError:
        raise DataInputError(f"{path}: no such file", code="E-DATA-MISSING", file=str(path)) from None
    except UnicodeDecodeError:
        raise _Fallback(f"{path.name}: not UTF-8") from None
    except OSError as exc:
        raise DataInputError(f"{path}: cannot read ({exc.strerror})", code="E-DATA-READ", file=str(path)) from None
    if not first.strip():
        raise DataInputError(f"{path}: empty file (no header line)", code="E-DATA-EMPTY", file=str(path))
    delimiter = "," if "," in first else next((d for d in (";", "\t") if d in first), ",")
    if first.count('"') % 2:
        raise _Fallback(f"{path.name}: header line has a quoted line break")
    return next(csv.reader([first], delimiter=delimiter)), delimiter


def unsupported_nodes(trial_json: str, long_data: bool = False, estimated: frozenset[str] = frozenset()) -> str | None:
    """What of the trial the SQL does not match as the readers do, named for the run's note; None if nothing.

    Procedures are matched by the Python readers only; so are conditions named by an ICD-10-CM
    code-book term (keys `icd10cm:...`) in a wide CSV (the long views join the readers' own keys)
    and, in long data, drugs asked for within a window (the drug history); so are values the
    evaluator estimates when none is reported (`estimated`: concept ids, e.g. Cockcroft-Gault clearance).
    """
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("kind") in ("compare", "range") and node.get("concept") in estimated:
                found.add("values estimated when not reported")
            if node.get("kind") == "has":
                if node.get("category") == "procedure":
                    found.add("procedures")
                elif str(node.get("code", "")).startswith(("race_", "ethnicity_")):
                    found.add("race or ethnicity")     # read by the Python readers only
                elif ":" in str(node.get("code", "")) and not long_data:
                    found.add("code-book conditions")      # long data: joined through the readers' keys
                elif long_data and node.get("category") == "medication" and node.get("within"):
                    found.add("drugs taken within a window")     # the readers keep the drug history
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(trial_json))
    return " and ".join(sorted(found)) or None


def _estimated(prepared: PreparedTrial) -> frozenset[str]:
    """The registry's concepts with an `estimate` rule, kept in the cache directory under the registry's
    digest: a repeated run does not build the registry for it (~0.13 s of start-up)."""
    from eligibility.core.cache import package_sources, read_checked, write_checked

    key = hashlib.sha256(f"{prepared.registry_key}\0{package_sources()}".encode("utf-8")).hexdigest()[:32]
    body = read_checked("estimated", key)
    if body is not None and isinstance(body.get("concepts"), list):
        return frozenset(map(str, body["concepts"]))
    found = sorted(c.id for c in prepared.registry.concepts.values() if c.estimate)
    write_checked("estimated", key, {"concepts": found}, 16)
    return frozenset(found)


class _Fallback(Exception):
    """This file is better read by the Python reader."""


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _scan(paths: list[Path], width: int, delimiter: str, parallel: bool = True) -> str:
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    files = "[" + ", ".join(_sql_string(str(p)) for p in paths) + "]"
    return (f"read_csv({files}, auto_detect=false, header=false, skip=1, delim={_sql_string(delimiter)}, "
            f"quote='\"', escape='\"', null_padding=true, strict_mode=false, "
            f"parallel={'true' if parallel else 'false'}, columns={columns})")


def build_query(trial: Trial | PreparedTrial, paths: list[Path], *, as_of: date, registry: Registry | None = None,
                parallel: bool = True, notes: list[str] | None = None, lookback_days: int = 365) -> str:
    """The DuckDB query screening these wide CSV files (they must share one header).

    The query text is cached on disk (engines/query_cache.py): a repeated run
    with the same trial, header, as-of date and registry skips sqlglot entirely,
    and a PreparedTrial's pydantic objects are not even built.
    """
    from eligibility.engines import query_cache

    prepared = as_prepared(trial, registry, paths[0])
    headers = [_header(p) for p in paths]
    if len({(tuple(h), d) for h, d in headers}) != 1:
        raise _Fallback("the files have different headers")
    header, delimiter = headers[0]
    key = query_cache.fingerprint(prepared.json, header, delimiter, as_of=as_of, lookback_days=lookback_days,
                                  registry_key=prepared.registry_key, variant="duckdb-wide")
    cached = query_cache.load(key)
    if cached is None:
        try:
            cached = _wide_query(prepared.trial, header, as_of=as_of, registry=prepared.registry)
        except ValueError as exc:   # no id column
            raise DataInputError(f"{paths[0]}: {exc}", code="E-DATA-NO-ID", file=str(paths[0])) from None
        query_cache.save(key, *cached)
    sql, ignored = cached
    if ignored and notes is not None:
        notes.append(f"{paths[0].name}: unknown columns ignored: {', '.join(ignored)}")
    return sql.replace("__SCAN__()", _scan(paths, len(header), delimiter, parallel))


def _wide_query(trial: Trial, header: list[str], *, as_of: date, registry: Registry) -> tuple[str, list[str]]:
    """(query text with a `__SCAN__()` placeholder for the file scan, header cells the query ignores)."""
    from sqlglot import exp

    from eligibility.sql.wide import classify, wide_source
    from eligibility.sql.nodes import trial_needs
    from eligibility.sql.query import screening_query

    needs = trial_needs(trial)
    table = exp.Anonymous(this="__SCAN__")
    source, columns = wide_source(table, header, needs, registry=registry, as_of=as_of,
                                  names=[f"c{i}" for i in range(len(header))], fast=True)
    known = {c.name for c in classify(header, registry)}
    ignored = [h for h in header if h not in known]
    query = screening_query(trial, source, columns, registry=registry, fold=True).transform(_one_concat)
    return query.sql(dialect="duckdb"), ignored


def _one_concat(node):
    """`a || b || c || d` as one CONCAT(a, b, c, d): one string built per explanation instead of one per
    `||` (~20% of the query's CPU time at 1M patients).  CONCAT reads NULL as '' where `||` gives NULL;
    every piece of an explanation is either a literal or guarded by the branch that builds it."""
    from sqlglot import exp

    if not isinstance(node, exp.DPipe) or isinstance(node.parent, exp.DPipe):
        return node
    pieces: list = []
    stack = [node]
    while stack:
        part = stack.pop()
        if isinstance(part, exp.DPipe):
            stack += [part.expression, part.this]
        elif isinstance(part, exp.Paren) and isinstance(part.this, exp.DPipe):
            stack.append(part.this)
        else:
            pieces.append(part)
    return exp.func("CONCAT", *pieces, dialect="duckdb")


def _connect():
    # the public package (not the bare `_duckdb` extension module): results are streamed with its
    # relational API (engines/arrow_output.py), and private modules change between releases
    import duckdb

    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": True,
                                 "temp_directory": tempfile.gettempdir() + "/eligibility-duckdb"})
    return con


def screen_duckdb(trial: Trial | PreparedTrial, source_paths: list[Path], *, output: str | None, fmt: str = "csv",
                  as_of: date, lookback_days: int = 365, registry: Registry | None = None,
                  input_format: str = "auto", columns: str = "reasons"):
    """Screen wide CSV files on DuckDB; returns screening.ScreenSummary (falls back to Python when it must).

    `registry` goes with a Trial; a PreparedTrial brings its own.  `fmt` is csv or
    parquet (jsonl goes to Python); `columns="outcomes"` leaves the reasons column out.
    """
    from eligibility.readers import detect_format
    from eligibility.evaluate.summary import ScreenSummary
    from eligibility.engines.arrow_output import check_output

    check_output(output, fmt, columns)
    paths = [Path(p) for p in source_paths]
    prepared = as_prepared(trial, registry, paths[0])
    formats = {detect_format(p) for p in paths} if input_format == "auto" else {input_format}
    reason = None
    long_data = formats <= {"synthea", "omop"} and len(paths) == 1
    if formats != {"wide"} and not long_data:
        reason = f"{'/'.join(sorted(formats))} data is read by the Python engine"
    elif fmt == "jsonl":
        reason = "--format jsonl carries full explanations, which the Python engine writes"
    elif (kinds := unsupported_nodes(prepared.json, long_data, _estimated(prepared))):
        reason = f"the trial asks for {kinds}, which the Python engine matches"
    sql = None
    notes: list[str] = []
    con = _connect()
    if reason is None:
        try:
            if long_data:
                sql = _long_query(con, prepared.trial, paths[0], formats.pop(), as_of=as_of,
                                  lookback_days=lookback_days, registry=prepared.registry)
            else:
                sql = build_query(prepared, paths, as_of=as_of, notes=notes, lookback_days=lookback_days)
        except _Fallback as why:
            reason = str(why)
    if sql is None:
        con.close()
        return _python(prepared, paths, output=output, fmt=fmt, as_of=as_of, lookback_days=lookback_days,
                       input_format=input_format, columns=columns, note=f"python engine used: {reason}")
    ids = prepared.ids
    summary = ScreenSummary(prepared.title, as_of, output or "stdout", "duckdb", ids)
    summary.problems.extend(notes)
    started = time.perf_counter()
    # without the reasons column DuckDB's optimiser drops the reasons' expressions from the plan
    reasons = "COALESCE(reasons, '') AS reasons, " if columns == "reasons" else ""
    select = f"SELECT COALESCE(patient_id, '') AS patient_id, verdict, {reasons}" \
             f"{', '.join(_quote(i) for i in ids)} FROM ({sql})"
    from eligibility.engines.arrow_output import QueryFailed, write_results

    try:
        # stdout gets the results only once they are complete, so a file DuckDB gives up on
        # half-way (bad bytes) can still go to the Python engine without duplicated rows
        target = output if output is not None else _spool()
        try:
            tally = write_results(con, select, target, ids, fmt=fmt)
        except QueryFailed as exc:
            # the parallel scanner cannot pad short rows in a file with quoted line breaks:
            # the file is read again, by one thread (the output is rewritten from the start)
            if "parallel=false" not in str(exc):
                raise
            tally = write_results(con, select.replace("parallel=true", "parallel=false"), target, ids, fmt=fmt)
        summary.rows += tally.rows
        summary.verdicts.update(tally.verdicts)
        summary.outcomes.update({cid: +counts for cid, counts in tally.outcomes.items()})
        if output is None:
            with open(target, encoding="utf-8", newline="") as spooled:
                shutil.copyfileobj(spooled, sys.stdout)
            Path(target).unlink()
    except OSError as exc:
        from eligibility.engines.python_engine import cannot_write

        raise cannot_write(target, exc) from None
    except Exception as exc:   # DuckDB's errors: unreadable bytes and the like -> the Python reader decides
        if not isinstance(exc, QueryFailed) and type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
            raise
        return _python(prepared, paths, output=output, fmt=fmt, as_of=as_of, lookback_days=lookback_days,
                       input_format=input_format, columns=columns,
                       note=f"python engine used: DuckDB could not read the data ({str(exc).splitlines()[0]})")
    finally:
        con.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _long_query(con, trial: Trial, folder: Path, fmt: str, *, as_of: date, lookback_days: int,
                registry: Registry) -> str:
    """The OMOP-schema query over views of a Synthea/OMOP folder, rows in the person file's order."""
    from eligibility.sql.query import trial_to_sql
    from eligibility.engines.long_views import missing_tables, register_long_views, register_mappings

    register_long_views(con, folder, fmt, registry=registry)
    missing = missing_tables(con)
    if missing:
        # an absent file means "not known", which the SQL would read as "none": the readers decide
        raise _Fallback(f"{folder} has no {' / '.join(missing)} file")
    register_mappings(con, registry)
    sql = trial_to_sql(trial, dialect="duckdb", schema="omop", table=None, as_of=as_of,
                       lookback_days=lookback_days, registry=registry, condition_map=True)
    return (f"SELECT q.* FROM ({sql}) AS q JOIN (SELECT CAST(person_id AS VARCHAR) AS pid, "
            f"row_number() OVER () AS input_row FROM person) AS o ON CAST(q.patient_id AS VARCHAR) = o.pid "
            f"ORDER BY o.input_row")


def _spool() -> str:
    handle, name = tempfile.mkstemp(prefix="eligibility-", suffix=".csv")
    os.close(handle)
    return name


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _python(prepared: PreparedTrial, paths: list[Path], *, output, fmt, as_of, lookback_days, input_format, note,
            columns: str = "reasons"):
    """The Python engine on the already prepared trial, with a note saying why it ran."""
    from eligibility.engines.python_engine import screen_python

    return screen_python(prepared, paths, output=output, fmt=fmt, as_of=as_of, lookback_days=lookback_days,
                         input_format=input_format, notes=[note], columns=columns)
