"""The one patient model every reader produces and every evaluator consumes.

Readers (wide CSV, Synthea, OMOP, FHIR) resolve codes, units and dates into
this shape; values are already in the concept's canonical unit, so evaluators
only compare numbers.  A value that was present but unusable is kept as an
`Invalid` with its reason: it evaluates as UNKNOWN and the reason is reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Measurement:
    value: float                    # in the concept's canonical unit
    raw: str                        # as given, e.g. "58 mmol/mol"
    unit: str | None = None         # unit as given (None: canonical assumed)
    when: date | None = None        # date of the observation, when known
    code: str | None = None         # e.g. "LOINC 4548-4", or the CSV column name
    comparator: str | None = None   # "<" for a reported "<0.1"


@dataclass(frozen=True, slots=True)
class Invalid:
    raw: str
    reason: str                     # e.g. "'7,5' is not a number"


Value = Measurement | Invalid


@dataclass(slots=True)
class Patient:
    id: str
    row: int                                     # 1-based position in the input (data row number)
    measurements: dict[str, Value] = field(default_factory=dict)    # concept id -> value
    uln: dict[str, float] = field(default_factory=dict)             # concept id -> patient's ULN
    # Condition keys known present: registry ids and code keys ("icd10cm:I25.1" with every
    # ancestor, "snomed:<code>", "omop:<id>"; eligibility.registry.codes).  None: nothing is
    # known (unknown); a set lists everything known (absent means FALSE).
    conditions: frozenset[str] | None = None
    condition_onset: dict[str, date] = field(default_factory=dict)     # key -> earliest onset
    condition_latest: dict[str, date] = field(default_factory=dict)    # key -> latest record date
    # Procedure keys (registry ids, "snomed:<code>", "icd10pcs:<code>", ...) with the date each was
    # last performed; None = procedures not recorded (unknown), a set lists everything known.
    procedures: frozenset[str] | None = None
    procedure_dates: dict[str, date] = field(default_factory=dict)
    # ATC codes (and lower-case ingredient names) of current medications; None = unknown.
    medications: frozenset[str] | None = None
    # Last day each drug token was taken, past drugs included, where the data has a drug history
    # (Synthea, OMOP, FHIR; a wide CSV lists current drugs only and leaves this empty).
    medication_last: dict[str, date] = field(default_factory=dict)
    # The record behind each current drug token, for explanations: (as written, start date).
    medication_records: dict[str, tuple[str, date]] = field(default_factory=dict)
    statuses: dict[str, bool | Invalid] = field(default_factory=dict)  # pregnancy, breastfeeding, ...
    sex: str | None = None                       # "female" / "male"
    # OMB race / ethnicity ids (eligibility/data/races.toml: "asian", "hispanic"); several races
    # joined by "," ("asian,white"); None = not recorded (unknown)
    race: str | None = None
    ethnicity: str | None = None
    deceased: date | None = None
    decisions: dict[str, str] = field(default_factory=dict)          # criterion id -> "pass"/"fail" by a reviewer
    problems: list[str] = field(default_factory=list)                # row-level notes (duplicate id, short row, ...)
    # Completed months of age, set only when a birth date is known: bounds written in months or
    # weeks compare this (docs/patient-data.md "Age"); measurements["age"] stays completed years.
    age_months: int | None = None
    # Days lived, likewise from a birth date: bounds in days or weeks ("28 days to 6 months") compare
    # this, as completed months would fail a 29-day-old against "28 days or older".
    age_days: int | None = None


def record_birth_ages(patient: Patient, born: date, on: date) -> None:
    """The ages finer than years that bounds in months, or in days and weeks, compare (eligibility.evaluate.ages)."""
    patient.age_months = completed_months(born, on)
    patient.age_days = (on - born).days


def completed_years(born: date, on: date) -> int:
    """Whole years lived: born 1970-05-02 is 55 on 2026-05-01 and 56 on 2026-05-02."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def completed_months(born: date, on: date) -> int:
    """Whole months lived: born 2025-07-01 is 6 months old on 2026-01-01, born 2025-07-02 is 5."""
    return (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
