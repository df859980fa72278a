"""FHIR R4 JSON: Bundles (one per file), single resources, or NDJSON bulk exports.

Resources used: Patient (birthDate, gender, deceasedDateTime), Observation
(LOINC code, valueQuantity with UCUM code and comparator, valueString such as
"<0.1", components such as the blood-pressure panel 85354-9 with 8480-6 /
8462-4, referenceRange high as the patient's ULN), Condition (SNOMED /
ICD-10 code, onset, abatement), MedicationRequest (status, authoredOn,
medicationCodeableConcept or a referenced Medication: RxNorm code and text),
Procedure (SNOMED CT / ICD-10-PCS coding, display or code.text; performedDateTime
or performedPeriod.start; entered-in-error, not-done and preparation skipped).
Bundles hold everything about their patient, so a patient without Procedure
resources had none; an NDJSON export without any Procedure leaves procedures unknown.

Dates are the calendar dates written in the resource (local time when the
timestamp has an offset); Synthea's CSV export writes observation times in
UTC, so the same observation can carry the next day's date there.
A MedicationRequest counts as current on the as-of date when it is active or
on-hold and authored on or before it (or, with a validity / bounds period,
when that period covers the date); stopped and completed requests without an
end date are not current.  A condition resolved without an abatement date is
treated as ended at its onset (it does not make a status such as pregnancy
current).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Patient
from eligibility.registry.concepts import Registry
from eligibility.readers.observations import LongAssembler, parse_day
from eligibility.registry.races import set_origin

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_CONDITION_SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10",
}
_SKIP_STATUS = {"entered-in-error", "cancelled"}
_PROCEDURE_SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://www.cms.gov/Medicare/Coding/ICD10": "ICD10PCS",     # the URI FHIR R4 names for ICD-10-PCS
    "http://hl7.org/fhir/sid/icd-10-pcs": "ICD10PCS",
}
# not done (yet): a procedure in these states says nothing about the patient's history
_PROCEDURE_SKIP = {"entered-in-error", "not-done", "preparation"}


def read_fhir(paths: Sequence[Path], *, as_of: date, lookback_days: int, registry: Registry, stats
              ) -> Iterator[Patient]:
    asm = LongAssembler(as_of=as_of, lookback_days=lookback_days, registry=registry, stats=stats)
    asm.conditions_known = asm.medications_known = True
    reader = _Reader(asm)
    files = list(_files(paths))
    for path in files:
        for resource in _resources(path):
            reader.add(resource, path)
    reader.flush_unknown()
    asm.procedures_known = reader.saw_procedure or any(p.suffix.lower() != ".ndjson" for p in files)
    if not asm.procedures_known:
        stats.notes.append("no FHIR Procedure resources in the NDJSON export; procedures are unknown")
    orphans = asm.leftover_patients() - set(reader.people)
    if orphans:
        stats.notes.append(f"{len(orphans)} FHIR subject(s) have resources but no Patient resource "
                           f"(not screened), e.g. {sorted(orphans)[0]}")
    for n, (pid, (birth, sex, death)) in enumerate(reader.people.items(), start=1):
        patient = asm.build(pid, n, birth=birth, sex=sex, death=death)
        patient.problems.extend(reader.problems.get(pid, ()))
        set_origin(patient, *reader.origins.get(pid, ()))
        yield patient


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix.lower() in (".json", ".ndjson"))
        else:
            yield path


def _resources(path: Path) -> Iterator[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataInputError(f"{path}: cannot read ({exc})", code="E-DATA-READ", file=str(path)) from None
    if path.suffix.lower() == ".ndjson":
        for line_no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield _load(line, path, line_no)
        return
    doc = _load(text, path, None)
    if doc.get("resourceType") == "Bundle":
        for entry in doc.get("entry") or ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                yield resource
    elif "resourceType" in doc:
        yield doc
    else:
        raise DataInputError(f"{path}: not a FHIR resource or Bundle (no resourceType)", code="E-DATA-FHIR",
                             file=str(path))


def _load(text: str, path: Path, line: int | None) -> dict:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataInputError(f"invalid JSON: {exc.msg}", code="E-DATA-JSON", file=str(path),
                             line=line or exc.lineno, column=exc.colno) from None
    if not isinstance(doc, dict):
        raise DataInputError("expected a JSON object (a FHIR resource)", code="E-DATA-FHIR", file=str(path), line=line)
    return doc


def _ref_id(reference) -> str:
    text = reference.get("reference") if isinstance(reference, dict) else None
    return text.rsplit("/", 1)[-1].rsplit(":", 1)[-1] if isinstance(text, str) else ""


def _codings(concept) -> list[dict]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _status(concept) -> str:
    return next((_text(c.get("code")) for c in _codings(concept)), "")


def _when(resource: dict, *names: str) -> str | None:
    for name in names:
        value = resource.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("start"), str):
            return value["start"]
    return None


def _us_core(patient: dict, kind: str) -> str | None:
    """The US Core race / ethnicity extension's ombCategory codes (`2028-9;2106-3`), else its text."""
    for ext in _list(patient.get("extension")):
        if isinstance(ext, dict) and ext.get("url") == f"http://hl7.org/fhir/us/core/StructureDefinition/us-core-{kind}":
            parts = [p for p in _list(ext.get("extension")) if isinstance(p, dict)]
            codes = [_text(_dict(p.get("valueCoding")).get("code")) for p in parts if p.get("url") == "ombCategory"]
            text = [_text(p.get("valueString")) for p in parts if p.get("url") == "text"]
            return ";".join(c for c in codes if c) or ";".join(text) or None
    return None


