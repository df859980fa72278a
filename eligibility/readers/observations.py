"""The long observation model shared by the Synthea, OMOP and FHIR readers.

Every EHR format is a stream of dated facts: (patient, code system, code, time,
value, comparator, unit) for observations, (patient, code, start, stop) for
conditions and medications.  The readers only find columns and codes; this
module turns the stream into `Patient`s:

- per concept the latest usable value on or before `as_of`; a value older than
  the lookback window is reported (unknown, with its date) instead of used;
- values are converted once per (concept, unit) through `units.conversion`
  and checked against the concept's plausible range; a value that cannot be
  used (text, bad unit, no date, implausible) becomes an `Invalid` with a
  reason, and only wins when no usable value exists in the window (a later
  unusable value is noted in `Patient.problems`);
- conditions by SNOMED / ICD-10 / OMOP code, with their earliest onset (which
  feeds the registry's `derived_from = "condition:<id>"` durations); statuses
  such as pregnancy are true while an episode is open on `as_of` (else unknown);
- medications active on `as_of` (start <= as_of <= stop, no stop = ongoing)
  become ATC codes and ingredient names through the registry's ingredients
  (a locally acting dose form, e.g. a hydrocortisone cream, keeps the name
  but not the ingredient's systemic ATC code);
- procedures by SNOMED / ICD-10-PCS / OMOP code or display name, with the date each key was
  last performed on or before `as_of` (eligibility.readers.procedures).

Memory is one candidate per (patient, concept), never the rows themselves,
so observation files need not be sorted by patient.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from functools import lru_cache
from math import isfinite

from eligibility.core.errors import UnitError
from eligibility.core.patient import Invalid, Measurement, Patient, completed_years, record_birth_ages
from eligibility.registry.concepts import Ingredient, Registry
from eligibility.registry.codes import CodeTable, code_keys, display_keys
from eligibility.registry.vocabulary import vocabulary
from eligibility.registry.conversion import Conversion
from eligibility.registry.units import conversion, display_unit
from eligibility.readers.procedures import ProcedureCodes, ProcedureLog

_COMPARATORS = ("<=", ">=", "<", ">", "=")
_EMPTY: dict = {}
_DATES: dict[str, date | None] = {}


def parse_day(text: str | None) -> date | None:
    """The calendar date of an ISO date or timestamp, as written (local date when an offset is given)."""
    if not text:
        return None
    head = text.strip()[:10]
    try:
        return _DATES[head]
    except KeyError:
        pass
    try:
        day: date | None = date.fromisoformat(head)
    except ValueError:
        day = None
    if len(_DATES) < 200_000:
        _DATES[head] = day
    return day


def split_comparator(text: str) -> tuple[str | None, str]:
    """'<0.1' -> ('<', '0.1'); '7.0' -> (None, '7.0')."""
    for op in _COMPARATORS:
        if text.startswith(op):
            return (None if op == "=" else op), text[len(op):].strip()
    return None, text


def sex_of(text: str | None) -> str | None:
    key = (text or "").strip().lower()
    return {"f": "female", "female": "female", "m": "male", "male": "male"}.get(key)


def years_between(start: date, end: date) -> float:
    """Fractional years, (end - start).days / 365.25: the wide CSV reader's and the SQL engine's rule."""
    return (end - start).days / 365.25


_SYSTEM_KEYS = {"ICD10": "icd10cm", "SNOMED": "snomed", "OMOP": "omop"}


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "


class CodeMap:
    """Code -> registry id tables, built once per registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.loinc = registry.concept_by_loinc
        self.omop_measurement = registry.concept_by_omop
        self.condition_codes = CodeTable(registry, [c for c in registry.categories.values() if c.category != "medication"],
                                         lambda cat: cat.icd10, "ICD10")
        self.rxnorm = registry.ingredient_by_rxnorm
        self.vocabulary = vocabulary(registry)
        self.procedure_codes = ProcedureCodes(registry, self.vocabulary)
        names = sorted(registry.ingredient_by_name, key=len, reverse=True)
        self._by_words = {_words(n).strip(): registry.ingredient_by_name[n] for n in names}
        self._ingredient_re = re.compile(
            r" (" + "|".join(re.escape(_words(n).strip()) for n in names) + r") ") if names else None
        local = [_words(f).strip() for f in registry.medication_forms.get("local", ())]
        self._local_re = re.compile(r" (" + "|".join(map(re.escape, local)) + r") ") if local else None

    def drug_tokens(self, rxnorm: str | None, text: str | None) -> tuple[str, ...]:
        """What a current drug adds to Patient.medications: ATC codes and lower-case ingredient names."""
        local = self.is_local_form(text)
        tokens: list[str] = []
        for ing in self.ingredients(rxnorm, text):
            tokens += [ing.name.lower()] if local else [ing.atc, ing.name.lower()]
        return tuple(tokens)

    def is_local_form(self, text: str | None) -> bool:
        """A product applied where it acts (cream, eye drops, inhaler): not its ingredient's systemic ATC."""
        return bool(text and self._local_re is not None and self._local_re.search(_words(text)))

    def conditions(self, system: str, code: str, display: str | None = None) -> tuple[str, ...]:
        """Keys of a condition record (eligibility.registry.codes): the registry ids its code maps to,
        then its code keys and what its display name means; empty when none of that is known."""
        ids = self.condition_codes.ids(system, code)
        keys = self.condition_codes.with_broader(ids)
        meaning = display_keys(self.vocabulary, display) if display else set()
        name = _SYSTEM_KEYS.get(system)
        known_code = name == "icd10cm" and self.vocabulary.is_icd_code(code)
        if not ids and not meaning and not known_code:
            return ()
        if name:
            keys.update(dict.fromkeys(sorted(code_keys(name, code))))
        keys.update(dict.fromkeys(sorted(meaning)))
        return tuple(keys)

    def procedures(self, system: str, code: str, display: str | None = None) -> tuple[str, ...]:
        """Keys of a procedure record (SNOMED, ICD10PCS or OMOP code; eligibility.readers.procedures):
        registry procedure ids with their broader ids, code keys, what the display name means."""
        return self.procedure_codes.keys(system, code, display)

    def ingredients(self, rxnorm: str | None, text: str | None) -> list[Ingredient]:
        """Ingredients of a drug: its RxNorm ingredient code, else ingredient names in its description."""
        found: dict[str, Ingredient] = {}
        if rxnorm and rxnorm.strip() in self.rxnorm:
            ing = self.rxnorm[rxnorm.strip()]
            found[ing.name] = ing
        if text and self._ingredient_re is not None:
            padded = _words(text)
            # overlapping search: step back one char so adjacent names both match
            pos = 0
            while (m := self._ingredient_re.search(padded, pos)) is not None:
                ing = self._by_words[m.group(1)]
                found[ing.name] = ing
                pos = m.end() - 1
        return list(found.values())


