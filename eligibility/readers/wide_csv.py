"""Wide patient CSV: one row per patient, one column per concept (rules: docs/patient-data.md).

Every data row becomes exactly one Patient, in order, whatever is wrong with
it: bad cells become `Invalid` values (UNKNOWN with a reason), short/long rows
and duplicate ids become row notes.  Only a file that cannot be read at all,
or has no id column, is an error.
"""
from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Invalid, Measurement, Patient, completed_years, record_birth_ages
from eligibility.registry.concepts import Registry
from eligibility.registry import races
from eligibility.readers.procedures import ProcedureCodes
from eligibility.readers.stats import ReadStats
from eligibility.registry.vocabulary import vocabulary as terms
from eligibility.readers.wide_cells import (
    BIRTH_KEYS, CONDITION_LIST_KEYS, DEATH_DATE_KEYS, DEATH_FLAG_KEYS, FEMALE, ID_KEYS, MALE,
    MEDICATION_LIST_KEYS, PROCEDURE_LIST_KEYS, SEX_KEYS, NumberParser, Vocabulary, condition_ids,
    decision_id, duration_concept, header_key, is_missing, list_items, medication_tokens,
    parse_date, parse_yes_no, name_and_unit, unit_fits, vocabulary,
)

csv.field_size_limit(1 << 24)


@lru_cache(maxsize=8)
def procedure_codes(registry: Registry) -> ProcedureCodes:
    return ProcedureCodes(registry, terms(registry))


@dataclass
class _RowState:
    """Values that need the whole row before they settle (age from a birth date, ...)."""

    birth: date | Invalid | None = None
    birth_raw: str = ""


Handler = Callable[[Patient, str, _RowState], None]


