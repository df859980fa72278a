"""Explanations in SQL: the `reasons` column of DESIGN §8, built only for non-pass criteria.

Split from eligibility.sql.query: `criterion_detail` names the parts that decided
a criterion (as the Python evaluator does: a failed `all` by its false parts),
`reason` wraps it as `I3 fail: ...` / `I3 unknown: ...` or the criterion's
reviewer question (a literal fixed at compile time).
"""
from __future__ import annotations

from sqlglot import exp

from eligibility.evaluate import explain as words
from eligibility.core import ir
from eligibility.evaluate.ages import age_in_days, age_in_months
from eligibility.registry.concepts import Registry
from eligibility.sql.nodes import SEX_CODES, NodeCompiler, col, compare, feature, frag, lit
from eligibility.registry.units import ULN, display_unit, unit_suffix


def _number_text(value: exp.Expression) -> exp.Expression:
    """A whole number without a decimal part (an age of 72, not 72.0), as the Python evaluator shows it."""
    whole = exp.and_(exp.EQ(this=value.copy(), expression=exp.func("FLOOR", value.copy())),
                     exp.LT(this=exp.Abs(this=value.copy()), expression=lit(1e15)), copy=False)
    return (exp.Case().when(whole, exp.cast(exp.cast(value.copy(), "BIGINT", copy=False), "VARCHAR", copy=False), copy=False)
            .else_(exp.cast(value, "VARCHAR", copy=False), copy=False))


def _numeric_text(node: ir.Compare | ir.Range, criterion: ir.Criterion, registry: Registry, columns: set[str],
                  relation: exp.Expression | None) -> exp.Expression:
    """'BMI 22.1 kg/m²' (+ the relation to the bound when the part decided), 'HbA1c missing', or why a value was refused."""
    concept = registry.concept(node.concept)
    v, r = feature("v", node.concept), feature("r", node.concept)
    name = concept.name
    if v not in columns:
        return lit(f"{name}: no data column")
    unit = display_unit(concept.canonical_unit)
    why = col(r) if r in columns else exp.null()
    shown = feature("s", node.concept)
    # the cell's own text when the source layer offers it (DuckDB, plain numbers), else the double
    num = exp.Coalesce(this=exp.Trim(this=col(shown)), expressions=[_number_text(col(v))]) if shown in columns \
        else _number_text(col(v))
    months = node.concept == "age" and any(isinstance(n, (ir.Compare, ir.Range)) and age_in_months(n)
                                           for n in ir.walk(criterion.tree))
    if months:   # a bound finer than years: completed months (or days lived) when known, else say they are unknown
        days = isinstance(node, (ir.Compare, ir.Range)) and age_in_days(node)
        fine, per_year, label = ("day_age", 365.25, " days") if days else ("m_age", 12.0, " completed months")
        m = col(fine) if fine in columns else exp.null()
        count = exp.cast(exp.cast(exp.func("ROUND", exp.Mul(this=m, expression=lit(per_year))), "INT", copy=False),
                         "VARCHAR", copy=False)
        return frag(f"CASE WHEN :m IS NOT NULL THEN :a || :count || '{label}' "
                    "WHEN :v IS NOT NULL THEN :a || :num || :b || ' (months unknown)' "
                    "WHEN :why IS NOT NULL THEN :a || :why ELSE :missing END", m=m.copy(), count=count,
                    v=col(v), num=num, a=f"{name} ", b=unit_suffix(unit), why=why, missing=f"{name} missing")
    op = feature("op", node.concept)
    if op in columns:
        # a censored value (OMOP operator_concept_id): 'HbA1c reported as < 4.0 %', as the evaluator words it
        num = frag("COALESCE('reported as ' || :op || ' ', '') || :num", op=col(op), num=num)
    shown_value = frag(":a || :num || :b", a=f"{name} ", num=num, b=unit_suffix(unit))
    observed = feature("o", node.concept)
    if observed in columns:
        # the source layer words the value itself (long data: '6.0 % on 2021-12-19', as the readers wrote it)
        shown_value = frag(":a || :pre || :o", a=f"{name} ", o=col(observed), pre=frag(
            "COALESCE('reported as ' || :op || ' ', '')", op=col(op)) if op in columns else lit(""))
    if relation is not None:
        # the part decided TRUE or FALSE, so its value is there: no test for a missing one
        return exp.DPipe(this=shown_value, expression=relation)
    unknown = frag("CASE WHEN :v IS NOT NULL THEN :shown WHEN :why IS NOT NULL THEN :a || :why ELSE :missing END",
                   v=col(v), shown=shown_value, a=f"{name} ", why=why, missing=f"{name} missing")
    if op in columns and node.canonical_unit != ULN:
        # a censored value the bound cannot decide (plan._numeric's wording)
        if isinstance(node, ir.Compare):
            tail = f" cannot be compared with {words.SYMBOL[node.op]} " \
                   f"{words.fmt_bound(node.canonical_value, node.canonical_unit)}"
        else:
            tail = ": cannot tell whether it is within the range"
        unknown = frag("CASE WHEN :v IS NOT NULL AND :op IS NOT NULL THEN :shown || :tail ELSE :rest END",
                       v=col(v), op=col(op), shown=shown_value.copy(), tail=tail, rest=unknown)
    return unknown


