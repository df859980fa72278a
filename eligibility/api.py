"""The public Python API (DESIGN §10): compile a trial, load one back, evaluate and screen patients.

Everything here is re-exported by `eligibility/__init__.py`; the CLI calls the
same functions.  Heavy modules (lark, pydantic, the evaluator, pyarrow) are
imported inside the functions, so `import eligibility` stays cheap.

Safe to call from several threads at once.  What the pipeline builds lazily
and keeps for the process (the registry, the grammar's parser and lexer) is
built under one lock here, the first time, so concurrent first calls neither
build it twice nor see it half-built; what this module caches (registries,
evaluation plans, the dict reader's column rules) is guarded the same way or
kept per thread.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from eligibility.core.errors import DataInputError, EligibilityError, TrialInputError
from eligibility.core.patient import Patient           # dataclasses only: cheap
from eligibility.results import PatientResult          # imports nothing at run time

if TYPE_CHECKING:
    from eligibility.compile.coverage_report import CoverageReport
    from eligibility.core.ir import Trial
    from eligibility.evaluate.plan import Plan
    from eligibility.registry.concepts import Registry
    from eligibility.results import Screening

# A trial to compile: a path to a file, the criteria text itself, or a CT.gov API v2 study (dict).
TrialSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]
# Patient data to screen: file paths (any reader format), dicts read like wide-CSV rows,
# Patient objects, or a pyarrow Table / RecordBatch whose columns are wide-CSV columns.
PatientData = Union[str, "os.PathLike[str]", Iterable[Any]]
RegistryFiles = Sequence[Union[str, "os.PathLike[str]"]]

_LOCK = threading.RLock()
_REGISTRIES: dict[tuple, Registry] = {}
_COMPILER_READY: set[int] = set()                       # id() of registries whose lexer is built
# (id(trial), as_of, id(registry) or None) -> (trial, plan); the entry holds the trial, so its id
# cannot be reused by another trial while the entry lives
_PLANS: dict[tuple, tuple[Trial, Plan]] = {}
_PLANS_KEPT = 256
_LOCAL = threading.local()                               # per thread: dict-row readers by column names

_PATH_SUFFIXES = (".txt", ".json", ".xml", ".md", ".text")


# -- trials -----------------------------------------------------------------------------------

def compile_trial(source: TrialSource, *, registry_files: RegistryFiles = ()) -> Trial:
    """Compile a trial: a path (`str`/`Path` of an existing file), the criteria text itself, or a CT.gov dict.

    Problems inside single criteria do not stop the compile: they stay on the
    criterion (`criterion.problems`, status `partial`/`manual`); use
    `compile_trial_with_problems` to get them located in the file.  A trial
    that cannot be read at all raises `TrialInputError` (a `EligibilityError`).
    """
    return compile_trial_with_problems(source, registry_files=registry_files)[0]


def compile_trial_with_problems(source: TrialSource, *, registry_files: RegistryFiles = ()
                                ) -> tuple[Trial, list[EligibilityError]]:
    """`compile_trial`, plus the problems found inside criteria as errors with file, line, column and caret."""
    from eligibility.compile import trials

    registry = _registry(registry_files)
    _compiler_ready(registry)
    if isinstance(source, Mapping):
        if isinstance(source.get("schema"), str):   # a compiled-trial document: read back, not recompiled
            return _load_text(_json(source), None)
        return trials.compile_ctgov_record(source, registry)
    path = _as_path(source)
    if path is not None:
        return trials.compile_trial_file(path, registry=registry)
    if isinstance(source, str):
        return trials.compile_trial_text(source, "auto", None, registry)
    raise TypeError(f"compile_trial takes a path, the criteria text or a CT.gov dict, not {type(source).__name__}")


def load_trial(document: str | bytes | os.PathLike[str] | Mapping[str, Any]) -> Trial:
    """Read back a compiled-trial document (DESIGN §3): its JSON text, the parsed dict, or a path to it.

    A document of a newer schema version raises `TrialInputError` with code
    `E-TRIAL-SCHEMA-VERSION`; one that is not a compiled trial, `E-TRIAL-JSON-SHAPE`.
    """
    from eligibility.compile.trials import read_trial_file

    if isinstance(document, Mapping):
        return _load_text(_json(document), None)[0]
    if isinstance(document, (bytes, bytearray)):
        try:
            return _load_text(bytes(document).decode("utf-8-sig"), None)[0]
        except UnicodeDecodeError:
            raise TrialInputError("compiled-trial document is not UTF-8", code="E-TRIAL-ENCODING") from None
    if isinstance(document, str) and document.lstrip("\ufeff \t\r\n").startswith("{"):
        return _load_text(document, None)[0]
    if isinstance(document, (str, os.PathLike)):
        return _load_text(read_trial_file(document), str(document))[0]
    raise TypeError(f"load_trial takes JSON text, a dict or a path, not {type(document).__name__}")


def trial_text(trial: Trial, *, registry_files: RegistryFiles = ()) -> str:
    """The readable form of a compiled trial (`eligibility compile`), concepts named as the registry names them."""
    from eligibility.compile.render import render_trial_text

    return render_trial_text(trial, registry=_registry(registry_files))


def trial_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the compiled-trial document, from the pydantic models."""
    from eligibility.compile.trials import SCHEMA
    from eligibility.core.ir import Trial

    body = Trial.model_json_schema(by_alias=True)
    body["required"] = ["schema", *body.get("required", [])]   # load_trial needs it to know the version
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"urn:{SCHEMA}",
            **body, "title": SCHEMA,
            "description": "A compiled clinical-trial eligibility document (eligibility compile --format json)."}


