"""Procedure records (Synthea procedures.csv, OMOP PROCEDURE_OCCURRENCE, FHIR Procedure, the wide
CSV's `procedures` list) as the keys a `has` procedure node meets, with the date each was last done.

A record's keys (eligibility.registry.codes): the registry procedure ids whose SNOMED CT codes,
ICD-10-PCS prefixes or OMOP concept ids hold its code, every broader id of those
(`kidney_transplant` -> `solid_organ_transplant` -> `transplant`), the code's own key
(`snomed:70536003`, `icd10pcs:0TY0`, ... with prefixes for ICD-10-PCS), and what the record's
display name means through the vocabulary (`Laparoscopic sleeve gastrectomy (procedure)` ->
`sleeve_gastrectomy`, `bariatric_surgery`, ...).  A record none of this recognises has no keys;
the readers count it under the run's unknown codes (a data problem, never a crash).

Dates: a procedure counts from the day it was performed (Synthea START / DATE, OMOP
procedure_date, FHIR performedDateTime or performedPeriod.start); records after the as-of date
are left out, and per key the latest date is kept ("hemodialysis within the past 6 months" asks
about the last session).  A record without a usable date still says the procedure was done, but
not when: its keys lose their dates, so a time window on them goes to review instead of being
decided by the other, dated records (the undated one may be the latest).
"""
from __future__ import annotations

import re
from datetime import date

from eligibility.registry.codes import CodeTable, code_keys, display_keys
from eligibility.registry.concepts import Registry, normalize_phrase
from eligibility.registry.vocabulary import Vocabulary

# reader system names -> key prefixes (eligibility.registry.codes)
SYSTEM_KEYS = {"SNOMED": "snomed", "ICD10PCS": "icd10pcs", "OMOP": "omop"}
# ICD-10-PCS: seven characters, digits and letters other than I and O; one letter at least, so that
# a seven-digit SNOMED CT id is never read as one
_PCS = re.compile(r"^(?=.*[A-HJ-NP-Z])[0-9A-HJ-NP-Z]{7}$")


def is_pcs_code(code: str) -> bool:
    return bool(_PCS.match(code.strip().upper()))


class ProcedureCodes:
    """Code and name tables of the registry's procedure entries (built once per registry)."""

    def __init__(self, registry: Registry, vocab: Vocabulary) -> None:
        self.registry = registry
        self.vocabulary = vocab
        self.table = CodeTable(registry, registry.categories_of("procedure"), lambda cat: cat.icd10pcs, "ICD10PCS")
        self.ids, self.with_broader = self.table.ids, self.table.with_broader
        self.names: dict[str, str] = {}
        for cat in registry.categories_of("procedure"):
            for phrase in (cat.id, cat.name, *cat.synonyms):
                self.names.setdefault(normalize_phrase(phrase), cat.id)

    def keys(self, system: str, code: str, display: str | None = None) -> tuple[str, ...]:
        """Keys of one procedure record; empty when neither its code nor its display name is known."""
        code = (code or "").strip()
        keys = self.with_broader(self.ids(system, code)) if code else {}
        meaning = display_keys(self.vocabulary, display, kinds=("procedure",)) if display else set()
        if not keys and not meaning:
            return ()
        if code and (name := SYSTEM_KEYS.get(system)):
            keys.update(dict.fromkeys(sorted(code_keys(name, code))))
        keys.update(dict.fromkeys(sorted(meaning)))
        return tuple(keys)

    def list_item(self, item: str) -> tuple[str, ...]:
        """Keys of an item of a wide CSV `procedures` list: a registry procedure name or synonym, a
        SNOMED CT code, an ICD-10-PCS code, or a longer name read through the vocabulary."""
        text = item.strip()
        found = self.names.get(normalize_phrase(text))
        if found is not None:
            return tuple(self.with_broader((found,)))
        if text.isdigit():
            return self.keys("SNOMED", text)
        if is_pcs_code(text):
            return self.keys("ICD10PCS", text.upper())
        return self.keys("", "", text)


class ProcedureLog:
    """Per patient: every procedure key known, and the date each was last performed."""

    def __init__(self, as_of: date) -> None:
        self.as_of = as_of
        self._keys: dict[str, dict[str, date | None]] = {}   # pid -> key -> latest date (None: undated)
        self._undated: dict[str, set[str]] = {}

    def add(self, pid: str, keys: tuple[str, ...], day: date | None) -> None:
        """One record already dated (None: no usable date); the caller leaves out records after as_of."""
        known = self._keys.setdefault(pid, {})
        if day is None:
            self._undated.setdefault(pid, set()).update(keys)
        for key in keys:
            prev = known.get(key)
            if day is not None and (prev is None or day > prev):
                known[key] = day
            else:
                known.setdefault(key, None)

    def pop(self, pid: str) -> tuple[frozenset[str], dict[str, date]]:
        known = self._keys.pop(pid, {})
        undated = self._undated.pop(pid, set())
        return frozenset(known), {k: d for k, d in known.items() if d is not None and k not in undated}

    def patients(self) -> set[str]:
        return set(self._keys)