def _relation(node: ir.Compare | ir.Range, value: exp.Expression, holds: bool) -> exp.Expression | None:
    """' < 24.0 kg/m²': how a deciding value stands to its bound (as the Python evaluator words it)."""
    if node.canonical_unit == ULN or age_in_months(node):
        return None   # a per-patient bound, or completed months: the value text says enough
    if isinstance(node, ir.Compare):
        relation = words.SYMBOL[node.op] if holds else words.NEGATED[node.op]
        return lit(f" {relation} {words.bound_text(node.value, node.canonical_value, node.unit, node.canonical_unit)}")
    low = None if node.canonical_low is None else \
        words.bound_text(node.low, node.canonical_low, node.unit, node.canonical_unit)
    high = None if node.canonical_high is None else \
        words.bound_text(node.high, node.canonical_high, node.unit, node.canonical_unit)
    if holds:
        if low is not None and high is not None:
            span = f"{words.fmt_bound(node.canonical_low, node.canonical_unit)}–" \
                   f"{words.fmt_bound(node.canonical_high, node.canonical_unit)}{unit_suffix(display_unit(node.canonical_unit))}"
            return lit(f" within {span}")
        return lit(f" {'≥' if node.low_inclusive else '>'} {low}" if low is not None
                   else f" {'≤' if node.high_inclusive else '<'} {high}")
    below = lit(f" {'<' if node.low_inclusive else '≤'} {low}") if low is not None else None
    above = lit(f" {'>' if node.high_inclusive else '≥'} {high}") if high is not None else None
    if below is None or above is None:
        return below or above
    low_ok = compare(">=" if node.low_inclusive else ">", value, float(node.canonical_low))
    return exp.Case().when(exp.Not(this=exp.Paren(this=low_ok)), below, copy=False).else_(above, copy=False)


