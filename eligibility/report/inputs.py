"""Streaming readers for what `eligibility screen` writes: the results CSV, Parquet and the JSONL.

Both yield one `Patient` per output row, in file order, holding the outcomes in
the trial's criterion order.  Nothing is kept between rows, so a results file
of any length is read in bounded memory.  Anything that does not follow the
output contract (README "Use", DESIGN §7-8) stops the read with a
ReportInputError naming the file and line: a report drawn from a file it
misread would state wrong numbers.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

from .errors import ReportInputError

OUTCOMES = ("pass", "fail", "unknown", "review")
VERDICTS = ("eligible", "needs_review", "ineligible")
FIXED_COLUMNS = ("patient_id", "verdict", "reasons")
_REASON = re.compile(r"(\S+) (fail|unknown|review): ", re.S)
# A data note may itself hold "; " (`data: row has 19 cells, header has 18; extra cells ignored`).
_ROW_ENTRY = re.compile(r"; (?=data: |deceased\b)")


@dataclass(slots=True)
class Patient:
    patient_id: str
    line: int
    verdict: str
    outcomes: tuple[str, ...]
    # The CSV's reasons cell is split into criteria only when something reads it
    # (an unknown outcome, a table row): most rows of a large run never need it.
    parsed_reasons: dict[str, str] | None = None
    reasons_text: str = ""
    known: frozenset[str] = frozenset()
    # Present only when the row came from JSONL: the full explanation texts per criterion.
    explanations: dict[str, list[str]] | None = None
    decided_by_reviewer: frozenset[str] = frozenset()
    # Row-level entries that precede the criteria in `reasons`: data notes (`data: ...`)
    # and death on or before the as-of date (`deceased 2015-10-23`), which alone makes a patient ineligible.
    notes: tuple[str, ...] = ()
    deceased: str = ""

    @property
    def reasons(self) -> dict[str, str]:
        """The short reason of each non-pass criterion, by criterion id."""
        if self.parsed_reasons is None:
            self.parsed_reasons = split_reasons(self.reasons_text, self.known)[0]
        return self.parsed_reasons


def is_jsonl(path: Path) -> bool:
    """JSONL by suffix, else by the first non-blank character (`{`), so `-o results.txt` still reads."""
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return True
    if path.suffix.lower() == ".csv":
        return False
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def expected_verdict(outcomes: Sequence[str], deceased: bool = False) -> str:
    """DESIGN §7 and docs/patient-data.md: died by the as-of date or any fail → ineligible;
    all pass → eligible; else needs_review."""
    if deceased or "fail" in outcomes:
        return "ineligible"
    return "eligible" if all(o == "pass" for o in outcomes) else "needs_review"


@lru_cache(maxsize=8)
def _entry_pattern(ids: frozenset[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.compile(rf"(?:^|(?<=; ))({names}) (?:fail|unknown|review): ")


def split_reasons(text: str, ids: frozenset[str]) -> tuple[dict[str, str], list[str]]:
    """The CSV `reasons` cell → (criterion reasons by id, row-level entries before them).

    `data: short row; deceased 2015-10-23; I3 fail: BMI …; E1 unknown: ALT missing; AST missing`
    → ({"I3": "BMI …", "E1": "ALT missing; AST missing"}, ["data: short row", "deceased 2015-10-23"]).
    A criterion's own text may hold `; `, so an entry starts only where a known
    criterion id and an outcome follow a separator, not at every `; `.
    """
    starts = list(_entry_pattern(ids).finditer(text))
    found: dict[str, str] = {}
    for i, match in enumerate(starts):
        end = starts[i + 1].start() - 2 if i + 1 < len(starts) else len(text)
        found[match.group(1)] = text[match.end():end]
    head = text[:starts[0].start()].removesuffix("; ") if starts else text
    return found, [entry for entry in _ROW_ENTRY.split(head) if entry]


def _row_entries(entries: Sequence[str]) -> tuple[tuple[str, ...], str]:
    deceased = next((e for e in entries if e.startswith("deceased")), "")
    return tuple(e for e in entries if not e.startswith("deceased")), deceased


Fail = Callable[..., NoReturn]


def _check_row(patient: Patient, ids: Sequence[str], fail: Fail) -> None:
    for cid, outcome in zip(ids, patient.outcomes):
        if outcome not in OUTCOMES:
            fail(f"patient {patient.patient_id!r}: criterion {cid} outcome {outcome!r} is not one of "
                 f"{', '.join(OUTCOMES)}", "E-REPORT-OUTCOME")
    if patient.verdict not in VERDICTS:
        fail(f"patient {patient.patient_id!r}: verdict {patient.verdict!r} is not one of {', '.join(VERDICTS)}",
             "E-REPORT-VERDICT")
    want = expected_verdict(patient.outcomes, bool(patient.deceased))
    if patient.verdict != want:
        fail(f"patient {patient.patient_id!r}: verdict {patient.verdict!r} contradicts its outcomes "
             f"(they give {want!r}); is this the trial the results were screened with?", "E-REPORT-VERDICT")


def _columns(header: Sequence[str], ids: Sequence[str], fail: Fail) -> list[int]:
    """Where each criterion's outcome sits in a results row (CSV or Parquet) whose columns are `header`."""
    if tuple(header[:3]) != FIXED_COLUMNS:
        if tuple(header[:2]) == FIXED_COLUMNS[:2] and "reasons" not in header:
            fail("no reasons column (written with --columns outcomes?): the report needs the reasons",
                 "E-REPORT-HEADER")
        fail(f"header starts {', '.join(header[:3])!s}; a results file starts patient_id, verdict, reasons",
             "E-REPORT-HEADER")
    columns = list(header[3:])
    known = set(ids)
    extra = [c for c in columns if c not in known]
    missing = [c for c in ids if c not in columns]
    if extra or missing or len(set(columns)) != len(columns):
        fail(f"criterion columns do not match the trial (not in the trial: {', '.join(extra) or 'none'}; "
             f"missing: {', '.join(missing) or 'none'})", "E-REPORT-HEADER")
    return [3 + columns.index(c) for c in ids]


