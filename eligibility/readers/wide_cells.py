"""Cell and header parsing for the wide patient CSV (rules: docs/patient-data.md).

Kept apart from the row loop so the DuckDB engine and tests can reuse the exact
same header keys, missing-value spellings and list parsing.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from eligibility.core.errors import UnitError
from eligibility.core.patient import Invalid, Measurement
from eligibility.registry.concepts import Registry, normalize_phrase
from eligibility.registry.codes import code_keys, display_keys
from eligibility.registry.vocabulary import vocabulary as terms
from eligibility.registry.conversion import Conversion
from eligibility.registry.units import ULN, conversion, display_unit, is_known_unit

MISSING = frozenset({"", "na", "n/a", "null", "none", "unknown", "-", "nan", "."})
LIST_EMPTY = frozenset({"none", "nil", "no"})
YES = frozenset({"yes", "y", "true", "1", "positive", "present", "pos"})
NO = frozenset({"no", "n", "false", "0", "negative", "absent", "neg"})
FEMALE = frozenset({"f", "female", "w", "woman"})
MALE = frozenset({"m", "male", "man"})

ID_KEYS = ("patientid", "id", "subjectid", "personid", "participantid", "mrn", "patient", "subject",
           "recordid", "studyid", "pid", "participant", "screeningid")
BIRTH_KEYS = frozenset({"birthdate", "dateofbirth", "dob", "birthday"})
DEATH_DATE_KEYS = frozenset({"deathdate", "dateofdeath", "deceaseddate", "dod"})
DEATH_FLAG_KEYS = frozenset({"deceased", "died"})
SEX_KEYS = frozenset({"sex", "gender", "sexatbirth"})
CONDITION_LIST_KEYS = frozenset({"conditions", "condition", "diagnoses", "diagnosis", "comorbidities", "problems"})
MEDICATION_LIST_KEYS = frozenset({"medications", "medication", "meds", "drugs", "currentmedications"})
PROCEDURE_LIST_KEYS = frozenset({"procedures", "procedure", "procedurehistory", "pastprocedures"})

_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*)$")
# "1e400": beyond a double (Python reads inf, 1e-400 reads 0); warehouses refuse to cast it, so
# no engine reads three-digit exponents (sql.cells.HUGE_EXPONENT says the same)
_HUGE_EXPONENT = re.compile(r"[eE][+-]?\d{3,}$")
_BOUND = re.compile(r"^(?:[<>≤≥]=?|=>|=<)\s*[+-]?[\d.]")
_COMMA = re.compile(r"^[+-]?\d*,\d+")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?$")
_DECISION_ID = re.compile(r"^[IEie]\d+(?:\.\d+)*$")
_UNIT_SUFFIX = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]*?)\s*[\)\]]\s*$")
_ICD10 = re.compile(r"^[A-Z]\d{2}(?:\.[0-9A-Z]{1,4})?$")
_ATC = re.compile(r"^[A-Z]\d{2}(?:[A-Z](?:[A-Z](?:\d{2})?)?)?$")
_LIST_SPLIT = re.compile(r"[;|]")


def header_key(text: str) -> str:
    """Case- and punctuation-insensitive key: `Patient-ID` -> `patientid`."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[^\w%]|_", "", text)


def split_unit(header: str) -> tuple[str, str | None]:
    """`HbA1c (mmol/mol)` -> (`HbA1c`, `mmol/mol`); no trailing (...) -> (header, None)."""
    match = _UNIT_SUFFIX.match(header.strip())
    if match and match.group(2):
        return match.group(1), match.group(2)
    return header.strip(), None


def name_and_unit(header: str, vocab: Vocabulary, registry: Registry) -> tuple[str, str | None]:
    """A header's concept name and unit: `HbA1c (mmol/mol)`, and the data-team form `weight_kg`,
    `creatinine_mg_dl` (a known unit after the last underscores, when the rest names a concept)."""
    key = header_key(header)
    if key in vocab.concepts or key in vocab.categories:
        return header.strip(), None
    name, unit = split_unit(header)
    if unit is None and not key.endswith("uln"):    # `ALT_ULN` is the patient's limit, not ALT in ULN
        parts = name.split("_")
        for n in (1, 2):
            base, tail = "_".join(parts[:-n]), "/".join(parts[-n:])
            if len(parts) > n and header_key(base) in vocab.concepts and is_known_unit(tail, registry):
                return base, tail
    return name, unit


