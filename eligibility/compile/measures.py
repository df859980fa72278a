"""Measurement phrases (eligibility.compile.transform) -> IR nodes: concept choice by unit, conversions, spans.

The registry decides which concept a phrase names (a synonym shared by two
concepts is settled by the unit: `insulin dose ≤ 1.0 IU/kg` is per kg); each
threshold is converted once into the concept's canonical unit; a unit that
does not fit a concept named in a clear measurement is a CriterionProblem
`E-UNIT` pointing at the unit.
"""
from __future__ import annotations

import re

from lark import Token

from eligibility.compile.transform import Bound, ConceptRef, Double, Measure, PairBound, Rng, Span, Val, squash

_DURATION_UNITS = {"year": "a", "month": "mo", "week": "wk", "day": "d", "hour": "h"}


class Builder:
    """Builds IR nodes from measure phrases for one criterion (registry, section, offset map)."""

    def __init__(self, registry, section: str, norm, source: str, lexer) -> None:
        self.registry, self.section, self.norm, self.source, self.lexer = registry, section, norm, source, lexer
        self.problems: list = []

    def src(self, span: Span) -> Span:
        return self.norm.span(*span)

    # -- concept choice ---------------------------------------------------------
    def _ids(self, ref: ConceptRef) -> tuple[str, ...]:
        phrase = self.lexer.phrase(ref.token)
        return phrase.ids if phrase is not None and phrase.kind == "CONCEPT" else ()

    def _dose_ids(self, written: str, vals: list[Val]) -> tuple[str, ...]:
        """Concepts measuring a dose of the drug written (a synonym "<drug> dose"), when every value
        carries a unit that fits one of them: "insulin 0.3-1.0 IU/kg/day"; "metformin ≥ 1500 mg" or
        "insulin treatment ≥ 3 months" is not such a measurement."""
        from eligibility.registry.concepts import normalize_phrase
        phrase = self.lexer.phrase(Token("CATEGORY", written))
        units = [v.unit for v in vals if v.unit is not None]     # "0.3-1.0 IU/kg": one unit for both
        if phrase is None or phrase.kind != "CATEGORY" or not units or any(v.bad_unit for v in vals):
            return ()
        category = self.lexer.vocabulary.category(phrase.ids[0])
        if category is None:
            return ()
        synonyms = self.registry.concept_synonyms
        ids = tuple(dict.fromkeys(i for name in (category.name, *category.synonyms)
                                  for i in synonyms.get(normalize_phrase(f"{name} dose"), ())))
        return tuple(i for i in ids if all(self._fits(i, unit) for unit in units))

    def _derived(self, origin: str) -> tuple[str, ...]:
        return tuple(c.id for c in self.registry.concepts.values() if c.derived_from == origin)

    def duration(self, val: Val):
        from eligibility.core.ir import Duration
        from eligibility.registry.units import pint_expression
        expr = pint_expression(self.unit_key(val.unit), self.registry) if val.unit else None
        code = _DURATION_UNITS.get(expr or "")
        return Duration(value=val.number, unit=code) if code else None

    def measure(self, m: Measure, inherit: str | None = None):
        """-> (node | None, unparsed span | None, manual reason | None); `inherit`: unit of the phrase before."""
        from eligibility.core.ir import AnyOf, All, CriterionProblem
        subject, expr = m.subject, m.expr
        if subject.kind in ("age", "person"):
            items = [(self._derived("birth_date"), None)]
        elif subject.kind == "condition":
            phrase = self.lexer.phrase(Token("CATEGORY", subject.category))
            items = [(self._derived(f"condition:{phrase.ids[0]}") if phrase else (), None)]
        elif subject.kind == "drug":
            items = [(self._dose_ids(subject.category, values_of(expr)), None)]
        else:
            items = [(self._ids(ref), ref) for ref in subject.concepts]
        if not items or any(not ids for ids, _ in items):
            return None, None, None
        if isinstance(expr, Rng) and expr.listed and not all(self._scored(i) for ids, _ in items for i in ids):
            return None, None, None     # "7 or 8": only a score's grades listed one by one make a range
        vals = values_of(expr)
        if any(v.bare_limit and not self._limit(v.unit) for v in vals):
            return None, None, None     # a unit alone is a value only as a limit: "≤ ULN"
        default = next((ref.default_unit.value for _, ref in items if ref is not None and ref.default_unit is not None), None)
        shared = next((v.unit for v in reversed(vals) if v.unit is not None and not v.bad_unit), default or inherit)
        for v in vals:
            if v.unit is None and shared is not None:
                v.unit = shared
        if subject.kind == "person" and any(self.duration(v) is None for v in vals):
            return None, None, None     # "patients > 18": not evidently an age
        if isinstance(expr, PairBound):
            if len(items) == 1 and len(items[0][0]) >= 2:
                ids = items[0][0]
                items = [((ids[0],), items[0][1]), ((ids[1],), items[0][1])]
            if len(items) != 2:
                return None, None, None
            nodes = [self._node(items[0][0], expr.op, [expr.first], Bound(expr.op, expr.first, expr.first.span)),
                     self._node(items[1][0], expr.op, [expr.second], Bound(expr.op, expr.second, expr.second.span))]
            if any(isinstance(n, str) for n in nodes):
                return None, self.src(m.span), next(n for n in nodes if isinstance(n, str))
            first = nodes[0].model_copy(update={"span": self.src((m.span[0], expr.first.span[1]))})
            second = nodes[1].model_copy(update={"span": self.src((expr.second.span[0], m.span[1]))})
            cls = AnyOf if expr.op in (">", ">=") else All
            return cls(children=(first, second), span=self.src(m.span)), None, None
        nodes = []
        for n, (ids, ref) in enumerate(items):
            node = self._node(ids, None, vals, expr)
            if isinstance(node, str):
                return None, self.src(m.span), node
            if len(items) > 1:
                start = ref.span[0] if ref is not None else m.span[0]
                end = items[n + 1][1].span[0] if n + 1 < len(items) else m.span[1]
                node = node.model_copy(update={"span": self.src((start, end))})
            else:
                node = node.model_copy(update={"span": self.src(m.span)})
            nodes.append(node)
        if len(nodes) == 1:
            return nodes[0], None, None
        joiner = subject.joiner
        any_of = joiner == "or" or (joiner in ("comma", "slash") and self.section == "exclusion")
        cls = AnyOf if any_of else All
        return cls(children=tuple(nodes), span=self.src(m.span)), None, None

    def _node(self, ids, _op, vals, expr):
        """One concept's node, or a string (why not) after recording an E-UNIT problem."""
        from eligibility.core.ir import CriterionProblem
        from eligibility.registry.units import conversion, display_unit
        concept_id = None
        for candidate in ids:
            if all(v.unit is None or (not v.bad_unit and self._fits(candidate, v.unit)) for v in vals):
                concept_id = candidate
                break
        if concept_id is None:
            concept = self.registry.concept(ids[0])
            bad = next((v for v in vals if v.unit is not None and (v.bad_unit or not self._fits(ids[0], v.unit))), vals[0])
            expected = display_unit(concept.canonical_unit)
            message = f"unit {bad.unit!r} is not a unit of {concept.name} (expected {expected})"
            if bad.bad_unit:
                message = f"unknown unit {bad.unit!r} for {concept.name} (expected {expected})"
            span = bad.unit_span or bad.span
            self.problems.append(CriterionProblem(code="E-UNIT", message=message, span=self.src(span)))
            return message
        concept = self.registry.concept(concept_id)
        convs = {}
        for v in vals:
            convs[id(v)] = conversion(concept_id, self.unit_key(v.unit), self.registry)
        canonical_unit = next(iter(convs.values())).canonical_unit

        def canon(v):
            return _tidy(convs[id(v)].apply(v.number))

        def plausible(v):
            if concept.plausible is None or convs[id(v)].canonical_unit != concept.canonical_unit:
                return True
            low, high = concept.plausible
            return low <= canon(v) <= high

        for v in vals:
            # `50.000 /mmc`: a dot grouping thousands (European style), when the decimal reading is implausible
            if not plausible(v) and re.fullmatch(r"\d{1,3}(\.\d{3})+", v.raw):
                decimal = v.number
                v.number = float(v.raw.replace(".", ""))
                if not plausible(v):
                    v.number = decimal
        for v in vals:
            if v.unit is None and not plausible(v):
                self._bare_unit(concept, v, convs, plausible)
        bad = next((v for v in vals if not plausible(v)), None)
        if bad is not None:
            return (f"{_fmt(bad.number)} {bad.unit or concept.canonical_unit} is outside the plausible range "
                    f"of {concept.name}")
        return self._shape(concept_id, expr, canon, canonical_unit)

    def _bare_unit(self, concept, v: Val, convs: dict, plausible) -> None:
        """A number written without a unit, implausible in the canonical unit: the magnitude says
        which conventional unit it is in (registry `bare_units`), when exactly one fits."""
        from eligibility.registry.units import conversion
        canonical = convs[id(v)]
        fits = []
        for unit in concept.bare_units:
            convs[id(v)] = conversion(concept.id, self.unit_key(unit), self.registry)
            if plausible(v):
                fits.append((unit, convs[id(v)]))
        if len(fits) == 1:
            v.unit, convs[id(v)] = fits[0]
        else:
            convs[id(v)] = canonical

    def unit_key(self, unit: str | None) -> str | None:
        """The registry's spelling of a unit as written (`ml/min/1,73 m²` -> `ml/min/1.73 m²`)."""
        if unit is None:
            return None
        if unit.startswith("G/"):
            # SI prefix giga, as in `platelets < 50 G/L`; units are matched case-blind, and g/L is grams
            unit = "giga/" + unit[2:]
        phrase = self.lexer.phrase(Token("UNIT", unit))
        return phrase.ids[0] if phrase is not None and phrase.kind == "UNIT" else unit

    def _limit(self, unit: str) -> bool:
        from eligibility.registry.units import pint_expression
        return pint_expression(self.unit_key(unit), self.registry) == "uln"

    def _scored(self, concept_id: str) -> bool:
        """Is the concept a score (canonical unit {score}, or read from one: Karnofsky's 0-100)?"""
        concept = self.registry.concept(concept_id)
        return concept.canonical_unit == "{score}" or any(a.unit == "{score}" for a in concept.affine)

    def _fits(self, concept_id: str, unit: str) -> bool:
        from eligibility.registry.units import unit_fits
        return unit_fits(concept_id, self.unit_key(unit), self.registry)

    def _shape(self, concept_id, expr, canon, canonical_unit):
        from eligibility.core.ir import All, AnyOf, Compare, Range
        span = (0, 0)
        if isinstance(expr, Bound):
            return Compare(concept=concept_id, op=expr.op, value=expr.val.number, unit=_unit(expr.val),
                           canonical_value=canon(expr.val), canonical_unit=canonical_unit, span=span)
        if isinstance(expr, Rng):
            low, high = expr.low, expr.high
            if canon(low) > canon(high):
                low, high = high, low
            return self._range(concept_id, low, high, expr.low_inclusive, expr.high_inclusive, canon, canonical_unit)
        first, second = expr.first, expr.second
        if _restated(first, second, canon, self.unit_key):
            # "HbA1c ≥ 6.5% or ≥ 48 mmol/mol": one bound written twice; the first unit's value stands
            return Compare(concept=concept_id, op=first.op, value=first.val.number, unit=_unit(first.val),
                           canonical_value=canon(first.val), canonical_unit=canonical_unit, span=span)
        lower = [b for b in (first, second) if b.op in (">", ">=")]
        upper = [b for b in (first, second) if b.op in ("<", "<=")]
        if len(lower) == 1 and len(upper) == 1 and not expr.either:
            lo, hi = lower[0], upper[0]
            return self._range(concept_id, lo.val, hi.val, lo.op == ">=", hi.op == "<=", canon, canonical_unit)
        children = tuple(Compare(concept=concept_id, op=b.op, value=b.val.number, unit=_unit(b.val),
                                 canonical_value=canon(b.val), canonical_unit=canonical_unit, span=self.src(b.span))
                         for b in (first, second))
        return (AnyOf if expr.either else All)(children=children, span=span)


    def _range(self, concept_id, low: Val, high: Val, low_inclusive: bool, high_inclusive: bool, canon, canonical_unit):
        from eligibility.core.ir import Range
        units = {self.unit_key(v.unit) for v in (low, high)}
        if len(units) == 1:
            low_value, high_value, unit = low.number, high.number, _unit(high) or _unit(low)
        else:
            # "6 months to 2 years": no one unit as written, so both ends in the canonical unit
            low_value, high_value, unit = canon(low), canon(high), canonical_unit
        return Range(concept=concept_id, low=low_value, high=high_value, low_inclusive=low_inclusive,
                     high_inclusive=high_inclusive, unit=unit, canonical_low=canon(low), canonical_high=canon(high),
                     canonical_unit=canonical_unit, span=(0, 0))