def _row_patient(record: Sequence[str], line: int, where: Sequence[int], known: frozenset[str]) -> Patient:
    """One row of a results CSV or Parquet file (patient_id, verdict, reasons, outcomes)."""
    text = record[2]
    parsed, notes, deceased = None, (), ""
    if text.startswith(("data: ", "deceased")):   # row-level entries come first (docs/patient-data.md §6)
        parsed, entries = split_reasons(text, known)
        notes, deceased = _row_entries(entries)
    return Patient(patient_id=record[0], line=line, verdict=record[1], outcomes=tuple(record[i] for i in where),
                   parsed_reasons=parsed if text else {}, reasons_text=text, known=known, notes=notes,
                   deceased=deceased)


def read_csv(path: Path, ids: Sequence[str]) -> Iterator[Patient]:
    known = frozenset(ids)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)

        def fail(message: str, code: str) -> NoReturn:
            raise ReportInputError(message, code=code, file=str(path), line=reader.line_num or 1)

        try:
            header = next(reader, None)
            if not header:
                fail("empty results file: no header line", "E-REPORT-HEADER")
            where = _columns(header, ids, fail)
            width = len(header)
            for record in reader:
                if not record:
                    continue
                if len(record) != width:
                    fail(f"row has {len(record)} fields, the header has {width}", "E-REPORT-ROW")
                patient = _row_patient(record, reader.line_num, where, known)
                _check_row(patient, ids, fail)
                yield patient
        except csv.Error as exc:
            fail(f"not a readable CSV: {exc}", "E-REPORT-ROW")
        except UnicodeDecodeError as exc:
            fail(f"not UTF-8 text ({exc.reason} at byte {exc.start})", "E-REPORT-ROW")


