"""The SQL core: expression helpers and the node compiler (IR node -> SQL truth value).

The source layers (`wide`, `omop`), the explanations (`reasons`) and the query
assembly (`query`) build on this module; it imports none of them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from eligibility.core import ir
from eligibility.evaluate.ages import age_in_days, age_in_months
from eligibility.evaluate.has import _DAYS as DAYS
from eligibility.registry.concepts import Registry
from eligibility.registry.units import ULN

DIALECTS = ("duckdb", "postgres", "spark", "bigquery", "snowflake", "tsql")
OUTCOMES = ("pass", "fail", "unknown", "review")


# -- small expression helpers ---------------------------------------------------
def frag(text: str, **values: exp.Expression | str | float | int) -> exp.Expression:
    """Parse a DuckDB-syntax fragment with :name placeholders into a sqlglot tree."""
    tree = sqlglot.parse_one(text, read="duckdb")
    return exp.replace_placeholders(tree, **{k: lit(v) if not isinstance(v, exp.Expression) else v for k, v in values.items()})


def lit(value: str | float | int | bool | None) -> exp.Expression:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, (int, float)):
        # repr() round-trips a float exactly, so the SQL literal is the same double
        return exp.Literal.number(repr(float(value)) if isinstance(value, float) else str(value))
    return exp.Literal.string(value)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def safe_name(text: str) -> str:
    """Criterion ids (I4.1) and codes as identifier-friendly suffixes."""
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def feature(kind: str, key: str) -> str:
    return f"{kind}_{safe_name(key)}"


# -- what a trial needs from the data ------------------------------------------
@dataclass
class Needs:
    concepts: set[str] = field(default_factory=set)       # numeric concepts compared
    uln: set[str] = field(default_factory=set)            # concepts compared against × ULN
    # (rule, code): rule is the has-node's category (condition / medication / status), which
    # decides how the data answers (docs/patient-data.md §4), whatever the registry calls the code
    categories: set[tuple[str, str]] = field(default_factory=set)
    sex: bool = False
    decisions: list[str] = field(default_factory=list)    # criterion ids (reviewer decisions)
    age_months: bool = False    # an age bound finer than years: the source layer adds m_age and day_age


SEX_CODES = {"sex_female": "female", "sex_male": "male", "female": "female", "male": "male"}


def trial_needs(trial: ir.Trial) -> Needs:
    needs = Needs(decisions=[c.id for c in trial.criteria])
    for criterion in trial.criteria:
        for node in ir.walk(criterion.tree):
            if isinstance(node, (ir.Compare, ir.Range)):
                needs.concepts.add(node.concept)
                needs.age_months = needs.age_months or age_in_months(node)
                if node.canonical_unit == ULN:
                    needs.uln.add(node.concept)
            elif isinstance(node, ir.Has):
                if node.code in SEX_CODES:
                    needs.sex = True
                else:
                    needs.categories.add((node.category, node.code))
    return needs


# -- node compilation -------------------------------------------------------------
@dataclass
class Cond:
    """A compiled node: `v` TRUE/FALSE/NULL; `m` TRUE when a NULL `v` is due to a manual part (None: never)."""

    v: exp.Expression
    m: exp.Expression | None = None


def _cmp(op: str, left: exp.Expression, right: exp.Expression) -> exp.Expression:
    cls = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE, "==": exp.EQ, "!=": exp.NEQ}[op]
    return cls(this=left, expression=right)


def compare(op: str, value: exp.Expression, bound: float | exp.Expression) -> exp.Expression:
    """`value op bound` with the Python evaluator's float tolerance (docs/patient-data.md §4).

    eps = 1e-9 * max(1, |bound|); `>=` is `x >= b - eps`, `>` is `x > b + eps`,
    `<=` is `x <= b + eps`, `<` is `x < b - eps`, `==` is `|x - b| <= eps`.  A
    fixed bound is shifted here, at compile time, with the same float arithmetic.
    """
    if isinstance(bound, (int, float)):
        b = float(bound)
        eps = 1e-9 * max(1.0, abs(b))
        shifted = {">=": b - eps, ">": b + eps, "<=": b + eps, "<": b - eps}
        if op in shifted:
            return _cmp(op, value, lit(shifted[op]))
        # the evaluator treats == as the closed region [b - eps, b + eps]
        close = exp.and_(exp.GTE(this=value, expression=lit(b - eps)), exp.LTE(this=value.copy(), expression=lit(b + eps)), copy=False)
    else:
        eps = exp.Mul(this=lit(1e-9), expression=exp.func("GREATEST", lit(1.0), exp.Abs(this=bound.copy())))
        shifted = {">=": exp.Sub, ">": exp.Add, "<=": exp.Add, "<": exp.Sub}
        if op in shifted:
            return _cmp(op, value, exp.Paren(this=shifted[op](this=exp.Paren(this=bound), expression=eps)))
        close = exp.and_(exp.GTE(this=value, expression=exp.Paren(this=exp.Sub(this=exp.Paren(this=bound), expression=eps))),
                         exp.LTE(this=value.copy(), expression=exp.Paren(this=exp.Add(this=exp.Paren(this=bound.copy()), expression=eps.copy()))), copy=False)
    return close if op == "==" else exp.Not(this=exp.Paren(this=close))


def review_unless_false(cond: Cond) -> Cond:
    """A qualifier the data cannot check (how long something held): FALSE stays FALSE, anything else is review."""
    return Cond(frag("CASE WHEN NOT :v THEN FALSE END", v=exp.Paren(this=cond.v)), exp.true())


class NodeCompiler:
    def __init__(self, registry: Registry, columns: set[str]):
        self.registry = registry
        self.columns = columns   # feature columns the source layer provides

    def value(self, concept: str) -> exp.Expression:
        name = feature("v", concept)
        return col(name) if name in self.columns else exp.null()

    def threshold(self, concept: str, canonical: float, unit: str) -> float | exp.Expression:
        if unit != ULN:
            return float(canonical)
        default = self.registry.concept(concept).uln
        name = feature("uln", concept)
        uln = col(name) if name in self.columns else exp.null()
        fallback = lit(float(default)) if default is not None else exp.null()
        return exp.Mul(this=lit(float(canonical)), expression=exp.Coalesce(this=uln, expressions=[fallback]))

    def compile(self, node: ir.Tree) -> Cond:
        cond = self._compile(node)
        quals = [k for k in node.qualifiers if not (isinstance(node, ir.Has) and k == "duration_at_least")]
        return review_unless_false(cond) if quals else cond

    def _has(self, node: ir.Has) -> Cond:
        if node.code in SEX_CODES:
            sex = col("f_sex") if "f_sex" in self.columns else exp.null()
            base = Cond(exp.EQ(this=sex, expression=lit(SEX_CODES[node.code])))
        else:
            name = feature("h", f"{node.category}_{node.code}")
            base = Cond(col(name) if name in self.columns else exp.cast(exp.null(), "BOOLEAN", copy=False))
        duration = node.qualifiers.get("duration_at_least")
        if node.within is None and duration is None:
            return base
        if node.category == "condition" and feature("last", f"{node.category}_{node.code}") in self.columns:
            return self._timed(node, base)
        if node.category == "condition" and node.code not in SEX_CODES:
            # checked against an onset date; with none known a present condition goes to a reviewer
            h = exp.Paren(this=base.v)
            return Cond(frag("CASE WHEN :h THEN NULL ELSE :h END", h=h), frag("COALESCE(:h, FALSE)", h=h))
        if node.category == "medication" and duration is None:
            return base        # a current medication list answers "within" any window ending today
        return review_unless_false(base)

    def timing(self, node: ir.Has) -> tuple[exp.Expression, exp.Expression]:
        """(dates known, dates fit) of a condition's records against the node's window and minimum duration:
        the latest record within the window, the earliest at least the duration ago (days, with the
        evaluator's tolerance; eligibility.evaluate.has._timed)."""
        key = f"{node.category}_{node.code}"
        duration = node.qualifiers.get("duration_at_least")
        known, fits = [], []
        for name, span, op in (("last", node.within, "<="), ("first", duration, ">=")):
            if span is None:
                continue
            ago = col(feature("d" + name, key))         # days from the record's start to as-of
            days = span.value * DAYS[span.unit]
            known.append(exp.Not(this=exp.Is(this=ago, expression=exp.null())))
            fits.append(_cmp(op, ago.copy(), lit(days + 1e-9 if op == "<=" else days - 1e-9)))
        return exp.and_(*known, copy=False), exp.and_(*fits, copy=False)

    def _timed(self, node: ir.Has, base: Cond) -> Cond:
        """A condition asked for within a window or for a minimum duration, on record dates (long data):
        present and dated -> whether the dates fit; present without a start date -> review."""
        h = exp.Paren(this=base.v)
        known, fits = self.timing(node)
        v = frag("CASE WHEN :h THEN CASE WHEN :known THEN :fits END ELSE :h END", h=h, known=known, fits=fits)
        return Cond(v, frag("COALESCE(:h AND NOT (:known), FALSE)", h=h.copy(), known=known.copy()))

    def _compile(self, node: ir.Tree) -> Cond:
        if isinstance(node, (ir.Compare, ir.Range)) and age_in_months(node):
            return Cond(self._age_months(node))
        if not isinstance(node, (ir.Compare, ir.Range)):
            return self._other(node)
        cond = self._numeric(node, self.value(node.concept))
        op = feature("op", node.concept)
        return Cond(self._censored(node, col(op), cond.v)) if op in self.columns else cond

    def _censored(self, node: ir.Compare | ir.Range, op: exp.Expression, plain: exp.Expression) -> exp.Expression:
        """A value reported with a bound direction (OMOP operator_concept_id: `<0.1`): the true value lies in
        (-inf, v) / (-inf, v] / (v, inf) / [v, inf).  TRUE when all of that interval is inside the node's
        region, FALSE when none of it is, else NULL: the Python evaluator's rule (plan._interval_code,
        exact comparisons).  `op` NULL: an exact value, the plain comparison."""
        v = self.value(node.concept)
        if isinstance(node, ir.Compare):
            b = node.canonical_value
            lo, lo_open, hi, hi_open = {">=": (b, False, None, True), ">": (b, True, None, True),
                                        "<=": (None, True, b, False), "<": (None, True, b, True)}.get(
                node.op, (b, False, b, False))
            negate = node.op == "!="
        else:
            lo, hi = node.canonical_low, node.canonical_high
            lo_open, hi_open, negate = not node.low_inclusive, not node.high_inclusive, False
        lo_x = None if lo is None else self.threshold(node.concept, lo, node.canonical_unit)
        hi_x = None if hi is None else self.threshold(node.concept, hi, node.canonical_unit)

        def bound(x):
            return lit(x) if isinstance(x, float) else exp.Paren(this=x.copy())

        def beyond(side: str, x, x_open: bool, strict: str) -> exp.Expression:
            # v strictly beyond the bound, or on it where the value's interval or the region is open
            on = exp.EQ(this=v.copy(), expression=bound(x))
            edge = exp.or_(exp.EQ(this=op.copy(), expression=lit(strict)), exp.true() if x_open else exp.false(), copy=False)
            return exp.or_(_cmp(side, v.copy(), bound(x)), exp.and_(on, exp.Paren(this=edge), copy=False), copy=False)

        def within(side: str, x, x_open: bool, strict: str) -> exp.Expression:
            on = exp.EQ(this=v.copy(), expression=bound(x))
            edge = exp.or_(exp.EQ(this=op.copy(), expression=lit(strict)), exp.false() if x_open else exp.true(), copy=False)
            return exp.or_(_cmp(side, v.copy(), bound(x)), exp.and_(on, exp.Paren(this=edge), copy=False), copy=False)

        # below v ('<', '<='): inside needs no lower bound; outside when v lies at or under the lower bound
        below_in = exp.false() if lo_x is not None else (exp.true() if hi_x is None else within("<", hi_x, hi_open, "<"))
        below_out = exp.false() if lo_x is None else beyond("<", lo_x, lo_open, "<")
        above_in = exp.false() if hi_x is not None else (exp.true() if lo_x is None else within(">", lo_x, lo_open, ">"))
        above_out = exp.false() if hi_x is None else beyond(">", hi_x, hi_open, ">")
        yes, no = (exp.false(), exp.true()) if negate else (exp.true(), exp.false())
        below = exp.Case().when(below_in, yes.copy(), copy=False).when(below_out, no.copy(), copy=False)
        above = exp.Case().when(above_in, yes.copy(), copy=False).when(above_out, no.copy(), copy=False)
        return (exp.Case().when(exp.Is(this=op.copy(), expression=exp.null()), plain, copy=False)
                .when(exp.In(this=op.copy(), expressions=[lit("<"), lit("<=")]), below, copy=False)
                .else_(above, copy=False))

    def _age_months(self, node: ir.Compare | ir.Range) -> exp.Expression:
        """Completed months (m_age = months / 12) or, for bounds in days or weeks, days lived (day_age =
        days / 365.25) when a birth date gave them; else a whole number of
        completed years Y spans Y .. (12Y + 11) / 12: TRUE if all of it is inside the bound, FALSE if
        it lies wholly on one side (the evaluator's rule, eligibility.evaluate.ages); few references to
        the age, since PostgreSQL inlines a column's expression into each one."""
        age = self.value("age")
        fine = "day_age" if age_in_days(node) else "m_age"   # days lived for bounds in days or weeks
        m_age = col(fine) if fine in self.columns else exp.null()
        if isinstance(node, ir.Compare):
            op = node.op
            low = {">=": ">=", ">": ">", "==": ">=", "!=": ">="}.get(op)
            high = {"<=": "<=", "<": "<", "==": "<=", "!=": "<="}.get(op)
            lo_b = hi_b = node.canonical_value
        else:
            op = None
            low = None if node.canonical_low is None else (">=" if node.low_inclusive else ">")
            high = None if node.canonical_high is None else ("<=" if node.high_inclusive else "<")
            lo_b, hi_b = node.canonical_low, node.canonical_high
        last = exp.Div(this=exp.Paren(this=exp.Add(this=exp.Mul(this=age.copy(), expression=lit(12.0)),
                                                   expression=lit(11.0))), expression=lit(12.0))

        def low_ok(x: exp.Expression) -> exp.Expression:
            return exp.true() if low is None else compare(low, x, float(lo_b))

        def high_ok(x: exp.Expression) -> exp.Expression:
            return exp.true() if high is None else compare(high, x, float(hi_b))
        inside, outside = (exp.false(), exp.true()) if op == "!=" else (exp.true(), exp.false())
        span = (exp.Case().when(exp.and_(low_ok(age.copy()), high_ok(last), copy=False), inside, copy=False)
                .when(exp.or_(exp.Not(this=exp.Paren(this=low_ok(last.copy()))),
                              exp.Not(this=exp.Paren(this=high_ok(age.copy()))), copy=False), outside, copy=False))
        whole = exp.and_(exp.EQ(this=age.copy(), expression=exp.func("FLOOR", age.copy())),
                         exp.GTE(this=age.copy(), expression=lit(0.0)), copy=False)
        return (exp.Case()
                .when(exp.Not(this=exp.Is(this=m_age, expression=exp.null())), self._numeric(node, m_age.copy()).v, copy=False)
                .when(whole, span, copy=False)
                .else_(self._numeric(node, age.copy()).v, copy=False))

    def _numeric(self, node: ir.Compare | ir.Range, value: exp.Expression) -> Cond:
        if isinstance(node, ir.Compare):
            return Cond(compare(node.op, value,
                             self.threshold(node.concept, node.canonical_value, node.canonical_unit)))
        parts = []
        if node.canonical_low is not None:
            parts.append(compare(">=" if node.low_inclusive else ">", value,
                              self.threshold(node.concept, node.canonical_low, node.canonical_unit)))
        if node.canonical_high is not None:
            parts.append(compare("<=" if node.high_inclusive else "<", value,
                              self.threshold(node.concept, node.canonical_high, node.canonical_unit)))
        if not parts:   # an open range still needs a value to be TRUE
            parts.append(exp.Not(this=exp.Is(this=value, expression=exp.null())))
            return Cond(frag("CASE WHEN :x THEN TRUE END", x=parts[0]))
        return Cond(exp.and_(*parts, copy=False))

    def _other(self, node: ir.Tree) -> Cond:
        if isinstance(node, ir.Has):
            return self._has(node)
        if isinstance(node, ir.Manual):
            return Cond(exp.cast(exp.null(), "BOOLEAN", copy=False), exp.true())
        if isinstance(node, ir.Not):
            inner = self.compile(node.child)
            return Cond(exp.Not(this=exp.Paren(this=inner.v)), inner.m)
        if isinstance(node, (ir.All, ir.AnyOf)):
            kids = [self.compile(child) for child in node.children]
            if not kids:
                return Cond(exp.true() if isinstance(node, ir.All) else exp.false())
            join = exp.and_ if isinstance(node, ir.All) else exp.or_
            v = join(*[exp.Paren(this=k.v) for k in kids])
            # any unknown child that is unknown because of a manual part makes the
            # node's unknown a reviewer's question
            ms = [exp.and_(exp.Is(this=exp.Paren(this=k.v), expression=exp.null()), exp.Paren(this=k.m), copy=False)
                  for k in kids if k.m is not None]
            return Cond(v, exp.or_(*ms, copy=False) if ms else None)
        raise TypeError(f"unknown IR node {node!r}")
