"""CSV tables of EHR exports, found by header name (Synthea versions and OMOP exports differ).

Shared by the Synthea and OMOP readers: a table is looked up by name in any
case (PERSON.csv, person.csv), columns by lower-case header name; comma or tab
separated (Athena vocabulary files use tabs).  Rows stream: nothing is loaded
whole.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Patient


def each_folder(paths, read_folder, *args) -> Iterator[Patient]:
    """Patients of several export folders in turn; row numbers continue across folders."""
    row = 0
    for folder in paths:
        for patient in read_folder(Path(folder), *args, row):
            row = patient.row
            yield patient


def find_table(folder: Path, name: str) -> Path | None:
    """`name`.csv in `folder`, any case (OMOP exports use PERSON.csv or person.csv)."""
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name.lower() in (f"{name}.csv", f"{name}.tsv", f"{name}.txt"):
            return path
    return None


def open_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
               ) -> tuple[dict[str, int], Iterator[list[str]]]:
    """Column indices by lower-case header name, and the data rows (comma or tab separated).

    Missing required columns are a DataInputError naming the file and what was expected;
    optional ones get index -1 (read them with `cell`).
    """
    handle = open(path, newline="", encoding="utf-8-sig")
    try:
        first = handle.readline()
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        handle.close()
        raise DataInputError(f"{path}: cannot read header ({exc})", code="E-DATA-READ", file=str(path)) from None
    index = {name: i for i, name in reversed(list(enumerate(header)))}
    missing = [c for c in required if c not in index]
    if missing:
        handle.close()
        raise DataInputError(
            f"{path.name}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'nothing'})",
            code="E-DATA-COLUMNS", file=str(path), line=1)
    columns = {c: index.get(c, -1) for c in (*required, *optional)}

    def rows() -> Iterator[list[str]]:
        with handle:
            try:
                yield from csv.reader(handle, delimiter=delimiter)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise DataInputError(f"{path}: unreadable CSV ({exc})", code="E-DATA-READ", file=str(path)) from None
    return columns, rows()


def cell(row: list[str], i: int) -> str:
    return row[i].strip() if 0 <= i < len(row) else ""