def read_parquet(path: Path, ids: Sequence[str]) -> Iterator[Patient]:
    """A results Parquet file, a batch at a time; the position in errors is the row (1 = the first patient)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    known = frozenset(ids)
    row = 0

    def fail(message: str, code: str) -> NoReturn:
        raise ReportInputError(message, code=code, file=str(path), line=row or None)

    try:
        parquet = pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        fail(f"not a readable Parquet file ({exc})", "E-REPORT-FILE")
    names = parquet.schema_arrow.names
    where = _columns(names, ids, fail)
    for field in parquet.schema_arrow:
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            fail(f"column {field.name} holds {field.type}; results columns hold text", "E-REPORT-HEADER")
    try:
        # memory holds one decoded row group (DuckDB writes 131,072 rows per group, the Python engine 16,384)
        for batch in parquet.iter_batches(batch_size=1 << 13, use_threads=False):
            for record in zip(*(column.to_pylist() for column in batch.columns)):
                row += 1
                if None in record:
                    fail(f"column {names[record.index(None)]} is empty (null)", "E-REPORT-ROW")
                patient = _row_patient(record, row, where, known)
                _check_row(patient, ids, fail)
                yield patient
    except (OSError, pa.ArrowException) as exc:
        fail(f"not a readable Parquet file ({exc})", "E-REPORT-ROW")


def is_parquet(path: Path) -> bool:
    """Parquet by suffix, else by the file's magic bytes."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        return True
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def _jsonl_patient(obj: object, ids: Sequence[str], line: int, fail: Fail) -> Patient:
    if not isinstance(obj, dict):
        fail("a JSONL results line is one JSON object per patient", "E-REPORT-ROW")
    for key, kind in (("patient_id", str), ("verdict", str), ("criteria", list)):
        if not isinstance(obj.get(key), kind):
            fail(f"field {key!r} is missing or not a {kind.__name__}", "E-REPORT-ROW")
    by_id: dict[str, dict] = {}
    for entry in obj["criteria"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            fail("each entry of 'criteria' needs an 'id'", "E-REPORT-ROW")
        by_id[entry["id"]] = entry
    extra = [c for c in by_id if c not in set(ids)]
    missing = [c for c in ids if c not in by_id]
    if extra or missing:
        fail(f"criteria do not match the trial (not in the trial: {', '.join(extra) or 'none'}; "
             f"missing: {', '.join(missing) or 'none'})", "E-REPORT-ROW")
    reasons: dict[str, str] = {}
    entries = []
    for text in map(str, obj.get("reasons") or []):
        match = _REASON.match(text)
        if match and match.group(1) in by_id:
            reasons[match.group(1)] = text[match.end():]
        else:
            entries.append(text)
    notes, deceased = _row_entries(entries)
    # `notes` is the JSONL's own list of data notes; the reasons repeat them, so they are not counted twice.
    notes = tuple(str(n) for n in obj.get("notes") or []) or notes
    explanations = {}
    for cid in ids:
        lines = by_id[cid].get("explanation") or []
        explanations[cid] = [str(x) for x in lines] if isinstance(lines, list) else [str(lines)]
    return Patient(
        patient_id=obj["patient_id"], line=line, verdict=obj["verdict"],
        outcomes=tuple(str(by_id[c].get("outcome")) for c in ids), parsed_reasons=reasons,
        explanations=explanations,
        decided_by_reviewer=frozenset(c for c in ids if by_id[c].get("reviewer_decision") is True),
        notes=notes, deceased=deceased)


def read_jsonl(path: Path, ids: Sequence[str]) -> Iterator[Patient]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):

            def fail(message: str, code: str, column: int | None = None, _n: int = number) -> NoReturn:
                raise ReportInputError(message, code=code, file=str(path), line=_n, column=column)

            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except UnicodeDecodeError as exc:
                fail(f"not UTF-8 text ({exc.reason})", "E-REPORT-JSON")
            except json.JSONDecodeError as exc:
                fail(f"not JSON: {exc.msg}", "E-REPORT-JSON", exc.colno)
            patient = _jsonl_patient(obj, ids, number, fail)
            _check_row(patient, ids, fail)
            yield patient


def read_results(path: Path, ids: Sequence[str]) -> Iterator[Patient]:
    if not path.is_file():
        raise ReportInputError("no such results file", code="E-REPORT-FILE", file=str(path))
    try:
        reader = read_parquet if is_parquet(path) else read_jsonl if is_jsonl(path) else read_csv
    except OSError as exc:
        raise ReportInputError(f"cannot read results: {exc.strerror}", code="E-REPORT-FILE", file=str(path)) from None
    return reader(path, ids)
