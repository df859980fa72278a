"""Explanations in SQL: the `reasons` column of DESIGN §8, built only for non-pass criteria.

Split from eligibility.sqlgen: `criterion_detail` names the values a criterion
looked at, `reason` wraps it as `I3 fail: ...` / `I3 unknown: ...` or the
criterion's reviewer question (a literal fixed at compile time).
"""
from __future__ import annotations

from sqlglot import exp

from . import ir
from .age_months import age_in_months
from .registry import Registry
from .sqlgen import SEX_CODES, col, feature, frag, lit
from .explain import manual_label
from .units import display_unit


def _number_text(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, "VARCHAR", copy=False)


def criterion_detail(criterion: ir.Criterion, registry: Registry, columns: set[str]) -> exp.Expression:
    """Short text naming the values a criterion looked at: 'BMI 22.1 kg/m2', 'HbA1c missing'."""
    parts: list[exp.Expression] = []
    seen: set[str] = set()
    for node in ir.walk(criterion.tree):
        if isinstance(node, (ir.Compare, ir.Range)) and node.concept not in seen:
            seen.add(node.concept)
            concept = registry.concept(node.concept)
            v, r = feature("v", node.concept), feature("r", node.concept)
            name = concept.name
            if v not in columns:
                parts.append(lit(f"{name}: no data column"))
                continue
            unit = display_unit(concept.canonical_unit)
            why = col(r) if r in columns else exp.null()
            shown = feature("s", node.concept)
            # the cell's own text when the source layer offers it (DuckDB, plain numbers), else the double
            num = exp.Coalesce(this=exp.Trim(this=col(shown)), expressions=[_number_text(col(v))]) if shown in columns \
                else _number_text(col(v))
            # literal pieces joined in Python: fewer string operations per row
            months = node.concept == "age" and any(isinstance(n, (ir.Compare, ir.Range)) and age_in_months(n)
                                                   for n in ir.walk(criterion.tree))
            if months:   # a bound in months: completed months when known, else say they are unknown
                m = col("m_age") if "m_age" in columns else exp.null()
                count = exp.cast(exp.cast(exp.func("ROUND", exp.Mul(this=m, expression=lit(12.0))), "INT", copy=False),
                                 "VARCHAR", copy=False)
                parts.append(frag("CASE WHEN :m IS NOT NULL THEN :a || :count || ' completed months' "
                                  "WHEN :v IS NOT NULL THEN :a || :num || :b || ' (months unknown)' "
                                  "WHEN :why IS NOT NULL THEN :a || :why ELSE :missing END", m=m.copy(), count=count,
                                  v=col(v), num=num, a=f"{name} ", b=f" {unit}", why=why, missing=f"{name} missing"))
                continue
            parts.append(frag("CASE WHEN :v IS NOT NULL THEN :a || :num || :b WHEN :why IS NOT NULL THEN :a || :why "
                              "ELSE :missing END", v=col(v), num=num, a=f"{name} ", b=f" {unit}",
                              why=why, missing=f"{name} missing"))
        elif isinstance(node, ir.Has) and node.code not in seen:
            seen.add(node.code)
            key = "f_sex" if node.code in SEX_CODES else feature("h", f"{node.category}_{node.code}")
            if key not in columns:
                parts.append(lit(f"{node.label}: no data column"))
                continue
            h = col(key)
            if key == "f_sex":
                parts.append(frag("'sex ' || COALESCE(:h, 'missing')", h=h))
            else:
                parts.append(frag("CASE WHEN :h THEN :yes WHEN NOT :h THEN :no ELSE :unk END", h=h,
                                  yes=f"{node.label} yes", no=f"{node.label} no", unk=f"{node.label} missing"))
        elif isinstance(node, ir.Manual):
            parts.append(lit(f"needs review: {manual_label(node.text)}"))
    if not parts:
        return lit("")
    if all(isinstance(p, exp.Literal) for p in parts):
        return lit(", ".join(p.name for p in parts))
    if len(parts) == 1:
        return parts[0]
    return exp.func("CONCAT_WS", lit(", "), *parts, dialect="duckdb")


def review_text(criterion: ir.Criterion) -> str:
    """What a reviewer has to decide: the manual parts and the conditions the data cannot check (a constant)."""
    notes = []
    for node in ir.walk(criterion.tree):
        if isinstance(node, ir.Manual):
            notes.append(manual_label(node.text))
        for name, duration in node.qualifiers.items():
            notes.append(f"{name.replace('_', ' ')} {duration.value:g} {duration.unit}: cannot be checked from the data")
        if isinstance(node, ir.Has) and node.within is not None:
            notes.append(f"{node.label} within {node.within.value:g} {node.within.unit}: onset date not recorded")
    return "; ".join(dict.fromkeys(notes)) or "needs a reviewer"


def _prefixed(prefix: str, detail: exp.Expression) -> exp.Expression:
    """`prefix || detail` with the prefix joined, at compile time, to the detail's leading literals."""
    if isinstance(detail, exp.Literal) and detail.is_string:
        return lit(prefix + detail.name)
    if isinstance(detail, exp.Case) and detail.this is None:
        out = detail.copy()
        for branch in out.args.get("ifs") or []:
            branch.set("true", _prefixed(prefix, branch.args["true"]))
        out.set("default", _prefixed(prefix, out.args["default"]) if out.args.get("default") else None)
        return out
    if isinstance(detail, exp.DPipe):
        return exp.DPipe(this=_prefixed(prefix, detail.this), expression=detail.expression.copy())
    return exp.DPipe(this=lit(prefix), expression=detail.copy())


def reason(criterion: ir.Criterion, outcome: exp.Expression, detail: exp.Expression, *,
            fold: bool = False) -> exp.Expression:
    """`I3 fail: <values>` for a failing or unknown criterion, `I7 review: <what to decide>` (a literal)."""
    review = lit(f"{criterion.id} review: {review_text(criterion)}")
    case = exp.Case().when(exp.EQ(this=outcome.copy(), expression=lit("review")), review, copy=False)
    if fold:
        # DuckDB: the detail is written out once per outcome, its literals already carrying
        # `I3 fail: ` -- per row that saves a CASE and a concatenation per non-pass criterion
        return (case.when(exp.EQ(this=outcome.copy(), expression=lit("fail")),
                          _prefixed(f"{criterion.id} fail: ", detail), copy=False)
                .when(exp.NEQ(this=outcome.copy(), expression=lit("pass")),
                      _prefixed(f"{criterion.id} unknown: ", detail), copy=False))
    # the detail appears once in the query (engines that inline subqueries would copy it per branch)
    prefix = exp.Case(this=outcome.copy()).when(lit("fail"), lit(f"{criterion.id} fail: "), copy=False).else_(
        lit(f"{criterion.id} unknown: "), copy=False)
    said = exp.DPipe(this=prefix, expression=detail)
    return case.when(exp.NEQ(this=outcome.copy(), expression=lit("pass")), said, copy=False)