# how far apart a bound and its restatement in another unit may be after conversion: rounding
# to the other unit's usual precision (48 mmol/mol is 6.54 %, 100 mg/dL LDL is 2.59 mmol/L)
_RESTATED = 0.03


def _restated(first: Bound, second: Bound, canon, unit_key) -> bool:
    """Two bounds with one comparator, in two units, on (about) the same value: a restatement."""
    if first.op != second.op or None in (first.val.unit, second.val.unit):
        return False
    if unit_key(first.val.unit) == unit_key(second.val.unit):
        return False       # "BMI ≥ 30 kg/m2 or ≥ 27 kg/m2 with ...": two bounds
    a, b = canon(first.val), canon(second.val)
    return abs(a - b) <= _RESTATED * max(abs(a), abs(b))


def values_of(expr) -> list[Val]:
    if isinstance(expr, Bound):
        return [expr.val]
    if isinstance(expr, Rng):
        return [expr.low, expr.high]
    if isinstance(expr, Double):
        return [expr.first.val, expr.second.val]
    return [expr.first, expr.second]


def _unit(val: Val) -> str | None:
    return squash(val.unit) if val.unit else None


def _tidy(x: float) -> float:
    return float(f"{x:.12g}")


def _fmt(x: float) -> str:
    return f"{x:g}"
