"""`has` atoms: conditions, statuses, drug classes and sex (docs/patient-data.md §4).

An explicit yes/no column for the item (Patient.statuses) decides first; then
the patient's lists, where None means unknown and a set lists everything known.
"""
from __future__ import annotations

from eligibility.evaluate import explain as words
from eligibility.evaluate.category_rules import broader_codes, drug_rule, other_sexes
from eligibility.core.ir import Has
from eligibility.core.patient import Patient
from eligibility.registry.codes import node_keys
from eligibility.registry import races

F, T, U, R = 0, 1, 2, 3
_DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0, "h": 1 / 24}
_SEX = {"sex_female": "female", "sex_male": "male", "female": "female", "male": "male"}


def build_has(builder, node: Has):
    registry = builder.registry
    code = node.code
    cat = registry.categories.get(code)
    label = cat.name if cat else (node.label or code)
    # a registry entry is matched by its id: the readers map each record to the ids it means (by
    # code, code prefix or display name), as the SQL does; a code-book entry (icd10cm:...) by its
    # codes, which the records carry with their ancestors
    keys = frozenset({code}) if cat is not None else node_keys(code, node.codes)
    if code in _SEX:
        fn, ex = _sex(_SEX[code])
    elif code.startswith(races.PREFIXES):
        fn, ex = _origin(code)
    elif node.category == "medication":
        fn, ex = _medication(builder, code, label)
    elif node.category == "status":
        # a status is current: only its own id (an open episode, a list naming it) says yes, never
        # the code keys of past records (an old pregnancy's O-codes)
        fn, ex = _status(code, frozenset({code}), label, other_sexes(cat))
    elif node.category == "procedure":
        fn, ex = _listed(code, keys, label, _PROCEDURES)
    else:
        fn, ex = _listed(code, keys, label, _CONDITIONS, other_sexes(cat))
    duration = node.qualifiers.get("duration_at_least")
    if node.within is None and duration is None:
        return fn, ex
    if node.category in ("condition", "procedure") and code not in _SEX:
        return _timed(builder, keys, label, node, fn, ex)
    if node.category == "medication" and duration is None:
        # a drug history answers a window; a current list alone answers it for the current drugs
        return _medication_window(builder, code, label, node, fn, ex)
    note = words.qualifier_text("duration_at_least", duration) if duration else \
        f"within {words.duration_text(node.within)}: cannot be checked from the data"

    def ex_review(p: Patient, detail: bool):
        c, texts = ex(p, detail)
        return (F, texts) if c == F else (R, texts + [note])
    return (lambda p: F if fn(p) == F else R), ex_review


def _column(value, label: str) -> tuple[int, list[str]]:
    if value.__class__ is bool:
        return (T if value else F), [f"{label}: {'yes' if value else 'no'}"]
    return U, [words.invalid_text(label, value.reason)]


def _sex(want: str):
    def fn(p: Patient) -> int:
        s = p.sex
        return U if s is None else (T if s == want else F)

    def ex(p: Patient, detail: bool):
        if p.sex is None:
            return U, ["sex missing"]
        return (T if p.sex == want else F), [f"sex {p.sex}"]
    return fn, ex


def _origin(code: str):
    # race_<id> / ethnicity_<id>: the patient's own field, like sex; several races are each held
    field, want = code.split("_", 1)

    def fn(p: Patient) -> int:
        v = getattr(p, field)
        return U if v is None else (T if want in v.split(",") else F)

    def ex(p: Patient, detail: bool):
        v = getattr(p, field)
        return (U, [f"{field} missing"]) if v is None else (fn(p), [f"{field} {races.describe(field, v)}"])
    return fn, ex


def _not_applicable(label: str, sex: str) -> tuple[int, list[str]]:
    return F, [f"{label}: not applicable ({sex})"]


