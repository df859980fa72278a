"""OMOP CDM 5.4 CSV folders: PERSON, MEASUREMENT, CONDITION_OCCURRENCE, DRUG_EXPOSURE, PROCEDURE_OCCURRENCE.

Optional tables are used when present: OBSERVATION (numeric values recorded
there), DEATH, and CONCEPT (unit codes, drug names, the SNOMED code behind a
condition concept).  Athena vocabulary files are tab separated; the table
reader accepts either separator.

Mapping (registry data): measurement_concept_id by the concepts' `omop` ids,
else measurement_source_value as LOINC; unit_concept_id by the registry's
`omop_units`, else the export's CONCEPT table, and 0 falls back to
unit_source_value; operator_concept_id gives the comparator; range_high is
the patient's upper limit of normal.  Conditions by OMOP concept id, the
concept's SNOMED code, or condition_source_value (SNOMED or ICD-10).  Drugs
by RxNorm ingredient code or the ingredient names in the concept name.
Procedures by OMOP concept id, the concept's SNOMED / ICD-10-PCS code and name,
the source concept, or procedure_source_value (a SNOMED code, or ICD-10-PCS).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Patient
from eligibility.registry.concepts import Registry
from eligibility.readers.csv_tables import cell, each_folder, find_table, open_table
from eligibility.readers.observations import LongAssembler, parse_day, split_comparator
from eligibility.readers.procedures import is_pcs_code
from eligibility.registry.races import set_origin

_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$", re.I)


def read_omop(paths: Sequence[Path], *, as_of: date, lookback_days: int, registry: Registry, stats
              ) -> Iterator[Patient]:
    return each_folder(paths, _read_folder, as_of, lookback_days, registry, stats)


def _int(text) -> int:
    try:
        return int(float(text)) if text else 0
    except ValueError:
        return 0


def omop_unit(unit_id: int, source: str, units: dict[int, str], concepts) -> str:
    """The unit spelling of a measurement: registry `omop_units`, else the CONCEPT table, else the source text."""
    if not unit_id:
        return source
    known = units.get(unit_id) or (concepts.get(unit_id) or ("", "", ""))[2]
    return known or source or f"OMOP unit concept {unit_id}"


class _Concepts:
    """The few CONCEPT rows a run needs: all units, and the drug/condition ids that occur."""

    def __init__(self, path: Path | None, wanted: set[int]) -> None:
        self.rows: dict[int, tuple[str, str, str]] = {}   # id -> (name, vocabulary, code)
        if path is None:
            return
        cols, rows = open_table(path, ("concept_id", "concept_name", "vocabulary_id", "concept_code"), ("domain_id",))
        i_id, i_dom = cols["concept_id"], cols["domain_id"]
        for row in rows:
            cid = _int(cell(row, i_id))
            if cid in wanted or cell(row, i_dom) == "Unit":
                self.rows[cid] = (cell(row, cols["concept_name"]), cell(row, cols["vocabulary_id"]),
                                  cell(row, cols["concept_code"]))

    def get(self, cid: int) -> tuple[str, str, str] | None:
        return self.rows.get(cid)


def _need(folder: Path, name: str) -> Path:
    path = find_table(folder, name)
    if path is None:
        raise DataInputError(f"{folder}: OMOP CDM folder without {name.upper()}.csv", code="E-DATA-MISSING",
                             file=str(folder))
    return path


def _ids_in(path: Path | None, column: str) -> set[int]:
    if path is None:
        return set()
    cols, rows = open_table(path, (column,))
    return {_int(cell(row, cols[column])) for row in rows}


def _read_folder(folder: Path, as_of: date, lookback_days: int, registry: Registry, stats, row0: int
                 ) -> Iterator[Patient]:
    asm = LongAssembler(as_of=as_of, lookback_days=lookback_days, registry=registry, stats=stats)
    person = _need(folder, "person")
    measurement = _need(folder, "measurement")
    conditions, drugs = find_table(folder, "condition_occurrence"), find_table(folder, "drug_exposure")
    procedures = find_table(folder, "procedure_occurrence")
    wanted = _ids_in(conditions, "condition_concept_id") | _ids_in(drugs, "drug_concept_id") | _ids_in(
        procedures, "procedure_concept_id") | _ids_in(procedures, "procedure_source_concept_id")
    concepts = _Concepts(find_table(folder, "concept"), wanted)
    people = _persons(person, registry)
    _measurements(asm, measurement, concepts, "measurement")
    if (path := find_table(folder, "observation")) is not None:
        _measurements(asm, path, concepts, "observation")
    if conditions is not None:
        _conditions(asm, conditions, concepts)
    else:
        stats.notes.append(f"{folder}: no CONDITION_OCCURRENCE.csv; conditions and pregnancy are unknown")
    if drugs is not None:
        _drugs(asm, drugs, concepts)
    else:
        stats.notes.append(f"{folder}: no DRUG_EXPOSURE.csv; current medications are unknown")
    if procedures is not None:
        _procedures(asm, procedures, concepts)
    else:
        stats.notes.append(f"{folder}: no PROCEDURE_OCCURRENCE.csv; procedures are unknown")
    deaths = _deaths(find_table(folder, "death"))
    orphans = asm.leftover_patients() - {p[0] for p in people}
    if orphans:
        stats.notes.append(f"{folder}: {len(orphans)} person_id(s) have records but no PERSON row "
                           f"(not screened), e.g. {sorted(orphans)[0]}")
    for n, (pid, birth, death, sex, *origin) in enumerate(people, start=row0 + 1):
        patient = asm.build(pid, n, birth=birth, sex=sex, death=deaths.get(pid, death))
        set_origin(patient, *origin)
        yield patient


def _persons(path: Path, registry: Registry) -> list[tuple[str, ...]]:
    cols, rows = open_table(path, ("person_id",), (
        "gender_concept_id", "gender_source_value", "year_of_birth", "month_of_birth", "day_of_birth",
        "birth_datetime", "death_datetime", "race_concept_id", "race_source_value", "ethnicity_concept_id",
        "ethnicity_source_value"))
    people = []
    for line, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        pid = cell(row, cols["person_id"])
        if not pid:
            raise DataInputError(f"{path.name}: row without a person_id", code="E-DATA-ID", file=str(path), line=line)
        birth = cell(row, cols["birth_datetime"])[:10]
        if not birth:
            y, m, d = (cell(row, cols[k]) for k in ("year_of_birth", "month_of_birth", "day_of_birth"))
            # a year alone does not give completed years at a date: leave it visibly incomplete
            birth = f"{y}-{int(m):02d}-{int(d):02d}" if y and m.isdigit() and d.isdigit() else (
                f"year {y} only" if y else "")
        sex = registry.omop_genders.get(_int(cell(row, cols["gender_concept_id"]))) or cell(
            row, cols["gender_source_value"])
        # concept 0 ("No matching concept"): the source value (`hawaiian`, `other`) may still say it
        origin = [cell(row, cols[f"{k}_concept_id"]).lstrip("0") or cell(row, cols[f"{k}_source_value"])
                  for k in ("race", "ethnicity")]
        people.append((pid, birth, cell(row, cols["death_datetime"])[:10], sex, *origin))
    return people


def _deaths(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    cols, rows = open_table(path, ("person_id",), ("death_date", "death_datetime"))
    return {cell(r, cols["person_id"]): cell(r, cols["death_date"]) or cell(r, cols["death_datetime"])[:10]
            for r in rows}


def _measurements(asm: LongAssembler, path: Path, concepts: _Concepts, table: str) -> None:
    """MEASUREMENT (or OBSERVATION: same shape, `observation_` prefix) rows with known concepts."""
    t = table
    cols, rows = open_table(path, ("person_id", f"{t}_concept_id", f"{t}_date"), (
        f"{t}_datetime", "value_as_number", "value_as_string", "value_as_concept_id", "value_source_value",
        "unit_concept_id", "unit_source_value", "operator_concept_id", f"{t}_source_value", "range_high"))
    by_omop, by_loinc = asm.codes.omop_measurement, asm.codes.loinc
    units, operators = asm.registry.omop_units, asm.registry.omop_operators
    i_pid, i_cid, i_date, i_dt = cols["person_id"], cols[f"{t}_concept_id"], cols[f"{t}_date"], cols[f"{t}_datetime"]
    i_num, i_src = cols["value_as_number"], cols[f"{t}_source_value"]
    unknown: Counter = Counter()
    for row in rows:
        cid = cell(row, i_cid)
        concept, label = by_omop.get(_int(cid)), f"OMOP {cid}"
        if concept is None:
            source = cell(row, i_src)
            concept, label = by_loinc.get(source), f"LOINC {source}"
            if concept is None:
                if table == "measurement" or source:
                    unknown[cid if cid not in ("", "0") else source or "0"] += 1
                continue
        value: str | float | None = cell(row, i_num)
        if value:
            try:
                value = float(value)
            except ValueError:
                pass
        else:
            value = cell(row, cols["value_as_string"]) or cell(row, cols["value_source_value"])
            coded = _int(cell(row, cols["value_as_concept_id"]))
            if not value and coded:
                value = f"coded value (OMOP concept {coded})"
        unit = omop_unit(_int(cell(row, cols["unit_concept_id"])), cell(row, cols["unit_source_value"]), units, concepts)
        high = cell(row, cols["range_high"])
        try:
            uln = float(high) if high else None
        except ValueError:
            uln = None
        when = cell(row, i_date) or cell(row, i_dt)
        stamp = cell(row, i_dt)
        operator = operators.get(_int(cell(row, cols["operator_concept_id"])))
        if operator is None and isinstance(value, float):
            # no operator concept, but the source text may still say "<0.3"
            operator = split_comparator(cell(row, cols["value_source_value"]))[0]
        # '=' (4172703) is an exact value: no bound direction (an interval [v, inf) otherwise)
        asm.observation(cell(row, i_pid), concept, label, stamp if stamp[:10] == when[:10] and stamp else when,
                        value, unit, None if operator == "=" else operator, uln)
    asm.unknown(unknown, "OMOP")


def condition_ids(codes, cid: str, source: str, concepts, display: str | None = None) -> tuple[tuple[str, ...], str]:
    """Keys of a condition row (OMOP concept id, its SNOMED / ICD-10-CM code, the source value, the concept's
    name or the record's own display name) and a label."""
    known = concepts.get(_int(cid))
    ids = list(codes.conditions("OMOP", cid, display or (known[0] if known is not None else None)))
    label = f"OMOP {cid}"
    if known is not None and known[1] in ("SNOMED", "ICD10CM"):
        ids += codes.conditions("SNOMED" if known[1] == "SNOMED" else "ICD10", known[2])
    if source:
        system = "ICD10" if _ICD10.match(source) else "SNOMED"
        found = codes.conditions(system, source)
        if found and not ids:
            label = f"{system} {source}"
        ids += found
    return tuple(dict.fromkeys(ids)), label


def drug_identity(cid: str, source: str, concepts) -> tuple[str, str | None, str | None]:
    """(concept name, RxNorm code, description text) of a drug exposure row."""
    known = concepts.get(_int(cid))
    name, rxnorm = "", None
    if known is not None:
        name = known[0]
        if known[1] == "RxNorm":
            rxnorm = known[2]
    text = " ".join(t for t in (name, "" if source.isdigit() else source) if t)
    if rxnorm is None and source.isdigit():
        rxnorm = source
    return name, rxnorm, text or None


def _conditions(asm: LongAssembler, path: Path, concepts: _Concepts) -> None:
    cols, rows = open_table(path, ("person_id", "condition_concept_id", "condition_start_date"), (
        "condition_end_date", "condition_source_value", "condition_start_datetime"))
    asm.conditions_known = True
    codes = asm.codes
    unknown: Counter = Counter()
    for row in rows:
        cid, source = cell(row, cols["condition_concept_id"]), cell(row, cols["condition_source_value"])
        ids, label = condition_ids(codes, cid, source, concepts)
        if not ids:
            unknown[f"OMOP {cid}" if cid not in ("", "0") else f"source {source}"] += 1
            continue
        start = cell(row, cols["condition_start_date"]) or cell(row, cols["condition_start_datetime"])
        asm.condition(cell(row, cols["person_id"]), ids, label, start,
                      cell(row, cols["condition_end_date"]))
    for key, n in unknown.items():
        asm.stats.unknown_codes[key] += n


def _drugs(asm: LongAssembler, path: Path, concepts: _Concepts) -> None:
    cols, rows = open_table(path, ("person_id", "drug_concept_id", "drug_exposure_start_date"), (
        "drug_exposure_end_date", "days_supply", "drug_source_value"))
    asm.medications_known = True
    unknown: Counter = Counter()
    for row in rows:
        cid = cell(row, cols["drug_concept_id"])
        name, rxnorm, text = drug_identity(cid, cell(row, cols["drug_source_value"]), concepts)
        start, end = cell(row, cols["drug_exposure_start_date"]), cell(row, cols["drug_exposure_end_date"])
        if not end and (days := _int(cell(row, cols["days_supply"]))) > 0 and (begin := parse_day(start)):
            end = (begin + timedelta(days=days - 1)).isoformat()
        counts: Counter = Counter()
        asm.medication(cell(row, cols["person_id"]), rxnorm, text, start, end, counts)
        if counts:
            unknown[f"{cid}" + (f" ({name})" if name else "")] += 1
    asm.unknown(unknown, "OMOP")


_PROCEDURE_VOCABULARIES = {"SNOMED": "SNOMED", "ICD10PCS": "ICD10PCS"}


def procedure_keys(codes, cid: str, source_cid: str, source: str, concepts) -> tuple[tuple[str, ...], str]:
    """Keys of a procedure row (its concept id, name and code, the source concept, the source value) and a label."""
    keys: list[str] = []
    label = ""
    for concept_id, own in ((cid, True), (source_cid, False)):
        known = concepts.get(_int(concept_id))
        if known is not None:
            label = label or known[0]
            if (system := _PROCEDURE_VOCABULARIES.get(known[1])) is not None:
                keys += codes.procedures(system, known[2], known[0])
            else:
                keys += codes.procedures("", "", known[0])
        if own and _int(concept_id):
            keys += codes.procedures("OMOP", concept_id, known[0] if known is not None else None)
    if source:
        # concept 0: the source value is the code the ETL could not map (a SNOMED id, or ICD-10-PCS)
        keys += codes.procedures("ICD10PCS" if is_pcs_code(source) else "SNOMED", source)
    label = label or (f"OMOP {cid}" if _int(cid) else f"source {source}")
    return tuple(dict.fromkeys(keys)), label


def _procedures(asm: LongAssembler, path: Path, concepts: _Concepts) -> None:
    cols, rows = open_table(path, ("person_id", "procedure_concept_id"), (
        "procedure_date", "procedure_datetime", "procedure_source_value", "procedure_source_concept_id"))
    if cols["procedure_date"] < 0 and cols["procedure_datetime"] < 0:
        raise DataInputError(f"{path.name}: missing column procedure_date (or procedure_datetime)",
                             code="E-DATA-COLUMNS", file=str(path), line=1)
    asm.procedures_known = True
    unknown: Counter = Counter()
    for row in rows:
        if not any(c.strip() for c in row):
            continue
        cid, source = cell(row, cols["procedure_concept_id"]), cell(row, cols["procedure_source_value"])
        keys, label = procedure_keys(asm.codes, cid, cell(row, cols["procedure_source_concept_id"]), source, concepts)
        if not keys:
            unknown[f"procedure OMOP {cid}" if _int(cid) else f"procedure source {source or '(empty)'}"] += 1
            continue
        when = cell(row, cols["procedure_date"]) or cell(row, cols["procedure_datetime"])
        asm.procedure(cell(row, cols["person_id"]), keys, label, when)
    asm.stats.unknown_codes.update(unknown)