def _encoding(path: Path) -> str:
    """'utf-8-sig' when the whole file decodes as UTF-8, else 'latin-1' (every byte is a character)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in header_line:
            return candidate
    return ","


def _concept_handler(concept_id: str, unit: str | None, header: str, registry: Registry) -> Handler:
    parser = NumberParser(concept_id, unit, registry)

    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        if is_missing(cell):
            return
        current = patient.measurements.get(concept_id)
        if isinstance(current, Measurement):
            return   # the first valid value (left to right) wins
        value = parser.parse(cell, header)
        if current is None or isinstance(value, Measurement):
            patient.measurements[concept_id] = value
    return handle


def _duration_handler(concept_id: str, header: str, as_of: date) -> Handler:
    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        if is_missing(cell) or isinstance(patient.measurements.get(concept_id), Measurement):
            return
        text = cell.strip()
        when = parse_date(text)
        if when is None:
            value: Measurement | Invalid = Invalid(text, f"'{text}' is not a date (YYYY-MM-DD)")
        elif when > as_of:
            value = Invalid(text, f"date {text} is after the as-of date {as_of.isoformat()}")
        else:
            value = Measurement((as_of - when).days / 365.25, f"since {when.isoformat()}", None, None, f"column '{header}'")
        patient.measurements[concept_id] = value
    return handle


def _uln_handler(concept_id: str, unit: str | None, header: str, registry: Registry) -> Handler:
    parser = NumberParser(concept_id, unit, registry)

    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        if is_missing(cell):
            return
        value = parser.parse(cell, header)
        if isinstance(value, Measurement):
            patient.uln[concept_id] = value.value
        else:
            patient.problems.append(f"{header} {value.reason}")
    return handle


def _category_handler(category_id: str) -> Handler:
    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        value = parse_yes_no(cell)
        if value is not None:
            patient.statuses[category_id] = value
    return handle


def _sex(patient: Patient, cell: str, _state: _RowState) -> None:
    text = cell.strip().lower()
    if text in FEMALE:
        patient.sex = "female"
    elif text in MALE:
        patient.sex = "male"
    elif not is_missing(text):
        patient.problems.append(f"sex '{cell.strip()}' is not female/male")


def _origin_handler(kind: str) -> Handler:
    # words or codes (`Asian`, `2028-9`, `8515`; several joined by ';'), eligibility/data/races.toml
    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        if not is_missing(cell):
            races.set_origin(patient, **{kind: cell})
    return handle


def _birth(patient: Patient, cell: str, state: _RowState) -> None:
    if is_missing(cell):
        return
    text = cell.strip()
    state.birth_raw = text
    state.birth = parse_date(text) or Invalid(text, f"birth date '{text}' is not a date (YYYY-MM-DD)")


def _death_handler(flag: bool, as_of: date) -> Handler:
    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        if is_missing(cell):
            return
        when = parse_date(cell)
        if when is not None:
            if when <= as_of:
                patient.deceased = when
            return
        answer = parse_yes_no(cell) if flag else None
        if answer is True:
            patient.deceased = date.min    # died, date not given
        elif answer is not False:
            patient.problems.append(f"death '{cell.strip()}' is not a date (YYYY-MM-DD)" + (" or yes/no" if flag else ""))
    return handle


def _decision_handler(criterion_id: str) -> Handler:
    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        text = cell.strip().lower()
        if text in ("pass", "fail"):
            patient.decisions[criterion_id] = text
        elif not is_missing(text):
            patient.problems.append(f"{criterion_id} '{cell.strip()}' is not a reviewer decision (pass/fail)")
    return handle


def _list_handler(kind: str, registry: Registry, vocab: Vocabulary, stats: ReadStats) -> Handler:
    def handle(patient: Patient, cell: str, _state: _RowState) -> None:
        items = list_items(cell)
        if items is None:
            return
        found: set[str] = set()
        for item in items:
            if kind == "conditions":
                ids = condition_ids(item, registry, vocab)
                if not ids:
                    stats.unknown_codes[f"condition '{item.lower()}'"] += 1
                found |= ids
            elif kind == "procedures":
                # no dates in a list cell: a time window on these goes to review
                keys = procedure_codes(registry).list_item(item)
                if not keys:
                    stats.unknown_codes[f"procedure '{item.lower()}'"] += 1
                found |= set(keys)
            else:
                tokens, known = medication_tokens(item, registry, vocab)
                if not known:
                    stats.unknown_codes[f"medication '{item.lower()}'"] += 1
                found |= tokens
        previous = getattr(patient, kind)
        setattr(patient, kind, frozenset(found | (previous or set())))
    return handle


def _classify(headers: list[str], path: Path, registry: Registry, as_of: date,
              stats: ReadStats) -> tuple[int, list[Handler | None]]:
    """The id column's index and one handler per column (None: ignored)."""
    keys = [header_key(h) for h in headers]
    id_index = next((keys.index(k) for k in ID_KEYS if k in keys), None)
    if id_index is None:
        raise DataInputError(
            f"{path}: no patient id column (expected one of patient_id, id, subject_id, person_id, "
            f"participant_id, mrn; header is {', '.join(h for h in headers[:8])}{', ...' if len(headers) > 8 else ''})",
            code="E-DATA-NO-ID", file=str(path))
    vocab = vocabulary(registry)
    handlers: list[Handler | None] = []
    unknown, ambiguous = [], []
    for index, header in enumerate(headers):
        handler, problem = (None, None) if index == id_index else _column(header, registry, vocab, as_of, stats)
        handlers.append(handler)
        if problem == "unknown":
            unknown.append(header)
        elif problem:
            ambiguous.append(problem)
    if unknown:
        stats.notes.append(f"{path.name}: unknown columns ignored: {', '.join(unknown)}")
    for problem in ambiguous:
        stats.notes.append(f"{path.name}: {problem}")
    return id_index, handlers


def _column(header: str, registry: Registry, vocab: Vocabulary, as_of: date,
            stats: ReadStats) -> tuple[Handler | None, str | None]:
    key = header_key(header)
    criterion = decision_id(header)
    if criterion:
        return _decision_handler(criterion), None
    if key in BIRTH_KEYS:
        return _birth, None
    if key in DEATH_DATE_KEYS or key in DEATH_FLAG_KEYS:
        return _death_handler(key in DEATH_FLAG_KEYS, as_of), None
    if key in SEX_KEYS:
        return _sex, None
    if key in ("race", "ethnicity"):
        return _origin_handler(key), None
    if key in CONDITION_LIST_KEYS:
        return _list_handler("conditions", registry, vocab, stats), None
    if key in MEDICATION_LIST_KEYS:
        return _list_handler("medications", registry, vocab, stats), None
    if key in PROCEDURE_LIST_KEYS:
        return _list_handler("procedures", registry, vocab, stats), None
    name, unit = name_and_unit(header, vocab, registry)
    name_key = header_key(name)
    if name_key.endswith("uln") and len(vocab.concepts.get(name_key[:-3], ())) == 1:
        return _uln_handler(vocab.concepts[name_key[:-3]][0], unit, header, registry), None
    derived = duration_concept(name, vocab)
    if derived:
        return _duration_handler(derived, header, as_of), None
    candidates = vocab.concepts.get(name_key, ())
    if len(candidates) > 1:
        exact = [c for c in candidates if header_key(c) == name_key]
        fitting = [c for c in candidates if unit_fits(registry, c, unit)] if unit else exact
        if len(fitting) != 1:
            return None, (f"ambiguous column '{header}' ({' or '.join(candidates)}): "
                          "give a unit in the header, e.g. 'insulin dose (U/kg/d)'")
        candidates = tuple(fitting)
    if candidates:
        return _concept_handler(candidates[0], unit, header, registry), None
    if name_key in vocab.categories:
        return _category_handler(vocab.categories[name_key]), None
    return None, "unknown"