class _Records:
    """Where a kind of record lives on the Patient, and how explanations name its list."""

    def __init__(self, items: str, first: str, latest: str, noun: str) -> None:
        self.items, self.first, self.latest, self.noun = items, first, latest, noun


_CONDITIONS = _Records("conditions", "condition_onset", "condition_latest", "conditions")
_PROCEDURES = _Records("procedures", "procedure_dates", "procedure_dates", "procedures")


def _listed(code: str, keys: frozenset[str], label: str, kind: _Records, excluded: tuple[str, ...] = ()):
    # order: the item's own yes/no column, a list naming it, a sex it cannot apply to, the rest of the list
    items = kind.items

    def fn(p: Patient) -> int:
        s = p.statuses.get(code)
        if s is not None:
            return (T if s else F) if s.__class__ is bool else U
        c = getattr(p, items)
        if c is None:
            return F if p.sex in excluded else U
        return F if keys.isdisjoint(c) else T

    def ex(p: Patient, detail: bool):
        s = p.statuses.get(code)
        if s is not None:
            return _column(s, label)
        c = getattr(p, items)
        if c is None:
            if p.sex in excluded:
                return _not_applicable(label, p.sex)
            return U, [f"{label}: {kind.noun} not recorded"]
        if not keys.isdisjoint(c):
            return T, [f"{label} on the {kind.noun} list"]
        return F, [f"no {label} on the {kind.noun} list"]
    return fn, ex


def _status(code: str, keys: frozenset[str], label: str, excluded: tuple[str, ...] = ()):
    # a diagnosis list never says "not pregnant"; a known sex the status cannot apply to does
    def fn(p: Patient) -> int:
        s = p.statuses.get(code)
        if s is not None:
            return (T if s else F) if s.__class__ is bool else U
        c = p.conditions
        if c is not None and not keys.isdisjoint(c):
            return T
        return F if p.sex in excluded else U

    def ex(p: Patient, detail: bool):
        s = p.statuses.get(code)
        if s is not None:
            return _column(s, label)
        if p.conditions is not None and not keys.isdisjoint(p.conditions):
            return T, [f"{label} on the conditions list"]
        if p.sex in excluded:
            return _not_applicable(label, p.sex)
        return U, [f"{label} not recorded"]
    return fn, ex


def _member_test(prefixes: tuple[str, ...], members: frozenset[str]):
    """Is a medication token (ATC code or ingredient name) one of the drug class or drug asked for?"""
    return lambda token: token in members or token.startswith(prefixes)


def _medication(builder, code: str, label: str):
    registry = builder.registry
    prefixes, members = drug_rule(registry, code)
    atc_names = builder.atc_names
    # a listed group containing the asked class (A10B for DPP-4 inhibitors) may hide a member
    broader = broader_codes(prefixes)
    group_names = {p.upper(): c.name for c in registry.categories_of("medication") for p in c.atc}

    member = _member_test(prefixes, members)
    seen: dict[frozenset, int] = {}    # patients share medication lists: answer each list once

    def fn(p: Patient) -> int:
        s = p.statuses.get(code)
        if s is not None:
            return (T if s else F) if s.__class__ is bool else U
        meds = p.medications
        if meds is None:
            return U
        answer = seen.get(meds)
        if answer is None:
            answer = T if any(t in members or t.startswith(prefixes) for t in meds) else \
                U if not broader.isdisjoint(meds) else F
            if len(seen) >= 65536:
                seen.clear()
            seen[meds] = answer
        return answer

    def names(tokens) -> list[str]:
        shown = {atc_names.get(t, t) for t in tokens}
        # an ATC code whose ingredient name is also listed adds nothing
        return sorted(shown)

    def ex(p: Patient, detail: bool):
        s = p.statuses.get(code)
        if s is not None:
            return _column(s, label)
        meds = p.medications
        if meds is None:
            return U, ["medications not recorded"]
        hits = [t for t in meds if member(t)]
        if hits:
            records = sorted({p.medication_records[t] for t in hits if t in p.medication_records})
            if records:      # the deciding records, as the export wrote them, with their start dates
                return T, [f"{text}, since {start.isoformat()}, is {words.article(label)} {label}"
                           for text, start in records]
            return T, [f"takes {', '.join(names(hits))} ({label})"]
        if not meds:
            return F, [f"no {label}: no medications"]
        if wide := sorted(broader.intersection(meds)):
            shown = [group_names.get(t, t) for t in wide]
            return U, [f"listed {', '.join(repr(s) for s in shown)} may include {label}"]
        return F, [f"no {label} among medications ({words.listed(names(meds))})"]
    return fn, ex