@lru_cache(maxsize=8)
def code_map(registry: Registry) -> CodeMap:
    return CodeMap(registry)


class LongAssembler:
    """Collects one run's observations, conditions and medications; builds Patients."""

    def __init__(self, *, as_of: date, lookback_days: int, registry: Registry, stats) -> None:
        self.as_of = as_of
        self.lookback_days = lookback_days
        self.window_start = as_of - timedelta(days=lookback_days)
        self.registry = registry
        self.stats = stats
        self.codes = code_map(registry)
        self.conditions_known = False
        self.medications_known = False
        self.procedures_known = False
        self._procedures = ProcedureLog(as_of)
        self._conv: dict[tuple[str, str | None], Conversion | str] = {}
        # pid -> concept -> (day, stamp, Measurement, uln)
        self._valid: dict[str, dict[str, tuple]] = {}
        # pid -> concept -> (sort day, stamp, Invalid, day or None)
        self._invalid: dict[str, dict[str, tuple]] = {}
        self._conditions: dict[str, dict[str, tuple[date | None, str]]] = {}
        self._latest: dict[str, dict[str, date]] = {}     # pid -> key -> latest record date
        self._statuses: dict[str, set[str]] = {}
        self._meds: dict[str, set[str]] = {}
        self._med_last: dict[str, dict[str, date]] = {}     # pid -> token -> last day taken (past drugs)
        self._med_records: dict[str, dict[str, tuple[str, date]]] = {}   # pid -> token -> (record, start)
        self._problems: dict[str, list[str]] = {}

    # -- input --------------------------------------------------------------
    def unknown(self, counts: Counter, system: str) -> None:
        """Add a reader's per-code counts of unmapped rows to the run summary."""
        for code, n in counts.items():
            self.stats.unknown_codes[f"{system} {code}"] += n

    def _convert(self, concept: str, unit: str | None) -> Conversion | str:
        key = (concept, unit)
        conv = self._conv.get(key)
        if conv is None:
            try:
                conv = conversion(concept, unit, self.registry)
            except UnitError as exc:
                conv = exc.message
            self._conv[key] = conv
        return conv

    def observation(self, pid: str, concept: str, code: str, when: str | None, value: str | float | None,
                    unit: str | None, comparator: str | None = None, uln: float | None = None) -> None:
        """One observation already mapped to a registry concept (`code` names it, e.g. 'LOINC 4548-4')."""
        day = parse_day(when)
        stamp = when or ""
        if day is not None:
            if day > self.as_of:
                return
            # older than the usable value already kept: it can change nothing (the common case)
            cur = self._valid.get(pid, _EMPTY).get(concept)
            if cur is not None and (cur[0] > day or (cur[0] == day and cur[1] > stamp)):
                return
        unit = (unit or "").strip() or None
        problem = None
        number = 0.0
        if isinstance(value, float):
            number, text = value, repr(value)
        else:
            text = (value or "").strip()
            if text[:1] in ("<", ">", "="):
                op, digits = split_comparator(text)
                comparator = comparator or op
            else:
                digits = text
            try:
                number = float(digits)
            except ValueError:
                problem = "no value" if not text else f"{text!r} is not a number"
            else:
                if not isfinite(number):
                    problem = f"{text!r} is not a number"
        raw = f"{text} {unit}" if unit else text
        canonical = 0.0
        conv = None
        if problem is None:
            conv = self._convert(concept, unit)
            if isinstance(conv, str):
                problem = conv
            else:
                canonical = conv.apply(number)
                plausible = self.registry.concepts[concept].plausible
                if plausible is not None and not plausible[0] <= canonical <= plausible[1]:
                    cu = display_unit(self.registry.concepts[concept].canonical_unit)
                    problem = f"{raw} is implausible (plausible {plausible[0]:g}–{plausible[1]:g} {cu})"
        if problem is None and day is None:
            problem = f"no date ({when!r})" if when else "no date"
        if problem is None:
            patient_uln = None if uln is None or not isinstance(conv, Conversion) else conv.apply(uln)
            measurement = Measurement(canonical, raw, unit, day, code, comparator)
            self._valid.setdefault(pid, {})[concept] = (day, stamp, measurement, patient_uln)
            return
        name = self.registry.concepts[concept].name
        where = f" on {day}" if day else ""
        invalid = Invalid(raw, f"{name} {raw!r}{where} ({code}): {problem}")
        sort_day = day or date.min
        table = self._invalid.setdefault(pid, {})
        cur = table.get(concept)
        if cur is not None and (cur[0] > sort_day or (cur[0] == sort_day and cur[1] > stamp)):
            return
        table[concept] = (sort_day, stamp, invalid, day)

    def condition(self, pid: str, ids: tuple[str, ...], code: str, start: str | None, stop: str | None) -> None:
        """A condition record mapped to registry ids (conditions and statuses)."""
        begin = parse_day(start)
        if begin is not None and begin > self.as_of:
            return
        if start and begin is None:
            self._problems.setdefault(pid, []).append(f"{code}: start {start!r} is not a date; onset unknown")
        end = parse_day(stop)
        ongoing = end is None or end >= self.as_of
        statuses = [cid for cid in ids if (cat := self.registry.categories.get(cid)) is not None
                    and cat.category == "status"]
        if statuses:
            # a pregnancy or breastfeeding record says something only while open; its codes are
            # not a condition history
            if ongoing:
                self._statuses.setdefault(pid, set()).update(statuses)
            return
        for cid in ids:
            known = self._conditions.setdefault(pid, {})
            prev = known.get(cid)
            if prev is None or (begin is not None and (prev[0] is None or begin < prev[0])):
                known[cid] = (begin, code)
            latest = self._latest.setdefault(pid, {})
            if begin is not None and (cid not in latest or begin > latest[cid]):
                latest[cid] = begin

    def procedure(self, pid: str, keys: tuple[str, ...], label: str, when: str | None) -> None:
        """A procedure record mapped to keys (CodeMap.procedures), performed on `when`."""
        day = parse_day(when)
        if day is not None and day > self.as_of:
            return
        if day is None:
            shown = f"date {when!r} is not a date" if when else "no date"
            self._problems.setdefault(pid, []).append(f"procedure {label}: {shown}; when it was done is unknown")
        self._procedures.add(pid, keys, day)

    def medication(self, pid: str, rxnorm: str | None, text: str | None, start: str | None, stop: str | None,
                   unknown: Counter) -> None:
        """A medication record; counted when active on as_of (start <= as_of <= stop)."""
        begin, end = parse_day(start), parse_day(stop)
        if begin is None:
            self._problems.setdefault(pid, []).append(
                f"medication {text or rxnorm!r} has no usable start date ({start!r}); not counted as current")
            return
        if begin > self.as_of:
            return
        if end is not None and end < self.as_of:
            # not current; kept with its last day for windows ("opioids within the past 6 months")
            last = self._med_last.setdefault(pid, {})
            for token in self.codes.drug_tokens(rxnorm, text):
                last[token] = max(end, last.get(token, end))
            return
        tokens = self.codes.drug_tokens(rxnorm, text)
        if not tokens:
            unknown[rxnorm or (text or "").strip() or "?"] += 1
            return
        self._meds.setdefault(pid, set()).update(tokens)
        records = self._med_records.setdefault(pid, {})
        for token in tokens:
            records.setdefault(token, ((text or f"RxNorm {rxnorm}").strip(), begin))

    # -- output -------------------------------------------------------------
    def build(self, pid: str, row: int, *, birth: str | None, sex: str | None, death: str | None) -> Patient:
        """The Patient for `pid` (its collected facts are released)."""
        patient = Patient(id=pid, row=row, sex=sex_of(sex))
        patient.problems.extend(self._problems.pop(pid, ()))
        self._measurements(patient, self._valid.pop(pid, {}), self._invalid.pop(pid, {}))
        self._derived(patient, birth)
        conditions = self._conditions.pop(pid, {})
        statuses = self._statuses.pop(pid, set())
        if self.conditions_known:
            patient.conditions = frozenset(conditions)
            patient.condition_onset = {cid: onset for cid, (onset, _) in conditions.items() if onset is not None}
            patient.condition_latest = self._latest.pop(pid, {})
            # Only an open episode says something: no pregnancy code does not establish
            # that someone is not pregnant (docs/patient-data.md §4), so absence stays unknown.
            for status in statuses:
                patient.statuses[status] = True
        if self.medications_known:
            patient.medications = frozenset(self._meds.pop(pid, set()))
            patient.medication_last = {**self._med_last.pop(pid, {}), **dict.fromkeys(patient.medications, self.as_of)}
            patient.medication_records = self._med_records.pop(pid, {})
        if self.procedures_known:
            patient.procedures, patient.procedure_dates = self._procedures.pop(pid)
        died = parse_day(death)
        if death and died is None:
            patient.problems.append(f"death date {death!r} is not a date")
        elif died is not None and died <= self.as_of:
            patient.deceased = died
        self._durations(patient, conditions)
        self.stats.rows += 1
        return patient

    def leftover_patients(self) -> set[str]:
        """Patients with facts but never built (not in the demographics table)."""
        return (set(self._valid) | set(self._invalid) | set(self._conditions) | set(self._meds)
                | set(self._statuses) | set(self._problems) | self._procedures.patients())

    def _measurements(self, patient: Patient, valid: dict, invalid: dict) -> None:
        for concept in sorted(valid.keys() | invalid.keys()):
            good, bad = valid.get(concept), invalid.get(concept)
            in_window = good is not None and good[0] >= self.window_start
            bad_in_window = bad is not None and (bad[3] is None or bad[3] >= self.window_start)
            if in_window:
                patient.measurements[concept] = good[2]
                if good[3] is not None:
                    patient.uln[concept] = good[3]
                if bad_in_window and bad[0] > good[0]:
                    patient.problems.append(f"later value not used: {bad[2].reason}")
            elif bad_in_window:
                patient.measurements[concept] = bad[2]
            else:
                latest = good if good is not None and (bad is None or good[0] >= bad[0]) else None
                m = latest[2] if latest else None
                name = self.registry.concepts[concept].name
                if m is not None:
                    reason = (f"latest {name} {m.raw} on {m.when} ({m.code}) is older than the "
                              f"{self.lookback_days}-day lookback before {self.as_of}")
                    patient.measurements[concept] = Invalid(m.raw, reason)
                else:
                    reason = f"{bad[2].reason}; also older than the {self.lookback_days}-day lookback before {self.as_of}"
                    patient.measurements[concept] = Invalid(bad[2].raw, reason)

    def _derived(self, patient: Patient, birth: str | None) -> None:
        born = parse_day(birth)
        for concept in self.registry.concepts.values():
            if concept.derived_from != "birth_date":
                continue
            if born is None:
                if birth:
                    patient.measurements[concept.id] = Invalid(birth, f"birth date {birth!r} is not a date")
            elif born > self.as_of:
                patient.measurements[concept.id] = Invalid(birth, f"born {born}, after the as-of date {self.as_of}")
            else:
                years = completed_years(born, self.as_of)
                patient.measurements[concept.id] = Measurement(float(years), f"born {born}", "a", born, "birth date")
                if concept.id == "age":
                    record_birth_ages(patient, born, self.as_of)

    def _durations(self, patient: Patient, conditions: dict) -> None:
        for concept in self.registry.concepts.values():
            source = concept.derived_from or ""
            if not source.startswith("condition:"):
                continue
            onset, code = conditions.get(source.split(":", 1)[1], (None, None))
            if onset is not None:
                label = self.registry.categories[source.split(":", 1)[1]].name
                patient.measurements[concept.id] = Measurement(
                    years_between(onset, self.as_of), f"{label} since {onset}", "a", onset, code)