def decision_id(header: str) -> str | None:
    text = header.strip()
    return text.upper() if _DECISION_ID.match(text) else None


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def parse_date(cell: str) -> date | None:
    match = _DATE.match(cell.strip())
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def parse_yes_no(cell: str) -> bool | Invalid | None:
    text = cell.strip().lower()
    if text in MISSING:
        return None
    if text in YES:
        return True
    if text in NO:
        return False
    return Invalid(cell.strip(), f"'{cell.strip()}' is not yes/no")


def fmt_number(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True, slots=True)
class NumberParser:
    """Parses one column's numbers into a concept's canonical unit (conversion chosen once per unit)."""

    concept_id: str
    header_unit: str | None
    registry: Registry

    def parse(self, cell: str, code: str | None = None) -> Measurement | Invalid:
        text = cell.strip()
        match = None if _COMMA.match(text) else _NUMBER.match(text)
        if match is None:
            if _BOUND.match(text):
                return Invalid(text, f"'{text}' is a bound, not a value")
            if _COMMA.match(text):
                return Invalid(text, f"'{text}' is not a number (decimal comma?)")
            return Invalid(text, f"'{text}' is not a number")
        if _HUGE_EXPONENT.search(match.group(1)):
            return Invalid(text, f"'{text}' is not a number (exponent out of range)")
        value = float(match.group(1))
        unit = match.group(2).strip() or self.header_unit
        conv = _conversion(self.registry, self.concept_id, unit)
        if isinstance(conv, str):
            return Invalid(text, f"'{text}': {conv}")
        canonical = conv.apply(value)
        concept = self.registry.concepts[self.concept_id]
        if concept.plausible is not None:
            low, high = concept.plausible
            if not (low <= canonical <= high):
                shown = display_unit(concept.canonical_unit)
                given = text if match.group(2).strip() else f"{text} {unit}"
                converted = "" if conv.is_identity else f"{given} = "
                return Invalid(text, f"{converted}{fmt_number(canonical)} {shown} is outside the plausible range "
                                     f"{fmt_number(low)}–{fmt_number(high)} {shown}")
        return Measurement(canonical, text, unit, code=code and f"column '{code}'")


@lru_cache(maxsize=4096)
def _conversion(registry: Registry, concept_id: str, unit: str | None) -> Conversion | str:
    """The conversion for a unit, or the reason it is refused (cached: never pint per row)."""
    try:
        conv = conversion(concept_id, unit, registry)
    except UnitError as error:
        return error.message
    if conv.canonical_unit == ULN and registry.concepts[concept_id].canonical_unit != ULN:
        # `3 x ULN` in an ALT cell: the lab's own ULN is not in the cell, so it is not a value in U/L
        return f"'{unit}' is a multiple of the upper limit of normal, not a value in {registry.concepts[concept_id].canonical_unit}"
    return conv


def unit_fits(registry: Registry, concept_id: str, unit: str) -> bool:
    """Can a value in `unit` be this concept (decides between concepts sharing a name)?"""
    return not isinstance(_conversion(registry, concept_id, unit), str)


@dataclass(frozen=True)
class Vocabulary:
    """Registry names keyed for header and list matching (built once per registry)."""

    concepts: dict[str, tuple[str, ...]]       # header key -> concept ids
    categories: dict[str, str]                 # header key -> category id
    list_names: dict[str, str]                 # normalized phrase -> category id
    durations: dict[str, str]                  # header key of "diagnosis of x" phrases -> concept id


