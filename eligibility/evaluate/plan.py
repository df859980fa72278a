"""Three-valued evaluation of a compiled trial against patients (semantics: docs/patient-data.md §4–5).

A trial is compiled once into an evaluation plan: every IR node becomes a
closure over its canonical thresholds (no pint, no tree walk per patient).
Codes: F=0, T=1, U=2 (unknown: data missing or rejected), R=3 (a person must
review).  Kleene `and` is F if any child is F, else the largest code; `or` is
T if any child is T, else the largest code — so review outranks missing data.
Each node also has an explaining twin that returns its code and the texts of
the atoms that decided it; the fast closures and the twins share the atom
logic, and a test checks they agree.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from eligibility.evaluate import explain as words
from eligibility.evaluate.logic import eps, holds
from eligibility.core.ir import All, AnyOf, Compare, Criterion, Has, Manual, Not, Range, Trial
from eligibility.core.patient import Measurement, Patient
from eligibility.registry.concepts import Registry
from eligibility.evaluate.ages import age_in_months, by_months
from eligibility.evaluate.estimates import estimator
from eligibility.registry.units import ULN

F, T, U, R = 0, 1, 2, 3
NEG = (T, F, U, R)
OUTCOMES = {"inclusion": ("fail", "pass", "unknown", "review"), "exclusion": ("pass", "fail", "unknown", "review")}
_INF = float("inf")

Fn = Callable[[Patient], int]
Ex = Callable[[Patient, bool], tuple[int, list[str]]]


def _unique(texts) -> list[str]:
    return list(dict.fromkeys(texts))


def _short_texts(p: Patient, fns, exs, code: int) -> tuple[int, list[str]]:
    """Short explanation of a combination: only the deciding children are explained (the others are
    skipped, not formatted and thrown away: this is the per-patient hot path of `screen`)."""
    keep = {F: (F,), T: (T,)}.get(code, (U, R))
    texts: list[str] = []
    for f, e in zip(fns, exs):
        if f(p) in keep:
            texts.extend(e(p, False)[1])
    return code, _unique(texts)


def _deciding(code: int, results: list[tuple[int, list[str]]], detail: bool) -> list[str]:
    """Texts of the children that decided `code`; the full explanation adds the others after them."""
    keep = {F: (F,), T: (T,)}.get(code, (U, R))
    texts = [t for c, part in results if c in keep for t in part]
    if detail:
        texts += [t for c, part in results if c not in keep for t in part]
    return _unique(texts)


def _interval_code(m: Measurement, lo: float, lo_open: bool, hi: float, hi_open: bool) -> int:
    """A censored value (`<0.1`) against a region: T if all values it may be fall inside, F if none, else U."""
    v, c = m.value, m.comparator
    s_lo, s_lo_open, s_hi, s_hi_open = (-_INF, True, v, c == "<") if c in ("<", "<=") else (v, c == ">", _INF, True)
    inside = (s_lo > lo or (s_lo == lo and (s_lo_open or not lo_open))) and \
             (s_hi < hi or (s_hi == hi and (s_hi_open or not hi_open)))
    if inside:
        return T
    disjoint = s_hi < lo or (s_hi == lo and (s_hi_open or lo_open)) or hi < s_lo or (hi == s_lo and (hi_open or s_lo_open))
    return F if disjoint else U


def _region(op: str, b: float) -> tuple[float, bool, float, bool]:
    return {">=": (b, False, _INF, True), ">": (b, True, _INF, True), "<=": (-_INF, True, b, False),
            "<": (-_INF, True, b, True)}.get(op, (b, False, b, False))


class _Builder:
    """Turns IR nodes into (fast closure, explaining closure) pairs."""

    def __init__(self, registry: Registry, as_of: date) -> None:
        self.registry = registry
        self.as_of = as_of
        self.atc_names = {i.atc.upper(): i.name for i in registry.ingredients.values()}

    def name(self, concept_id: str) -> str:
        concept = self.registry.concepts.get(concept_id)
        return concept.name if concept else concept_id

    def build(self, node) -> tuple[Fn, Ex]:
        if isinstance(node, All):
            fn, ex = self._junction(node, F, T, "no restriction")
        elif isinstance(node, AnyOf):
            fn, ex = self._junction(node, T, F, "no alternative given")
        elif isinstance(node, Not):
            fn, ex = self._not(node)
        elif isinstance(node, (Compare, Range)):
            fn, ex = self._numeric(node)
        elif isinstance(node, Has):
            from eligibility.evaluate.has import build_has

            fn, ex = build_has(self, node)
        elif isinstance(node, Manual):
            text, label = node.text.strip(), words.manual_label(node.text)
            fn, ex = (lambda p: R), (lambda p, detail: (R, [text if detail else label]))
        else:
            raise TypeError(f"unknown IR node {type(node).__name__}")
        quals = {k: v for k, v in node.qualifiers.items() if not (isinstance(node, Has) and k == "duration_at_least")}
        return self._qualified(fn, ex, quals, isinstance(node, (All, AnyOf, Not))) if quals else (fn, ex)

    # -- logic ---------------------------------------------------------------
    def _junction(self, node: All | AnyOf, absorbing: int, start: int, empty: str) -> tuple[Fn, Ex]:
        """Kleene and (absorbing F, start T) / or (absorbing T, start F): otherwise the largest code wins."""
        pairs = [self.build(child) for child in node.children]
        fns, exs = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)

        def fn(p: Patient) -> int:
            best = start
            for f in fns:
                v = f(p)
                if v == absorbing:
                    return absorbing
                if v > best:
                    best = v
            return best

        def ex(p: Patient, detail: bool) -> tuple[int, list[str]]:
            if not exs:
                return start, [empty]
            if not detail:
                return _short_texts(p, fns, exs, fn(p))
            results = [e(p, detail) for e in exs]
            codes = [c for c, _ in results]
            code = absorbing if absorbing in codes else max(codes)
            return code, _deciding(code, results, detail)
        return fn, ex

    def _not(self, node: Not) -> tuple[Fn, Ex]:
        f, e = self.build(node.child)

        def ex(p: Patient, detail: bool) -> tuple[int, list[str]]:
            code, texts = e(p, detail)
            return NEG[code], texts
        return (lambda p: NEG[f(p)]), ex

    def _qualified(self, f: Fn, e: Ex, quals: dict, compound: bool) -> tuple[Fn, Ex]:
        """A condition on how long something held, which one current value cannot show: F stays F, else review."""
        notes = [words.qualifier_text(name, duration) for name, duration in quals.items()]

        def ex(p: Patient, detail: bool) -> tuple[int, list[str]]:
            if compound and not detail and f(p) == T:
                return R, ["computable parts pass", *notes]   # the short reason names only what is left to check
            code, texts = e(p, detail)
            if code == F:
                return F, texts
            return R, texts + notes
        return (lambda p: F if f(p) == F else R), ex

    # -- numeric atoms --------------------------------------------------------
    def _numeric(self, node: Compare | Range) -> tuple[Fn, Ex]:
        cid, name = node.concept, self.name(node.concept)
        concept = self.registry.concepts.get(cid)
        default_uln = concept.uln if concept else None
        value_unit = concept.canonical_unit if concept else ""
        is_uln = node.canonical_unit == ULN
        estimate = estimator(concept, self.registry)    # e.g. Cockcroft-Gault when no clearance is reported

        def value_of(p: Patient):
            m = p.measurements.get(cid)
            return estimate(p) if m is None and estimate is not None else m
        if isinstance(node, Compare):
            lo, lo_open, hi, hi_open = _region(node.op, node.canonical_value)
            negate = node.op == "!="
        else:
            lo = -_INF if node.canonical_low is None else node.canonical_low
            hi = _INF if node.canonical_high is None else node.canonical_high
            lo_open, hi_open, negate = not node.low_inclusive, not node.high_inclusive, False

        def scaled(p: Patient) -> tuple[float, float, float | None] | None:
            if not is_uln:
                return lo, hi, None
            uln = p.uln.get(cid, default_uln)
            return None if uln is None else (lo * uln, hi * uln, uln)

        def code_of(m: Measurement, low: float, high: float) -> int:
            if m.comparator is not None:
                code = _interval_code(m, low, lo_open, high, hi_open)
                return NEG[code] if negate else code
            x = m.value
            ok = (low == -_INF or holds(">" if lo_open else ">=", x, low)) and \
                 (high == _INF or holds("<" if hi_open else "<=", x, high))
            return (F if ok else T) if negate else (T if ok else F)

        if not is_uln:
            # the common case, kept tight: thresholds with the rounding allowance baked in
            lo_t = -_INF if lo == -_INF else (lo + eps(lo) if lo_open else lo - eps(lo))
            hi_t = _INF if hi == _INF else (hi - eps(hi) if hi_open else hi + eps(hi))

            def fn(p: Patient) -> int:
                m = p.measurements.get(cid) if estimate is None else value_of(p)
                if type(m) is not Measurement:
                    return U
                if m.comparator is None and not negate:
                    x = m.value
                    if (x > lo_t if lo_open else x >= lo_t) and (x < hi_t if hi_open else x <= hi_t):
                        return T
                    return F
                return code_of(m, lo, hi)
        else:
            def fn(p: Patient) -> int:
                m = value_of(p)
                if type(m) is not Measurement:
                    return U
                bounds = scaled(p)
                return U if bounds is None else code_of(m, bounds[0], bounds[1])

        def ex(p: Patient, detail: bool) -> tuple[int, list[str]]:
            m = value_of(p)
            if m is None and estimate is not None:
                return U, [f"{words.missing_text(name)} (not reported; the estimate needs {estimate.needs})"]
            if m is None:
                return U, [words.missing_text(name)]
            if type(m) is not Measurement:
                return U, [words.invalid_text(name, m.reason)]
            bounds = scaled(p)
            if bounds is None:
                return U, [words.no_uln_text(name, cid)]
            low, high, uln = bounds
            code = code_of(m, low, high)
            if isinstance(node, Compare):
                bound = low if low != -_INF else high
                if code == U:
                    return U, [f"{name} {words.observed(m, value_unit, bound)}"
                               f" cannot be compared with {words.SYMBOL[node.op]} {words.fmt_bound(bound, node.canonical_unit)}"]
                return code, [words.compare_text(name, node, m, bound, code == T, uln, detail, value_unit)]
            if code == T:
                side = "in"
            elif code == U:
                return U, [f"{name} {words.observed(m, value_unit)}: cannot tell whether it is within the range"]
            else:
                side = "low" if low != -_INF and not holds(">" if lo_open else ">=", m.value, low) else "high"
            return code, [words.range_text(name, node, m, None if low == -_INF else low,
                                           None if high == _INF else high, side, detail, uln, value_unit)]
        if age_in_months(node):
            return by_months(node, name, fn, ex, lambda m: code_of(m, lo, hi), (lo, lo_open, hi, hi_open, negate))
        return fn, ex


@dataclass(frozen=True)
class CriterionPlan:
    criterion: Criterion
    fn: Fn
    ex: Ex
    names: tuple[str, str, str, str]      # outcome per code for this section
    constant: bool                        # only manual parts: its explanation never changes

    @property
    def id(self) -> str:
        return self.criterion.id


@dataclass(slots=True)
class PatientResult:
    patient_id: str
    row: int
    verdict: str
    outcomes: list[str]
    reasons: list[str]
    notes: list[str] = field(default_factory=list)
    details: list[list[str]] | None = None     # per criterion, when asked for (jsonl, explain)
    reviewer: list[bool] | None = None         # per criterion: decided by a reviewer column


class Plan:
    """A trial compiled for evaluation: build once, then `evaluate` each patient."""

    def __init__(self, trial: Trial, registry: Registry, as_of: date) -> None:
        from eligibility.core.ir import walk

        self.trial, self.registry, self.as_of = trial, registry, as_of
        builder = _Builder(registry, as_of)
        self.criteria: list[CriterionPlan] = []
        for criterion in trial.criteria:
            fn, ex = builder.build(criterion.tree)
            constant = all(isinstance(n, (All, AnyOf, Not, Manual)) for n in walk(criterion.tree))
            self.criteria.append(CriterionPlan(criterion, fn, ex, OUTCOMES[criterion.section], constant))
        self.ids = [c.id for c in self.criteria]
        self._constant_short: dict[str, str] = {}

    def _short(self, plan: CriterionPlan, outcome: str, patient: Patient) -> str:
        if plan.constant:
            key = f"{plan.id}\0{outcome}"
            text = self._constant_short.get(key)
            if text is None:
                text = self._constant_short[key] = words.short(plan.id, outcome, plan.ex(patient, False)[1])
            return text
        return words.short(plan.id, outcome, plan.ex(patient, False)[1])

    def evaluate(self, patient: Patient, detail: bool = False, reasons_text: bool = True) -> PatientResult:
        """Outcomes and verdict; reasons_text=False leaves the non-pass criteria's reasons out (the API words them on demand)."""
        notes = [f"data: {problem}" for problem in patient.problems]
        reasons = list(notes)
        dead = patient.deceased is not None and patient.deceased <= self.as_of
        if dead:
            reasons.append("deceased" + ("" if patient.deceased == date.min else f" {patient.deceased.isoformat()}"))
        any_fail, all_pass = dead, True
        outcomes: list[str] = []
        decisions = patient.decisions
        details: list[list[str]] | None = [] if detail else None
        reviewer: list[bool] | None = [] if detail else None
        for plan in self.criteria:
            decided = decisions.get(plan.id) if decisions else None
            if decided is not None:
                outcome = decided
                if outcome != "pass":
                    reasons.append(f"{plan.id} {outcome}: reviewer decision (column {plan.id})")
            else:
                outcome = plan.names[plan.fn(patient)]
                if outcome != "pass" and reasons_text:
                    reasons.append(self._short(plan, outcome, patient))
            if details is not None:
                texts = plan.ex(patient, True)[1]
                details.append(([f"reviewer decision (column {plan.id}): {decided}"] if decided else []) + texts)
                reviewer.append(decided is not None)
            outcomes.append(outcome)
            if outcome == "fail":
                any_fail = True
            if outcome != "pass":
                all_pass = False
        verdict = "ineligible" if any_fail else "eligible" if all_pass else "needs_review"
        return PatientResult(patient.id, patient.row, verdict, outcomes, reasons, notes, details, reviewer)

    def codes(self, patient: Patient) -> list[int]:
        """Raw codes per criterion (no reviewer decisions), for tests and the differential check."""
        return [plan.fn(patient) for plan in self.criteria]


def compile_plan(trial: Trial, registry: Registry, as_of: date) -> Plan:
    return Plan(trial, registry, as_of)
