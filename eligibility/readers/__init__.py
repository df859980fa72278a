"""Patient readers: every input format becomes the one `Patient` model (eligibility.core.patient).

`read_patients` detects the format from the path (a wide CSV file, a folder of
Synthea CSVs, a folder of OMOP CDM CSVs, FHIR Bundle JSON files) unless told,
and yields patients lazily in input order.  Per-run facts that are not about a
single patient (unknown codes skipped, duplicate ids) accumulate in `ReadStats`
for the summary.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from eligibility.core.errors import DataInputError
from eligibility.readers.stats import ReadStats

if TYPE_CHECKING:   # detect_format serves the DuckDB engine's start-up, which needs no pydantic
    from eligibility.core.patient import Patient
    from eligibility.registry.concepts import Registry

FORMATS = ("wide", "synthea", "omop", "fhir")


@dataclass
class PatientSource:
    format: str
    paths: list[Path]
    patients: Iterator[Patient]
    stats: ReadStats


def _has_csv(folder: Path, *names: str) -> bool:
    present = {p.name.lower() for p in folder.iterdir() if p.is_file()}
    return all(any(f"{n}.csv" == q or q.startswith(f"{n}.") for q in present) for n in names)


def detect_format(path: Path) -> str:
    if not path.exists():
        raise DataInputError(f"{path}: no such file or folder", code="E-DATA-MISSING")
    if path.is_dir():
        if _has_csv(path, "person", "measurement"):
            return "omop"
        if _has_csv(path, "patients", "observations"):
            return "synthea"
        if any(p.suffix.lower() == ".json" for p in path.iterdir()):
            return "fhir"
        raise DataInputError(
            f"{path}: folder is neither a Synthea export (patients.csv, observations.csv) "
            "nor OMOP CDM CSVs (PERSON.csv, MEASUREMENT.csv) nor FHIR Bundle JSON files",
            code="E-DATA-FOLDER",
        )
    if path.suffix.lower() in (".json", ".ndjson"):
        return "fhir"
    return "wide"


def read_patients(
    paths: Sequence[str | Path],
    *,
    input_format: str = "auto",
    as_of: date,
    lookback_days: int = 365,
    registry: Registry,
) -> PatientSource:
    paths = [Path(p) for p in paths]
    formats = {detect_format(p) if input_format == "auto" else input_format for p in paths}
    if len(formats) != 1:
        raise DataInputError(f"mixed patient data formats {sorted(formats)}: give one format per run", code="E-DATA-MIXED")
    fmt = formats.pop()
    stats = ReadStats()
    if fmt == "wide":
        from eligibility.readers.wide_csv import read_wide_csv as reader
    elif fmt == "synthea":
        from eligibility.readers.synthea import read_synthea as reader
    elif fmt == "omop":
        from eligibility.readers.omop import read_omop as reader
    elif fmt == "fhir":
        from eligibility.readers.fhir import read_fhir as reader
    else:
        raise DataInputError(f"unknown input format {fmt!r} (expected one of {', '.join(FORMATS)})", code="E-DATA-FORMAT")
    patients = reader(paths, as_of=as_of, lookback_days=lookback_days, registry=registry, stats=stats)
    return PatientSource(fmt, paths, patients, stats)