@lru_cache(maxsize=8)
def vocabulary(registry: Registry) -> Vocabulary:
    concepts: dict[str, list[str]] = {}
    durations: dict[str, str] = {}
    for concept in registry.concepts.values():
        for phrase in (concept.id, *concept.synonyms):
            ids = concepts.setdefault(header_key(phrase), [])
            if concept.id not in ids:
                ids.append(concept.id)
            if (concept.derived_from or "").startswith("condition:"):
                durations.setdefault(header_key(phrase), concept.id)
        # "T2DM diagnosis date": the condition's own names (the registry no longer lists
        # "diagnosis of t2dm" as a synonym of the duration; the compiler reads it as the condition)
        origin = registry.categories.get((concept.derived_from or "").removeprefix("condition:"))
        for name in (origin.name, *origin.synonyms) if origin is not None else ():
            for form in ("", "diagnosis of ", "diagnosed with ", "history of "):
                durations.setdefault(header_key(form + name), concept.id)
    categories: dict[str, str] = {}
    list_names: dict[str, str] = {}
    for cat in registry.categories.values():
        for phrase in (cat.id, cat.name, *cat.synonyms):
            categories.setdefault(header_key(phrase), cat.id)
            list_names.setdefault(normalize_phrase(phrase), cat.id)
    return Vocabulary({k: tuple(v) for k, v in concepts.items()}, categories, list_names, durations)


def duration_concept(header: str, vocab: Vocabulary) -> str | None:
    """`diabetes_diagnosis_date` -> the concept derived from that diagnosis (diabetes_duration)."""
    key = header_key(header)
    if key.endswith("date"):
        rest = key[: -len("date")]
    elif key.startswith("dateof"):
        rest = key[len("dateof"):]
    else:
        return None
    candidates = [rest]
    if rest.endswith("diagnosis"):
        candidates.append("diagnosisof" + rest[: -len("diagnosis")])
    if rest.endswith("diagnosed"):
        candidates.append("diagnosedwith" + rest[: -len("diagnosed")])
    for candidate in candidates:
        if candidate in vocab.durations:
            return vocab.durations[candidate]
    return None


def list_items(cell: str) -> list[str] | None:
    """Items of a list cell; None = unknown (empty/missing); [] = known empty (`none`)."""
    text = cell.strip()
    if text.lower() in LIST_EMPTY:
        return []
    if text.lower() in MISSING:
        return None
    items = [item.strip() for item in _LIST_SPLIT.split(text)]
    return [item for item in items if item]


def condition_ids(item: str, registry: Registry, vocab: Vocabulary) -> set[str]:
    """Keys of an item of a conditions list (empty: not known): the registry condition/status ids it
    names, as the SQL reads them (eligibility.sql.cells), plus the code keys that code-book conditions
    are matched by (eligibility.registry.codes): an ICD-10-CM code with its ancestors, or what an
    unlisted name means in the vocabulary."""
    found = vocab.list_names.get(normalize_phrase(item))
    if found is not None and registry.categories[found].category != "medication":
        return {found, *registry.broader.get(found, ())}
    code = item.strip().upper()
    ids: set[str] = set()
    if _ICD10.match(code):
        for cat in registry.categories.values():
            if cat.category != "medication" and any(code.startswith(p.upper()) for p in cat.icd10):
                ids.add(cat.id)
        ids |= {b for i in ids for b in registry.broader.get(i, ())}
        if ids or terms(registry).is_icd_code(code):
            ids |= code_keys("icd10cm", code)
    elif code.isdigit():
        ids = {cat.id for cat in registry.categories.values() if code in cat.snomed}
        ids |= {b for i in ids for b in registry.broader.get(i, ())}
        if ids:
            ids.add(f"snomed:{code}")
    else:
        # the registry's own ids come from whole names only, as in SQL; within a longer name the
        # vocabulary gives code keys, which only code-book (icd10cm:...) entries are matched by
        ids = {k for k in display_keys(terms(registry), item) if ":" in k}
    return ids


def medication_tokens(item: str, registry: Registry, vocab: Vocabulary) -> tuple[set[str], bool]:
    """Tokens (ATC codes, lower-case names) for one medication item, and whether it was recognised."""
    phrase = normalize_phrase(item)
    ingredient = registry.ingredient_by_name.get(phrase)
    if ingredient is None and item.strip().isdigit():
        ingredient = registry.ingredient_by_rxnorm.get(item.strip())
    if ingredient is not None:
        return {ingredient.name.lower(), ingredient.atc.upper()}, True
    code = item.strip().upper()
    if _ATC.match(code):
        return {code}, True
    found = vocab.list_names.get(phrase)
    if found is not None and registry.categories[found].category == "medication":
        cls = registry.categories[found]
        return {p.upper() for p in cls.atc} | {m.lower() for m in cls.members}, True
    return {phrase}, False
