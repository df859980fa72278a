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
    bare_limit: bool = False          # "≤ ULN": a limit with no number written, i.e. once the limit


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
    listed: bool = False              # "0, 1 or 2": grades listed one by one, not a range as written


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
    expr: object = None               # "HbA1c (≥ 7.5 %)": a comparison in parentheses after the name


@dataclass
class Subject:
    kind: str                         # concept | person | condition | age | drug
    concepts: list[ConceptRef] = field(default_factory=list)
    joiner: str = "comma"             # or | and | comma | slash
    category: str | None = None       # condition or drug as written: "T2DM for ≥ 1 year", "insulin 0.5 U/kg"
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

    @property
    def val(self) -> Val:
        return Val(self.number, self.unit, None, False, self.span)


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

    def limit_value(self, children):
        """`≤ ULN`: a unit with no number, once that unit (eligibility/compile/measures.py keeps it only
        for a multiple of a limit: `≤ ULN`, never `≥ mg/dL`)."""
        unit = children[0]
        return Val(1.0, unit.value, (unit.start_pos, unit.end_pos), False, _span(children), "1", bare_limit=True)

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
        op = children[0]
        val = next(c for c in children if isinstance(c, Val))     # after "reference range", if written
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

    def value_set(self, children):
        """`0, 1 or 2`, `70, 80, 90 or 100`: whole numbers in steps of 1 (or of 10) are the range they fill."""
        vals = [c for c in children if isinstance(c, Val)]
        numbers = [v.number for v in vals]
        steps = {b - a for a, b in zip(numbers, numbers[1:])}
        if any(v.unit for v in vals[:-1]) or any(n != int(n) for n in numbers) or len(steps) != 1 \
                or steps.pop() not in (1, 10):
            return None
        return Rng(vals[0], vals[-1], True, True, _span(children), listed=True)

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

    def concept_expr(self, children):
        """`blood pressure (≥ 160/100 mmHg)`: the comparison rides along with the concept."""
        ref = ConceptRef(children[0], None, _span(children))
        ref.expr = children[2]
        return ref

    def concepts_only(self, children):
        subject = children[0]
        exprs = [getattr(ref, "expr", None) for ref in subject.concepts]
        if not exprs or exprs[-1] is None or any(exprs[:-1]):
            return None
        return Measure(subject, exprs[-1], subject.span)

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

    def drug_subject(self, children):
        return Subject("drug", category=children[0].value, span=_span(children))

    def condition_subject(self, children):
        category = [c for c in children if isinstance(c, Token) and c.type == "CATEGORY"][0]
        return Subject("condition", category=category.value, span=_span(children))

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

    def paren_subject(self, children):
        """`Transaminases (ALT, AST) > 3 x ULN`: the concepts named in the parentheses."""
        subject = children[1]
        return Measure(subject, children[3], _span(children))

    def person_paren(self, children):
        return Measure(Subject("person", span=_span(children[:1])), children[2], _span(children))

    def other_quantity(self, children):
        return Foreign(_span(children))

    def lone_age(self, children):
        vals = [c for c in children if isinstance(c, Val)]
        subject = Subject("person", span=vals[0].span)
        if len(vals) == 2:
            return Measure(subject, Rng(vals[0], vals[1], True, True, _span(children)), _span(children))
        ops = [c for c in children if isinstance(c, _Op)]
        return Measure(subject, Bound(ops[0].op, vals[0], _span(children)), _span(children))

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

    def cmp_subject(self, children):
        """`under the age of 18`, `Minimum Age: 18 Years`: the comparator comes before the concept."""
        op = children[0]
        subject = next(c for c in children if isinstance(c, Subject))
        val = next(c for c in children if isinstance(c, Val))
        return Measure(subject, Bound(op.op, val, _span([op, val])), _span(children))

    def age_older(self, children):
        """`Older > 18 years`: the comparator after the word says the bound."""
        op = next(c for c in children if isinstance(c, _Op))
        val = next(c for c in children if isinstance(c, Val))
        return Measure(Subject("age", span=val.span), Bound(op.op, val, _span(children)), _span(children))

    def age_double(self, children):
        """`≥20 and ≤80 years of age`, `< 18 or > 75 years of age`: two bounds on the age."""
        ops = [c for c in children if isinstance(c, _Op)]
        vals = [c for c in children if isinstance(c, Val)]
        either = any(isinstance(c, Token) and c.type == "OR" for c in children)
        first = Bound(ops[0].op, vals[0], _span([ops[0], vals[0]]))
        second = Bound(ops[1].op, vals[1], _span([ops[1], vals[1]]))
        return Measure(Subject("age", span=vals[0].span), Double(first, second, _span(children), either),
                       _span(children))

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
