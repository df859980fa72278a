"""Lark parse trees of criteria.lark -> small phrase objects (positions in the normalised text).

The compiler turns these into IR nodes: it knows the registry, the section
and the source offsets; this module only reads the shape of the phrase.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from lark import Token, Transformer

Span = tuple[int, int]

_OPS = {"GE": ">=", "GT": ">", "LE": "<=", "LT": "<", "EQ": "=="}
FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">", "==": "=="}


def parse_number(text: str) -> float:
    """`7,0` (decimal comma), `150,000` (thousands), `1,234.5`, `.5`."""
    if "," in text and "." in text:
        return float(text.replace(",", ""))
    if "," in text:
        groups = text.split(",")
        if len(groups) > 2 or all(len(g) == 3 for g in groups[1:]) and len(groups[0]) <= 3 and groups[0] != "0":
            return float(text.replace(",", ""))
        return float(text.replace(",", "."))
    if text.count(".") > 1:
        return float(text.replace(".", ""))
    return float(text)


def _span(items) -> Span:
    starts, ends = [], []
    for item in items:
        if isinstance(item, Token):
            starts.append(item.start_pos)
            ends.append(item.end_pos)
        elif hasattr(item, "span"):
            starts.append(item.span[0])
            ends.append(item.span[1])
    return (min(starts), max(ends))


@dataclass
class Val:
    number: float
    unit: str | None
    unit_span: Span | None
    bad_unit: bool
    span: Span
    raw: str = ""


@dataclass
class Bound:
    op: str
    val: Val
    span: Span


@dataclass
class Rng:
    low: Val
    high: Val
    low_inclusive: bool
    high_inclusive: bool
    span: Span


@dataclass
class Double:
    first: Bound
    second: Bound
    span: Span
    either: bool = False          # "≥ 30 kg/m2 or ≥ 27 kg/m2 with ..."


@dataclass
class PairBound:
    op: str
    first: Val
    second: Val
    span: Span


@dataclass
class ConceptRef:
    token: Token
    default_unit: Token | None
    span: Span


@dataclass
class Subject:
    kind: str                         # concept | person | condition | age
    concepts: list[ConceptRef] = field(default_factory=list)
    joiner: str = "comma"             # or | and | comma | slash
    category: str | None = None       # condition id for "T2DM for ≥ 1 year"
    span: Span = (0, 0)


@dataclass
class Measure:
    subject: Subject
    expr: object                      # Bound | Rng | Double | PairBound
    span: Span


@dataclass
class Foreign:
    """A comparison on another quantity named with a registry word ("gestational age ≥ 37 weeks")."""
    span: Span


@dataclass
class Bare:
    expr: object
    span: Span


@dataclass
class Qualifier:
    op: str
    val: Val
    span: Span


@dataclass
class Within:
    number: float
    unit: str
    span: Span


@dataclass
class _Pair:
    first: Val
    second: Val
    span: Span


@dataclass
class _Restate:
    span: Span


class _Op:
    def __init__(self, op: str, span: Span) -> None:
        self.op, self.span = op, span


def _op_of(token: Token) -> str:
    if token.type in _OPS:
        return _OPS[token.type]
    word = token.value.lower()
    if token.type == "POST_GE":
        return ">="
    if token.type == "POST_LE":
        return "<="
    if token.type == "POST_AGE":
        return "<=" if "younger" in word else ">="
    if token.type == "AGE_CMP":
        return "<" if "younger" in word else ">"
    raise ValueError(token.type)


class ToPhrases(Transformer):
    """Bottom-up: tokens -> Val/Bound/Rng/..., rules -> Measure / Qualifier / Within."""

    # -- values ---------------------------------------------------------------
    def unit(self, children):
        return children[0]

    def value(self, children):
        number = children[0]
        unit = children[1] if len(children) > 1 else None
        return Val(parse_number(number.value), unit.value if unit is not None else None,
                   (unit.start_pos, unit.end_pos) if unit is not None else None,
                   unit is not None and unit.type == "BADUNIT", _span(children), number.value)

    def cmp(self, children):
        return _Op(_op_of(children[0]), _span(children))

    def post(self, children):
        return _Op(_op_of(children[0]), _span(children))

    def restate(self, children):
        return _Restate(_span(children))

    def incl(self, children):
        token = [c for c in children if c.type in ("INCL", "EXCL")][0]
        return _Restate(_span(children)) if token.type == "INCL" else _Op("exclusive", _span(children))

    def after(self, children):
        return _Restate(_span(children))

    # -- bounds and ranges -------------------------------------------------------
    def prefix_bound(self, children):
        op, val = children[0], children[1]
        return Bound(op.op, val, _span(children))

    def postfix_bound(self, children):
        val = children[0]
        op = [c for c in children if isinstance(c, _Op)][0]
        return Bound(op.op, val, _span(children))

    def double_bound(self, children):
        bounds = [c for c in children if isinstance(c, Bound)]
        either = any(isinstance(c, Token) and c.type == "OR" for c in children)
        return Double(bounds[0], bounds[1], _span(children), either)

    def range(self, children):
        vals = [c for c in children if isinstance(c, Val)]
        exclusive = any(isinstance(c, _Op) and c.op == "exclusive" for c in children)
        return Rng(vals[0], vals[1], not exclusive, not exclusive, _span(children))

    def open_range(self, children):
        """`12 to < 18 years`: the comparator says whether the upper end is included."""
        vals = [c for c in children if isinstance(c, Val)]
        op = [c for c in children if isinstance(c, _Op)][0].op
        if op in (">", ">="):
            return None
        return Rng(vals[0], vals[1], True, op == "<=", _span(children))

    def pair(self, children):
        numbers = [c for c in children if isinstance(c, Token) and c.type == "NUMBER"]
        unit = children[-1] if isinstance(children[-1], Token) and children[-1].type in ("UNIT", "BADUNIT") else None
        vals = []
        for number in numbers:
            vals.append(Val(parse_number(number.value), unit.value if unit is not None else None,
                            (unit.start_pos, unit.end_pos) if unit is not None else None,
                            unit is not None and unit.type == "BADUNIT", (number.start_pos, number.end_pos)))
        return _Pair(vals[0], vals[1], _span(children))

    def pair_bound(self, children):
        op, pair = children[0], children[1]
        return PairBound(op.op, pair.first, pair.second, _span(children))

    # -- subjects -----------------------------------------------------------------
    def concept(self, children):
        return ConceptRef(children[0], None, _span(children))

    def concept_with_unit(self, children):
        return ConceptRef(children[0], children[2], _span(children))

    def concepts(self, children):
        refs = [c for c in children if isinstance(c, ConceptRef)]
        seps = {c.type for c in children if isinstance(c, Token)}
        joiner = "or" if "OR" in seps else "and" if "AND" in seps else "slash" if "SLASH" in seps else "comma"
        return Subject("concept", refs, joiner, span=_span(children))

    def subject(self, children):
        subject = children[0]
        subject.span = _span(children)
        return subject

    def person_subject(self, children):
        return Subject("person", span=_span(children))

    def condition_subject(self, children):
        return Subject("condition", category=children[0].value, span=_span(children))

    # -- measures -------------------------------------------------------------------
    def subject_measure(self, children):
        return Measure(children[0], children[1], _span(children))

    def chain_measure(self, children):
        low_val, op1, subject, op2, high_val = children[:5]
        first = Bound(FLIP[op1.op], low_val, _span([low_val, op1]))
        second = Bound(op2.op, high_val, _span([op2, high_val]))
        return Measure(subject, Double(first, second, _span([low_val, high_val])), _span(children))

    def between_subject(self, children):
        subject = [c for c in children if isinstance(c, Subject)][0]
        vals = [c for c in children if isinstance(c, Val)]
        exclusive = any(isinstance(c, _Op) and c.op == "exclusive" for c in children)
        return Measure(subject, Rng(vals[0], vals[1], not exclusive, not exclusive, _span(children)), _span(children))

    def person_paren(self, children):
        return Measure(Subject("person", span=_span(children[:1])), children[2], _span(children))

    def other_quantity(self, children):
        return Foreign(_span(children))

    def lone_age(self, children):
        ops = [c for c in children if isinstance(c, _Op)]
        val = [c for c in children if isinstance(c, Val)][0]
        return Measure(Subject("person", span=val.span), Bound(ops[0].op, val, _span(children)), _span(children))

    def bare(self, children):
        return Bare(children[0], _span(children))

    def reversed_measure(self, children):
        val, op, subject = children[:3]
        return Measure(subject, Bound(FLIP[op.op], val, _span([val, op])), _span(children))

    def age_bound(self, children):
        ops = [c for c in children if isinstance(c, _Op)]
        val = [c for c in children if isinstance(c, Val)][0]
        if not ops:
            tokens = [c for c in children if isinstance(c, Token) and c.type == "POST_AGE"]
            if not tokens:
                return None
            ops = [_Op(_op_of(tokens[0]), _span(tokens))]
        return Measure(Subject("age", span=val.span), Bound(ops[0].op, val, _span(children)), _span(children))

    def age_cmp(self, children):
        op = _op_of(children[0])
        val = children[1]
        return Measure(Subject("age", span=val.span), Bound(op, val, _span(children)), _span(children))

    def age_range(self, children):
        vals = [c for c in children if isinstance(c, Val)]
        rng = Rng(vals[0], vals[1], True, True, _span(children))
        return Measure(Subject("age", span=vals[0].span), rng, _span(children))

    def qualifier(self, children):
        ops = [c for c in children if isinstance(c, _Op)]
        val = [c for c in children if isinstance(c, Val)][0]
        return Qualifier(ops[0].op if ops else ">=", val, _span(children))

    def within(self, children):
        numbers = [c for c in children if isinstance(c, Token) and c.type == "NUMBER"]
        unit = [c for c in children if isinstance(c, Token) and c.type == "UNIT"][0]
        number = parse_number(numbers[0].value) if numbers else 1.0
        return Within(number, unit.value, _span(children))


_WORDS_SPACE = re.compile(r"\s+")


def squash(text: str) -> str:
    return _WORDS_SPACE.sub(" ", text).strip()


# ---- phrases -> IR nodes ---------------------------------------------------------

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

    def _derived(self, origin: str) -> tuple[str, ...]:
        return tuple(c.id for c in self.registry.concepts.values() if c.derived_from == origin)

    def duration(self, val: Val):
        from .ir import Duration
        from .units import pint_expression
        expr = pint_expression(val.unit, self.registry) if val.unit else None
        code = _DURATION_UNITS.get(expr or "")
        return Duration(value=val.number, unit=code) if code else None

    def measure(self, m: Measure, inherit: str | None = None):
        """-> (node | None, unparsed span | None, manual reason | None); `inherit`: unit of the phrase before."""
        from .ir import AnyOf, All, CriterionProblem
        subject, expr = m.subject, m.expr
        if subject.kind in ("age", "person"):
            items = [(self._derived("birth_date"), None)]
        elif subject.kind == "condition":
            phrase = self.lexer.phrase(Token("CATEGORY", subject.category))
            items = [(self._derived(f"condition:{phrase.ids[0]}") if phrase else (), None)]
        else:
            items = [(self._ids(ref), ref) for ref in subject.concepts]
        if not items or any(not ids for ids, _ in items):
            return None, None, None
        vals = _values(expr)
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
        from .ir import CriterionProblem
        from .units import conversion, display_unit
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
            convs[id(v)] = conversion(concept_id, v.unit, self.registry)
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
        bad = next((v for v in vals if not plausible(v)), None)
        if bad is not None:
            return (f"{_fmt(bad.number)} {bad.unit or concept.canonical_unit} is outside the plausible range "
                    f"of {concept.name}")
        return self._shape(concept_id, expr, canon, canonical_unit)

    def _fits(self, concept_id: str, unit: str) -> bool:
        from .units import unit_fits
        return unit_fits(concept_id, unit, self.registry)

    def _shape(self, concept_id, expr, canon, canonical_unit):
        from .ir import All, AnyOf, Compare, Range
        span = (0, 0)
        if isinstance(expr, Bound):
            return Compare(concept=concept_id, op=expr.op, value=expr.val.number, unit=_unit(expr.val),
                           canonical_value=canon(expr.val), canonical_unit=canonical_unit, span=span)
        if isinstance(expr, Rng):
            low, high = expr.low, expr.high
            if canon(low) > canon(high):
                low, high = high, low
            return Range(concept=concept_id, low=low.number, high=high.number, low_inclusive=expr.low_inclusive,
                         high_inclusive=expr.high_inclusive, unit=_unit(high) or _unit(low),
                         canonical_low=canon(low), canonical_high=canon(high), canonical_unit=canonical_unit, span=span)
        first, second = expr.first, expr.second
        lower = [b for b in (first, second) if b.op in (">", ">=")]
        upper = [b for b in (first, second) if b.op in ("<", "<=")]
        if len(lower) == 1 and len(upper) == 1 and not expr.either:
            lo, hi = lower[0], upper[0]
            return Range(concept=concept_id, low=lo.val.number, high=hi.val.number, low_inclusive=lo.op == ">=",
                         high_inclusive=hi.op == "<=", unit=_unit(hi.val) or _unit(lo.val),
                         canonical_low=canon(lo.val), canonical_high=canon(hi.val),
                         canonical_unit=canonical_unit, span=span)
        children = tuple(Compare(concept=concept_id, op=b.op, value=b.val.number, unit=_unit(b.val),
                                 canonical_value=canon(b.val), canonical_unit=canonical_unit, span=self.src(b.span))
                         for b in (first, second))
        return (AnyOf if expr.either else All)(children=children, span=span)


def _values(expr) -> list[Val]:
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