def _finish(patient: Patient, state: _RowState, as_of: date) -> None:
    if isinstance(state.birth, date):
        if state.birth > as_of:
            patient.measurements["age"] = Invalid(state.birth_raw, f"birth date {state.birth_raw} is after the as-of date {as_of.isoformat()}")
        else:
            years = completed_years(state.birth, as_of)
            patient.measurements["age"] = Measurement(float(years), f"born {state.birth.isoformat()}", None, None, "birth date")
            record_birth_ages(patient, state.birth, as_of)
    elif isinstance(state.birth, Invalid) and not isinstance(patient.measurements.get("age"), Measurement):
        patient.measurements["age"] = state.birth


def _open_rows(path: Path, stats: ReadStats) -> tuple[Iterator[list[str]], list[str], object]:
    if path.is_dir():
        raise DataInputError(f"{path}: is a folder, expected a CSV file", code="E-DATA-READ", file=str(path))
    try:
        encoding = _encoding(path)
        handle = path.open("r", encoding=encoding, newline="")
        first = handle.readline()
    except FileNotFoundError:
        raise DataInputError(f"{path}: no such file", code="E-DATA-MISSING", file=str(path)) from None
    except OSError as exc:
        raise DataInputError(f"{path}: cannot read ({exc.strerror})", code="E-DATA-READ", file=str(path)) from None
    if encoding == "latin-1":
        stats.notes.append(f"{path.name}: not UTF-8, read as Latin-1")
    if not first.strip():
        handle.close()
        raise DataInputError(f"{path}: empty file (no header line)", code="E-DATA-EMPTY", file=str(path))
    delimiter = _delimiter(first)
    header = next(csv.reader([first], delimiter=delimiter))
    return csv.reader(handle, delimiter=delimiter), header, handle


def read_wide_csv(paths: Sequence[Path], *, as_of: date, lookback_days: int = 365,
                  registry: Registry, stats: ReadStats) -> Iterator[Patient]:
    """Patients of one or more wide CSV files, lazily, one per data row, in order.

    Every file's header is checked before the first patient is yielded, so a
    bad file fails the run before any output is written.
    """
    opened: list[tuple] = []
    handles = []
    try:
        for path in map(Path, paths):
            rows, header, handle = _open_rows(path, stats)
            handles.append(handle)
            id_index, handlers = _classify(header, path, registry, as_of, stats)
            opened.append((path, rows, header, handle, id_index, handlers))
    except BaseException:
        for handle in handles:
            handle.close()
        raise
    return _rows(opened, as_of, stats)


def _rows(opened: list, as_of: date, stats: ReadStats) -> Iterator[Patient]:
    first_row: dict[str, int] = {}
    number = 0
    for path, rows, header, handle, id_index, handlers in opened:
        width = len(header)
        active = [(i, h) for i, h in enumerate(handlers) if h is not None]
        with handle:
            for cells in rows:
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue   # a blank line is not a row
                number += 1
                stats.rows += 1
                patient_id = cells[id_index].strip() if id_index < len(cells) else ""
                patient = Patient(id=patient_id, row=number)
                if len(cells) < width:
                    patient.problems.append(f"row has {len(cells)} of {width} cells")
                elif len(cells) > width:
                    patient.problems.append(f"row has {len(cells)} cells, header has {width}; extra cells ignored")
                if not patient_id:
                    patient.problems.append("no patient id")
                elif patient_id in first_row:
                    patient.problems.append(f"duplicate id {patient_id} (first at row {first_row[patient_id]})")
                    stats.notes.append(f"duplicate id {patient_id}: rows {first_row[patient_id]} and {number}")
                else:
                    first_row[patient_id] = number
                state = _RowState()
                for index, handler in active:
                    if index < len(cells):
                        handler(patient, cells[index], state)
                _finish(patient, state, as_of)
                yield patient