def coverage_report(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, jobs: int | None = None,
                    registry_files: RegistryFiles = (), top: int = 20) -> CoverageReport:
    """Compile many trials in parallel and summarise how much compiled (docs/api.md "Coverage report").

    `paths`: trial files (CT.gov JSON, legacy XML, text), folders of them, CSV
    files with an `eligibility_criteria` column (one trial per row). `jobs`
    worker processes (default: one per CPU). A record that cannot be read is a
    one-line entry of `report.failures`, never an exception; a registry file
    that cannot be read raises `RegistryError` before anything runs.
    """
    from eligibility.compile.coverage_report import run_coverage

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    _registry(registry_files)   # a bad registry file: one error here, not one per trial in the workers
    files = [registry_files] if isinstance(registry_files, (str, os.PathLike)) else list(registry_files)
    return run_coverage(list(paths), jobs=jobs, registry_files=files, top=top)


def _load_text(text: str, name: str | None) -> tuple[Trial, list[EligibilityError]]:
    from eligibility.compile.trials import compile_trial_text

    return compile_trial_text(text, "compiled", name)


def _json(data: Mapping[str, Any]) -> str:
    import json

    try:
        return json.dumps(data, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TrialInputError(f"the dict is not JSON data: {exc}", code="E-TRIAL-JSON-SHAPE") from None


def _as_path(source: object) -> Path | None:
    """The path `source` names, or None when it is criteria text.

    A `Path` is always a path.  A one-line string is a path when such a file
    exists, or when it looks like one (no spaces, a separator or a trial
    file suffix) - then a missing file is an error, not a one-word trial.
    """
    if isinstance(source, os.PathLike):
        return Path(source)
    if not isinstance(source, str) or "\n" in source or "\r" in source or len(source) > 4096 or not source.strip():
        return None
    try:
        if Path(source).is_file():
            return Path(source)
    except (OSError, ValueError):
        return None
    looks_like_path = (not any(ch.isspace() for ch in source.strip())
                       and ("/" in source or "\\" in source or source.lower().endswith(_PATH_SUFFIXES)))
    return Path(source) if looks_like_path else None


def _registry(registry_files: RegistryFiles) -> Registry:
    """The packaged registry, or one extended by files; built once per set of file versions."""
    from eligibility.registry.concepts import build_registry, default_registry
    from eligibility.registry.files import registry_path

    if isinstance(registry_files, (str, os.PathLike)):
        registry_files = (registry_files,)
    key: tuple = ()
    for name in registry_files:
        try:
            path = registry_path(name)     # a packaged pack's name ("labs") or a file
            info = os.stat(path)
            key += ((os.fspath(path), info.st_mtime_ns, info.st_size),)
        except OSError:
            return build_registry(*map(Path, registry_files))   # reports the unreadable file
    registry = _REGISTRIES.get(key)
    if registry is None:
        with _LOCK:
            registry = _REGISTRIES.get(key)
            if registry is None:
                registry = build_registry(*(Path(k[0]) for k in key)) if key else default_registry()
                _REGISTRIES[key] = registry
    return registry


def _compiler_ready(registry: Registry) -> None:
    """Build the grammar's parser and the registry's lexer once, under the lock (they are cached for the process)."""
    if id(registry) in _COMPILER_READY:
        return
    with _LOCK:
        if id(registry) not in _COMPILER_READY:
            from eligibility.compile.grammar import lexer_for

            lexer_for(registry)
            _COMPILER_READY.add(id(registry))


# -- patients ---------------------------------------------------------------------------------

def evaluate(trial: Trial, patient: Patient | Mapping[str, Any], *, as_of: date | str,
             registry_files: RegistryFiles = ()) -> PatientResult:
    """One patient against a compiled trial.

    `patient` is a `Patient` or a plain dict read exactly like a row of a wide
    CSV (docs/patient-data.md): keys are column names (`patient_id`, `age`,
    `HbA1c (mmol/mol)`, `conditions`, ...), values are cells (`"58 mmol/mol"`,
    `54`, `None` for missing, a list for a conditions/medications cell).
    """
    day = as_of if type(as_of) is date else _as_of(as_of)
    plan = _plan(trial, day, registry_files)
    if isinstance(patient, Mapping):
        person, notes = _dict_patient(patient, day, plan.registry)
    elif isinstance(patient, Patient):
        person, notes = patient, ()
    else:
        raise TypeError(f"evaluate takes a Patient or a dict, not {type(patient).__name__}")
    # reasons are worded when first read (PatientResult.reasons): most callers want the verdict
    return PatientResult(plan.evaluate(person, reasons_text=False), plan, person, day, notes)


def screen(trial: Trial, data: PatientData, *, as_of: date | str, lookback_days: int = 365,
           input_format: str = "auto", registry_files: RegistryFiles = ()) -> Screening:
    """Every patient in `data` against a compiled trial: an iterator of results, one per input row, in input order.

    `data`: a path or a list of paths (wide CSV, Synthea or OMOP CDM folder,
    FHIR Bundle JSON; detected unless `input_format` says), a list of dicts
    (each read like a wide-CSV row), a list of `Patient`, or a pyarrow Table.
    Results are produced as the data is read; files are checked before the first one.
    """
    from eligibility.engines.python_engine import _data_problems
    from eligibility.readers import ReadStats, read_patients
    from eligibility.results import Screening

    day = _as_of(as_of)
    plan = _plan(trial, day, registry_files)
    kind, payload = _data_kind(data)
    if kind == "paths":
        source = read_patients(payload, input_format=input_format, as_of=day, lookback_days=lookback_days,
                               registry=plan.registry)
        patients, stats = source.patients, source.stats
    elif kind == "rows":
        header, rows = payload
        reader = _DictRows(header, day, plan.registry, ReadStats())
        patients, stats = reader.patients(rows), reader.stats
    else:
        patients, stats = iter(payload), ReadStats()
    results = (PatientResult(plan.evaluate(p, reasons_text=False), plan, p, day) for p in patients)
    return Screening(results, lambda: _data_problems(stats, set()))


def _as_of(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise DataInputError(f"as_of {value!r} is not a date (YYYY-MM-DD)", code="E-AS-OF") from None
    raise TypeError(f"as_of must be a datetime.date or 'YYYY-MM-DD', not {type(value).__name__}")


def _plan(trial: Trial, as_of: date, registry_files: RegistryFiles) -> Plan:
    """The trial compiled for evaluation at a date: built once, kept for the most recent trials and dates."""
    if not registry_files:   # the common case first: a dict lookup per patient
        hit = _PLANS.get((id(trial), as_of, None))
        if hit is not None and hit[0] is trial:
            return hit[1]
    from eligibility.core.ir import Trial

    if not isinstance(trial, Trial):
        raise TypeError(f"expected a compiled Trial (eligibility.compile_trial / load_trial), not {type(trial).__name__}")
    registry = _registry(registry_files)
    key = (id(trial), as_of, id(registry) if registry_files else None)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is trial:
        return hit[1]
    if not trial.criteria:
        raise TrialInputError("no criteria to screen against", code="E-TRIAL-EMPTY", file=trial.trial.source)
    from eligibility.evaluate.plan import Plan

    plan = Plan(trial, registry, as_of)
    with _LOCK:
        while len(_PLANS) >= _PLANS_KEPT:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = (trial, plan)
    return plan


# -- patient dicts: the wide-CSV reader's own column rules and row loop -------------------------

def _cell(value: object) -> str:
    """A Python value as the text of a CSV cell (the reader then parses it like any cell)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return "; ".join(_cell(v) for v in value)   # a list cell: items split on ';'
    return str(value)


class _DictRows:
    """Rows given as values under column names, read by eligibility.readers.wide_csv's rules."""

    NAME = Path("patient dict")

    def __init__(self, header: Sequence[str], as_of: date, registry: Registry, stats) -> None:
        from eligibility.readers.wide_csv import _classify, _finish, _RowState

        self.header, self.as_of, self.stats = list(header), as_of, stats
        try:
            self.id_index, self.handlers = _classify(self.header, self.NAME, registry, as_of, stats)
        except DataInputError as exc:
            if exc.code != "E-DATA-NO-ID":
                raise
            shown = ", ".join(self.header[:8]) + (", ..." if len(self.header) > 8 else "")
            raise DataInputError(f"patient has no id key (expected one of patient_id, id, subject_id, person_id, "
                                 f"participant_id, mrn; keys are {shown or 'none'})", code="E-DATA-NO-ID") from None
        self.notes = tuple(f"data: {note}" for note in stats.notes)   # columns nobody reads, and why
        self.active = [(index, handler) for index, handler in enumerate(self.handlers) if handler is not None]
        self._finish, self._state = _finish, _RowState

    def patients(self, rows: Iterator[list[str]]) -> Iterator[Patient]:
        from contextlib import nullcontext

        from eligibility.readers.wide_csv import _rows

        return _rows([(self.NAME, rows, self.header, nullcontext(), self.id_index, self.handlers)], self.as_of,
                     self.stats)

    def one(self, cells: list[str]) -> tuple[Patient, tuple[str, ...]]:
        """One row alone (no width to check, no earlier row to duplicate): the reader's cell handlers and
        _finish, without its file loop (a generator per call costs a tenth of the time budget)."""
        patient_id = cells[self.id_index].strip()
        patient = Patient(id=patient_id, row=1)
        if not patient_id:
            patient.problems.append("no patient id")
        state = self._state()
        for index, handler in self.active:
            handler(patient, cells[index], state)
        self._finish(patient, state, self.as_of)
        unknown = self.stats.unknown_codes
        if not unknown:
            return patient, self.notes
        entries = ", ".join(sorted(unknown))
        unknown.clear()
        return patient, self.notes + (f"data: unrecognised entries: {entries}",)


def _dict_patient(row: Mapping[str, Any], as_of: date, registry: Registry) -> tuple[Patient, tuple[str, ...]]:
    header = tuple(row)
    readers = getattr(_LOCAL, "readers", None)
    if readers is None:
        readers = _LOCAL.readers = {}
    key = (header, as_of, id(registry))
    reader = readers.get(key)
    if reader is None:
        from eligibility.readers import ReadStats

        if len(readers) >= 256:
            readers.clear()
        # kept per thread: the reader counts unknown entries in its own stats, read back per patient
        reader = readers[key] = _DictRows([k if isinstance(k, str) else str(k) for k in header], as_of, registry,
                                          ReadStats())
    return reader.one([v if type(v) is str else _cell(v) for v in row.values()])


def _data_kind(data: object) -> tuple[str, Any]:
    """("paths", [paths]) | ("rows", (header, cells iterator)) | ("patients", [Patient])."""
    if isinstance(data, (str, os.PathLike)):
        return "paths", [data]
    if type(data).__module__.partition(".")[0] == "pyarrow" and hasattr(data, "column_names"):
        return "rows", (list(data.column_names), _arrow_rows(data))
    if isinstance(data, Mapping):
        raise TypeError("screen takes a list of patient dicts; for one patient use evaluate")
    if not isinstance(data, Iterable):
        raise TypeError(f"screen takes paths, a list of dicts, Patients or a pyarrow Table, not {type(data).__name__}")
    items = list(data)
    if all(isinstance(x, (str, os.PathLike)) for x in items):
        return ("paths", items) if items else ("patients", [])
    if all(isinstance(x, Patient) for x in items):
        return "patients", items
    if all(isinstance(x, Mapping) for x in items):
        # keys as column names (str), the union over all rows in first-seen order; a key a row lacks is a blank cell
        items = [x if all(type(k) is str for k in x) else {str(k): v for k, v in x.items()} for x in items]
        header = list(dict.fromkeys(k for x in items for k in x))
        rows = ([v if type(v) is str else _cell(v) for v in map(x.get, header)] for x in items)
        return "rows", (header, rows)
    raise TypeError("screen takes a list of paths, of patient dicts or of Patients (not a mix)")


def _arrow_rows(table: Any) -> Iterator[list[str]]:
    """Rows of a pyarrow Table or RecordBatch as cells, one batch in memory at a time."""
    batches = table.to_batches() if hasattr(table, "to_batches") else [table]
    for batch in batches:
        columns = [column.to_pylist() for column in batch.columns]
        for values in zip(*columns):
            yield [_cell(v) for v in values]