def _has_text(node: ir.Has, columns: set[str]) -> exp.Expression:
    key = "f_sex" if node.code in SEX_CODES else feature("h", f"{node.category}_{node.code}")
    if key not in columns:
        return lit(f"{node.label}: no data column")
    h = col(key)
    if key == "f_sex":
        return frag("'sex ' || COALESCE(:h, 'missing')", h=h)
    if "record_lists" in columns and node.category in ("condition", "status"):
        # records (OMOP, Synthea): the readers' wording (eligibility.evaluate.has); a status is TRUE
        # only for an open episode (which the readers record as a yes) and FALSE only for a sex it
        # cannot apply to
        if node.category == "status":
            sex = col("f_sex") if "f_sex" in columns else exp.null()
            return frag("CASE WHEN :h THEN :yes WHEN NOT :h THEN :no || COALESCE(:sex, '') || ')' ELSE :unk END", h=h,
                        sex=sex, yes=f"{node.label}: yes", no=f"{node.label}: not applicable (",
                        unk=f"{node.label} not recorded")
        listed = frag("CASE WHEN :h THEN :yes ELSE :no END", h=h, yes=f"{node.label} on the conditions list",
                      no=f"no {node.label} on the conditions list")
        duration = node.qualifiers.get("duration_at_least")
        key = f"{node.category}_{node.code}"
        if (node.within is None and duration is None) or feature("last", key) not in columns:
            return listed
        # the dates that decided it, as eligibility.evaluate.has._timed words them
        need = " and ".join(([f"within {words.duration_text(node.within)}"] if node.within else [])
                            + ([f"for at least {words.duration_text(duration)}"] if duration else []))
        kind, word = ("last", "last recorded") if node.within is not None else ("first", "since")
        when = col(feature(kind, key))
        dated = frag(":a || CAST(:at AS VARCHAR) || ' (' || CAST(:ago AS VARCHAR) || :b", a=f"{node.label} {word} ",
                     at=when, ago=col(feature("d" + kind, key)), b=f" days; needed: {need})")
        missing = lit(f"{node.label}: onset date not recorded (needed: {need})")
        return frag("CASE WHEN :h THEN :listed || '; ' || COALESCE(:dated, :missing) ELSE :listed END", h=h.copy(),
                    listed=listed, dated=dated, missing=missing)
    return frag("CASE WHEN :h THEN :yes WHEN NOT :h THEN :no ELSE :unk END", h=h,
                yes=f"{node.label}: yes", no=f"{node.label}: no", unk=f"{node.label}: missing")


def _holds(v: exp.Expression, want: str) -> exp.Expression:
    """TRUE when a compiled truth value is `want` ('T', 'F' or 'U'), never NULL."""
    v = exp.Paren(this=v.copy())
    if want == "U":
        return exp.Is(this=v, expression=exp.null())
    return exp.Coalesce(this=v if want == "T" else exp.Not(this=v), expressions=[exp.false()])


def criterion_detail(criterion: ir.Criterion, registry: Registry, columns: set[str], want: str) -> exp.Expression:
    """The parts that decided a criterion's value `want` ('F'/'T': it failed; 'U': unknown), as the Python
    evaluator names them: a FALSE `all` is explained by its FALSE children, a TRUE `any` by its TRUE
    children, an unknown one by its unknown children (each child's text only when its own value says so)."""
    compiler = NodeCompiler(registry, columns)
    pieces: list[exp.Expression] = []

    def add(text: exp.Expression, guard: list[exp.Expression]) -> None:
        pieces.append(exp.Case().when(exp.and_(*guard, copy=False), text, copy=False) if guard else text)

    def walk(node: ir.Tree, want: str, guard: list[exp.Expression]) -> None:
        if isinstance(node, ir.Not):
            walk(node.child, {"T": "F", "F": "T"}.get(want, want), guard)
        elif isinstance(node, (ir.All, ir.AnyOf)):
            absorbing = "F" if isinstance(node, ir.All) else "T"
            for child in node.children:
                if want in (absorbing, "U"):
                    walk(child, want, guard + [_holds(compiler.compile(child).v, want)])
                else:
                    walk(child, want, guard)
        elif isinstance(node, ir.Manual):
            if want == "U":
                add(lit(f"needs review: {words.manual_label(node.text)}"), guard)
        elif isinstance(node, ir.Has):
            add(_has_text(node, columns), guard + ([_holds(compiler.compile(node).v, want)] if node is not root else []))
        elif isinstance(node, (ir.Compare, ir.Range)):
            # a part that is TRUE or FALSE has its value (_relation leaves out the bounds that can be
            # NULL with a value there: a ULN, an age in months)
            relation = None if want == "U" else _relation(node, compiler.value(node.concept), want == "T")
            add(_numeric_text(node, criterion, registry, columns, relation),
                guard + ([_holds(compiler.compile(node).v, want)] if node is not root else []))

    # the criterion's outcome says what its whole tree is: a lone part needs no test of its own
    root = criterion.tree
    walk(root, want, [])
    if not pieces:
        return lit("no details")
    if len(pieces) == 1:
        return exp.Coalesce(this=pieces[0], expressions=[lit("no details")]) if isinstance(pieces[0], exp.Case) \
            else pieces[0]
    joined = exp.func("CONCAT_WS", lit("; "), *pieces, dialect="duckdb")
    return exp.Coalesce(this=exp.Nullif(this=joined, expression=lit("")), expressions=[lit("no details")])


