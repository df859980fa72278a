"""Synthea CSV exports: patients.csv, observations.csv, conditions.csv, medications.csv, procedures.csv.

Columns are found by header name because Synthea versions differ (patients.csv
has 25 or more columns; conditions.csv may carry a SYSTEM column naming
SNOMED-CT or ICD-10).  Observation codes are LOINC; condition codes SNOMED CT
unless SYSTEM says otherwise; medication codes RxNorm clinical drugs, resolved
to ingredients by code or by the ingredient names in DESCRIPTION; procedure
codes SNOMED CT (3.x: START, STOP and SYSTEM; 2.x: DATE), dated by their start.

Dates are taken as written: observation and medication timestamps are UTC
(`...Z`), condition START/STOP plain dates.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Patient
from eligibility.registry.concepts import Registry
from eligibility.readers.csv_tables import cell, each_folder, find_table, open_table
from eligibility.readers.observations import LongAssembler
from eligibility.registry.races import set_origin


def read_synthea(paths: Sequence[Path], *, as_of: date, lookback_days: int, registry: Registry, stats
                 ) -> Iterator[Patient]:
    return each_folder(paths, _read_folder, as_of, lookback_days, registry, stats)


def _need(folder: Path, name: str) -> Path:
    path = find_table(folder, name)
    if path is None:
        raise DataInputError(f"{folder}: Synthea export without {name}.csv", code="E-DATA-MISSING", file=str(folder))
    return path


def _read_folder(folder: Path, as_of: date, lookback_days: int, registry: Registry, stats, row0: int
                 ) -> Iterator[Patient]:
    asm = LongAssembler(as_of=as_of, lookback_days=lookback_days, registry=registry, stats=stats)
    people = _patients(_need(folder, "patients"))
    _observations(asm, _need(folder, "observations"))
    if (path := find_table(folder, "conditions")) is not None:
        _conditions(asm, path)
    else:
        stats.notes.append(f"{folder}: no conditions.csv; conditions and pregnancy are unknown")
    if (path := find_table(folder, "medications")) is not None:
        _medications(asm, path)
    else:
        stats.notes.append(f"{folder}: no medications.csv; current medications are unknown")
    if (path := find_table(folder, "procedures")) is not None:
        _procedures(asm, path)
    else:
        stats.notes.append(f"{folder}: no procedures.csv; procedures are unknown")
    known = {p[0] for p in people}
    orphans = asm.leftover_patients() - known
    if orphans:
        stats.notes.append(f"{folder}: {len(orphans)} patient id(s) have records but no row in patients.csv "
                           f"(not screened), e.g. {sorted(orphans)[0]}")
    first_row: dict[str, int] = {}
    for n, (pid, birth, death, sex, *origin) in enumerate(people, start=row0 + 1):
        patient = asm.build(pid, n, birth=birth, sex=sex, death=death)
        set_origin(patient, *origin)
        if pid in first_row:
            patient.problems.append(f"duplicate patient id {pid!r}: its records went to row {first_row[pid]}")
        first_row.setdefault(pid, n)
        yield patient


def _patients(path: Path) -> list[tuple[str, ...]]:
    cols, rows = open_table(path, ("id", "birthdate"), ("deathdate", "gender", "race", "ethnicity"))
    i_id, i_birth, i_death, i_sex = cols["id"], cols["birthdate"], cols["deathdate"], cols["gender"]
    people = []
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        pid = cell(row, i_id)
        if not pid:
            raise DataInputError(f"{path.name}: row without an Id", code="E-DATA-ID", file=str(path), line=line)
        people.append((pid, cell(row, i_birth), cell(row, i_death), cell(row, i_sex),
                       cell(row, cols["race"]), cell(row, cols["ethnicity"])))     # white / asian, hispanic / nonhispanic
    return people


def _observations(asm: LongAssembler, path: Path) -> None:
    cols, rows = open_table(path, ("date", "patient", "code", "value"), ("units", "type"))
    i_date, i_pat, i_code, i_val, i_unit = cols["date"], cols["patient"], cols["code"], cols["value"], cols["units"]
    loinc = asm.codes.loinc
    unknown: Counter = Counter()
    observe = asm.observation
    labels: dict[str, str] = {}
    width = max(i_date, i_pat, i_code, i_val, i_unit) + 1
    for row in rows:
        if len(row) < width:
            if not any(c.strip() for c in row):
                continue
            row = row + [""] * (width - len(row))
        code = row[i_code]
        concept = loinc.get(code)
        if concept is None:
            unknown[code] += 1
            continue
        label = labels.get(code) or labels.setdefault(code, f"LOINC {code}")
        observe(row[i_pat], concept, label, row[i_date], row[i_val], row[i_unit] if i_unit >= 0 else None)
    asm.unknown(unknown, "LOINC")


def _system(text: str) -> str:
    text = text.upper()
    return "ICD10" if "ICD" in text else "SNOMED"


def _conditions(asm: LongAssembler, path: Path) -> None:
    cols, rows = open_table(path, ("start", "patient", "code"), ("stop", "system", "description"))
    asm.conditions_known = True
    unknown: Counter = Counter()
    for row in rows:
        code = cell(row, cols["code"])
        if not code:
            continue
        system = _system(cell(row, cols["system"])) if cols["system"] >= 0 else "SNOMED"
        ids = asm.codes.conditions(system, code, cell(row, cols["description"]) if cols["description"] >= 0 else None)
        if not ids:
            unknown[f"{system} {code}"] += 1
            continue
        asm.condition(cell(row, cols["patient"]), ids, f"{system} {code}", cell(row, cols["start"]),
                      cell(row, cols["stop"]))
    for key, n in unknown.items():
        asm.stats.unknown_codes[key] += n


def _medications(asm: LongAssembler, path: Path) -> None:
    cols, rows = open_table(path, ("start", "patient", "code"), ("stop", "description"))
    asm.medications_known = True
    unknown: Counter = Counter()
    for row in rows:
        if not any(c.strip() for c in row):
            continue
        asm.medication(cell(row, cols["patient"]), cell(row, cols["code"]), cell(row, cols["description"]),
                       cell(row, cols["start"]), cell(row, cols["stop"]), unknown)
    asm.unknown(unknown, "RxNorm")


def _procedure_system(text: str) -> str:
    text = text.upper()
    if not text or "SNOMED" in text:
        return "SNOMED"
    return "ICD10PCS" if "PCS" in text else text


def _procedures(asm: LongAssembler, path: Path) -> None:
    cols, rows = open_table(path, ("patient", "code"), ("start", "date", "system", "description"))
    i_when = cols["start"] if cols["start"] >= 0 else cols["date"]
    if i_when < 0:
        raise DataInputError(f"{path.name}: missing column START (Synthea 3.x) or DATE (2.x)",
                             code="E-DATA-COLUMNS", file=str(path), line=1)
    asm.procedures_known = True
    unknown: Counter = Counter()
    for row in rows:
        code = cell(row, cols["code"])
        description = cell(row, cols["description"])
        if not code and not description:
            continue
        system = _procedure_system(cell(row, cols["system"]))
        keys = asm.codes.procedures(system, code, description or None)
        if not keys:
            unknown[f"procedure {system} {code}" if code else f"procedure {description!r}"] += 1
            continue
        asm.procedure(cell(row, cols["patient"]), keys, description or f"{system} {code}", cell(row, i_when))
    for key, n in unknown.items():
        asm.stats.unknown_codes[key] += n