def _medication_window(builder, code: str, label: str, node: Has, fn, ex):
    """`Use of opioids within the past 6 months`: a drug taken on any day of the window counts."""
    start = builder.as_of.toordinal() - node.within.value * _DAYS[node.within.unit]
    member = _member_test(*drug_rule(builder.registry, code))

    def recent(p: Patient) -> list[str]:
        return sorted(t for t, last in p.medication_last.items() if last.toordinal() >= start - 1e-9 and member(t))

    def window_fn(p: Patient) -> int:
        c = fn(p)
        return T if c != T and p.statuses.get(code) is None and recent(p) else c

    def window_ex(p: Patient, detail: bool):
        c, texts = ex(p, detail)
        if c == T or p.statuses.get(code) is not None or not (hits := recent(p)):
            return c, texts
        names = ", ".join(builder.atc_names.get(t, t) for t in hits)
        last = max(p.medication_last[t] for t in hits)
        return T, [f"took {names} ({label}) until {last.isoformat()}, within {words.duration_text(node.within)}"]
    return window_fn, window_ex


def _timed(builder, keys: frozenset[str], label: str, node: Has, fn, ex):
    """A condition or procedure with a time window or a minimum duration, checked against its dates.

    A window ("within the past 6 months") asks whether the latest record falls in it; a minimum
    duration ("for at least 3 years") asks how long ago the first one was.
    """
    as_of = builder.as_of
    kind = _PROCEDURES if node.category == "procedure" else _CONDITIONS
    within = node.within.value * _DAYS[node.within.unit] if node.within else None
    duration = node.qualifiers.get("duration_at_least")
    at_least = duration.value * _DAYS[duration.unit] if duration else None
    need = (f"within {words.duration_text(node.within)}" if node.within else "") + \
           (" and " if node.within and duration else "") + \
           (f"for at least {words.duration_text(duration)}" if duration else "")

    def dates(p: Patient):
        first = [d for k, d in getattr(p, kind.first).items() if k in keys]
        latest = [d for k, d in getattr(p, kind.latest).items() if k in keys] or first
        return (min(first) if first else None), (max(latest) if latest else None)

    def timing(p: Patient) -> int:
        if p.statuses.get(node.code) is not None:
            return R
        first, last = dates(p)
        if (within is not None and last is None) or (at_least is not None and first is None):
            return R
        ok = (within is None or (as_of - last).days <= within + 1e-9) and \
             (at_least is None or (as_of - first).days >= at_least - 1e-9)
        return T if ok else F

    def timed_fn(p: Patient) -> int:
        c = fn(p)
        return timing(p) if c == T else c

    def timed_ex(p: Patient, detail: bool):
        c, texts = ex(p, detail)
        if c != T:
            return c, texts
        t = timing(p)
        first, last = dates(p)
        if t == R:
            what = "onset date" if kind is _CONDITIONS else "date"
            return R, texts + [f"{label}: {what} not recorded (needed: {need})"]
        shown = last if within is not None else first
        word = "last recorded" if within is not None else "since"
        return t, texts + [f"{label} {word} {shown.isoformat()} ({(as_of - shown).days} days; needed: {need})"]
    return timed_fn, timed_ex