class _Reader:
    def __init__(self, asm: LongAssembler) -> None:
        self.asm = asm
        self.people: dict[str, tuple[str, str, str]] = {}
        self.origins: dict[str, tuple[str | None, str | None]] = {}     # US Core race, ethnicity
        self.problems: dict[str, list[str]] = {}
        self.medications: dict[str, dict] = {}
        self.unknown: Counter = Counter()
        self.unknown_drugs: Counter = Counter()
        self.saw_procedure = False

    def add(self, resource: dict, path: Path) -> None:
        kind = resource.get("resourceType")
        if kind == "Patient":
            self._patient(resource)
        elif kind == "Observation":
            self._observation(resource)
        elif kind == "Condition":
            self._condition(resource)
        elif kind == "MedicationRequest":
            self._medication(resource)
        elif kind == "Procedure":
            self._procedure(resource)
        elif kind == "Medication" and _text(resource.get("id")):
            self.medications[resource["id"]] = resource

    def flush_unknown(self) -> None:
        for key, n in self.unknown.items():
            self.asm.stats.unknown_codes[key] += n
        self.asm.unknown(self.unknown_drugs, "RxNorm")

    def _patient(self, r: dict) -> None:
        pid = str(r.get("id") or "")
        if not pid:
            raise DataInputError("Patient resource without an id", code="E-DATA-ID")
        if r.get("deceasedBoolean") is True:
            self.problems.setdefault(pid, []).append("recorded as deceased without a date of death")
        self.people[pid] = (_text(r.get("birthDate")), _text(r.get("gender")), _text(r.get("deceasedDateTime")))
        self.origins[pid] = (_us_core(r, "race"), _us_core(r, "ethnicity"))

    def _observation(self, r: dict) -> None:
        if r.get("status") in _SKIP_STATUS:
            return
        pid = _ref_id(r.get("subject"))
        when = _when(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant")
        parts = [(r.get("code"), r)] + [(c.get("code"), c) for c in _list(r.get("component")) if isinstance(c, dict)]
        for code, holder in parts:
            if holder is r and r.get("component") and not any(k.startswith("value") for k in r):
                continue                     # a panel: its components carry the values
            loinc = next((_text(c.get("code")) for c in _codings(code) if c.get("system") == LOINC and _text(c.get("code"))), None)
            concept = self.asm.codes.loinc.get(loinc or "")
            if concept is None:
                self.unknown[f"LOINC {loinc}" if loinc else "FHIR Observation without a LOINC code"] += 1
                continue
            self._value(pid, concept, f"LOINC {loinc}", when, holder)

    def _value(self, pid: str, concept: str, label: str, when: str | None, holder: dict) -> None:
        quantity = holder.get("valueQuantity")
        uln = None
        for ref in _list(holder.get("referenceRange")):
            high = _dict(_dict(ref).get("high"))
            if isinstance(high.get("value"), (int, float)) and not isinstance(high.get("value"), bool):
                uln = float(high["value"])
                break
        if isinstance(quantity, dict):
            unit = _text(quantity.get("code")) if quantity.get("system") == UCUM else ""
            unit = unit or _text(quantity.get("unit"))
            number = quantity.get("value")
            value = float(number) if isinstance(number, (int, float)) and not isinstance(number, bool) else (
                str(number) if number is not None else "")
            comparator = quantity.get("comparator")
            self.asm.observation(pid, concept, label, when, value, unit,
                                 comparator if comparator in ("<", "<=", ">", ">=") else None, uln)
        elif isinstance(holder.get("valueString"), str):
            self.asm.observation(pid, concept, label, when, holder["valueString"], None, None, uln)
        elif isinstance(holder.get("valueCodeableConcept"), dict):
            text = _text(holder["valueCodeableConcept"].get("text")) or next(
                (c.get("display") or c.get("code") for c in _codings(holder["valueCodeableConcept"])), "coded value")
            self.asm.observation(pid, concept, label, when, f"{text}", None)
        else:
            absent = _status(holder.get("dataAbsentReason")) if holder.get("dataAbsentReason") else ""
            self.asm.observation(pid, concept, label, when, "", None)
            if absent:
                self.problems.setdefault(pid, []).append(f"{label}: value absent ({absent})")

    def _condition(self, r: dict) -> None:
        if _status(r.get("verificationStatus")) in ("entered-in-error", "refuted"):
            return
        pid = _ref_id(r.get("subject"))
        ids: list[str] = []
        label = ""
        for coding in _codings(r.get("code")):
            system = _CONDITION_SYSTEMS.get(_text(coding.get("system")))
            if system and _text(coding.get("code")):
                found = self.asm.codes.conditions(system, coding["code"],
                                                  _text(coding.get("display")) or _text(_dict(r.get("code")).get("text")))
                label = label or f"{system} {coding['code']}"
                if found and not ids:
                    label = f"{system} {coding['code']}"
                ids += found
        if not ids:
            self.unknown[label or "FHIR Condition without a SNOMED/ICD-10 code"] += 1
            return
        onset = _when(r, "onsetDateTime", "onsetPeriod")
        end = _text(r.get("abatementDateTime")) or _text(_dict(r.get("abatementPeriod")).get("end"))
        if not end and _status(r.get("clinicalStatus")) in ("resolved", "inactive", "remission"):
            end = onset
        self.asm.condition(pid, tuple(dict.fromkeys(ids)), label, onset, end)

    def _medication(self, r: dict) -> None:
        status = _text(r.get("status"))
        pid = _ref_id(r.get("subject"))
        concept = r.get("medicationCodeableConcept")
        if concept is None and isinstance(r.get("medicationReference"), dict):
            concept = (self.medications.get(_ref_id(r["medicationReference"])) or {}).get("code")
        codings = _codings(concept)
        rxnorm = next((_text(c.get("code")) for c in codings if c.get("system") == RXNORM), None)
        text = _text(_dict(concept).get("text")) or " ".join(_text(c.get("display")) for c in codings).strip() or None
        start = _text(r.get("authoredOn"))
        end = _text(_dict(_dict(r.get("dispenseRequest")).get("validityPeriod")).get("end"))
        for dosage in _list(r.get("dosageInstruction")):
            bounds = _dict(_dict(_dict(_dict(dosage).get("timing")).get("repeat")).get("boundsPeriod"))
            end = end or _text(bounds.get("end"))
            start = start or _text(bounds.get("start"))
        if status in ("active", "on-hold") or (status in ("completed", "stopped") and end):
            self.asm.medication(pid, rxnorm, text, start, end, self.unknown_drugs)
        elif status in ("completed", "stopped") and parse_day(start) is None:
            self.problems.setdefault(pid, []).append(f"medication {text!r}: no authoredOn date")

    def _procedure(self, r: dict) -> None:
        self.saw_procedure = True
        if _text(r.get("status")) in _PROCEDURE_SKIP:
            return
        pid = _ref_id(r.get("subject"))
        concept = _dict(r.get("code"))
        text = _text(concept.get("text"))
        keys: list[str] = []
        label = coded = ""
        for coding in _codings(concept):
            system = _PROCEDURE_SYSTEMS.get(_text(coding.get("system")), "")
            code, display = _text(coding.get("code")), _text(coding.get("display"))
            keys += self.asm.codes.procedures(system, code, display or text or None)
            label = label or display
            coded = coded or f"{system or _text(coding.get('system')) or '(no system)'} {code}"
        if not keys and text:
            keys += self.asm.codes.procedures("", "", text)
        if not keys:
            self.unknown[f"procedure {coded or repr(text)}" if coded or text
                         else "FHIR Procedure without a code or text"] += 1
            return
        label = label or text or coded
        when = _when(r, "performedDateTime", "performedPeriod")
        self.asm.procedure(pid, tuple(dict.fromkeys(keys)), label, when)