def review_text(criterion: ir.Criterion) -> str:
    """What a reviewer has to decide: the manual parts and the conditions the data cannot check (a constant)."""
    notes = []
    for node in ir.walk(criterion.tree):
        if isinstance(node, ir.Manual):
            notes.append(words.manual_label(node.text))
        for name, duration in node.qualifiers.items():
            notes.append(words.qualifier_text(name, duration))
        if isinstance(node, ir.Has) and node.within is not None:
            notes.append(f"{node.label} within {node.within.value:g} {node.within.unit}: onset date not recorded")
    return "; ".join(dict.fromkeys(notes)) or "needs a reviewer"


def _dated_review_only(criterion: ir.Criterion, columns: set[str]) -> bool:
    """Whether the only parts that can need a reviewer are conditions dated by their records (long data)."""
    timed = False
    for node in ir.walk(criterion.tree):
        if isinstance(node, ir.Manual):
            return False
        quals = set(node.qualifiers) - ({"duration_at_least"} if isinstance(node, ir.Has) else set())
        if quals:
            return False
        if isinstance(node, ir.Has) and (node.within is not None or node.qualifiers):
            if node.category != "condition" or feature("last", f"{node.category}_{node.code}") not in columns:
                return False
            timed = True
    return timed


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


def reason(criterion: ir.Criterion, outcome: exp.Expression, registry: Registry, columns: set[str], *,
           fold: bool = False) -> exp.Expression:
    """`I3 fail: <deciding values>` / `I3 unknown: <unknown parts>` for a criterion that did not pass,
    `I7 review: <what to decide>` (a literal) for one a person must decide."""
    failing = "F" if criterion.section == "inclusion" else "T"
    fail_detail = criterion_detail(criterion, registry, columns, failing)
    unknown_detail = criterion_detail(criterion, registry, columns, "U")
    review = lit(f"{criterion.id} review: {review_text(criterion)}")
    if _dated_review_only(criterion, columns):
        # review comes only from a condition's missing record date: the parts that left it open, as in Python
        review = exp.DPipe(this=lit(f"{criterion.id} review: "), expression=unknown_detail.copy())
    case = exp.Case()
    decision = feature("d", criterion.id)
    if decision in columns:
        # a reviewer's pass/fail column decides the outcome: the values do not explain it (as in Python)
        case = case.when(exp.EQ(this=col(decision), expression=lit("fail")),
                         lit(f"{criterion.id} fail: reviewer decision (column {criterion.id})"), copy=False)
    case = case.when(exp.EQ(this=outcome.copy(), expression=lit("review")), review, copy=False)
    if fold:
        # DuckDB: the prefixes joined, at compile time, to the details' leading literals
        return (case.when(exp.EQ(this=outcome.copy(), expression=lit("fail")),
                          _prefixed(f"{criterion.id} fail: ", fail_detail), copy=False)
                .when(exp.NEQ(this=outcome.copy(), expression=lit("pass")),
                      _prefixed(f"{criterion.id} unknown: ", unknown_detail), copy=False))
    return (case.when(exp.EQ(this=outcome.copy(), expression=lit("fail")),
                      exp.DPipe(this=lit(f"{criterion.id} fail: "), expression=fail_detail), copy=False)
            .when(exp.NEQ(this=outcome.copy(), expression=lit("pass")),
                  exp.DPipe(this=lit(f"{criterion.id} unknown: "), expression=unknown_detail), copy=False))
