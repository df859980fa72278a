"""Criteria trees -> one SQL query (the columnar engine).

The query has three layers, each a CTE:

1. a *source* layer chosen by the schema (eligibility.sql.wide for one row per
   patient, eligibility.sql.omop for OMOP CDM tables) that yields one row per
   patient with *feature* columns in canonical units:
   ``v_<concept>`` value (DOUBLE, NULL when missing or unusable),
   ``r_<concept>`` why a present value was unusable, ``uln_<concept>`` the
   patient's upper limit of normal, ``h_<category>`` TRUE/FALSE/NULL for a
   condition, drug class or status, ``d_<criterion>`` a reviewer's decision;
2. ``outcomes``: one column per criterion holding pass/fail/unknown/review.
   SQL's NULL logic *is* the three-valued logic: an atom is a boolean or NULL,
   AND/OR/NOT are Kleene already.  Whether a NULL is due to a manual part
   (-> review) or to missing data (-> unknown) is tracked by a second boolean
   expression built alongside the first;
3. the final SELECT: patient_id, verdict, reasons, criterion columns (DESIGN §8).

Everything is built as sqlglot expressions in one dialect-neutral tree and
rendered with sqlglot for the requested dialect; thresholds are literals fixed
at compile time.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlglot import exp

from eligibility.core import ir
from eligibility.registry.concepts import Registry, default_registry
from eligibility.sql.nodes import DIALECTS, Cond, NodeCompiler, col, feature, frag, lit, trial_needs
from eligibility.sql.omop import omop_source
from eligibility.sql.reasons import reason as criterion_reason
from eligibility.sql.wide import default_header, wide_source


# -- per-criterion outcome (explanations: eligibility.sql.reasons) ---------------
def outcome_expr(criterion: ir.Criterion, cond: Cond, decision: exp.Expression | None) -> exp.Expression:
    yes, no = ("pass", "fail") if criterion.section == "inclusion" else ("fail", "pass")
    v = exp.Paren(this=cond.v)
    case = exp.Case()
    if decision is not None:
        case = case.when(exp.Not(this=exp.Is(this=decision, expression=exp.null())), decision, copy=False)
    case = case.when(v, lit(yes), copy=False).when(exp.Not(this=v), lit(no), copy=False)
    if cond.m is not None:
        case = case.when(exp.Paren(this=cond.m), lit("review"), copy=False)
    return case.else_(lit("unknown"), copy=False)


# -- assembling the query -----------------------------------------------------------
def outcomes_select(trial: ir.Trial, source: exp.Select, columns: set[str], registry: Registry) -> exp.Select:
    """SELECT patient_id, [_row,] one outcome column per criterion, one detail column per criterion."""
    compiler = NodeCompiler(registry, columns)
    select = exp.select(exp.Star())   # features pass through for the explanations
    # each criterion's truth value (and its review flag) is computed once, one layer down:
    # the outcome CASE asks it up to three times
    truths = exp.select(exp.Star())
    for n, criterion in enumerate(trial.criteria):
        d = feature("d", criterion.id)
        cond = compiler.compile(criterion.tree)
        if not isinstance(cond.v, (exp.Column, exp.Boolean, exp.Cast)):
            truths = truths.select(exp.alias_(cond.v, f"_b{n}", quoted=True, copy=False), copy=False)
            cond = Cond(col(f"_b{n}"), cond.m)
        if cond.m is not None and not isinstance(cond.m, (exp.Column, exp.Boolean)):
            truths = truths.select(exp.alias_(cond.m, f"_m{n}", quoted=True, copy=False), copy=False)
            cond = Cond(cond.v, col(f"_m{n}"))
        outcome = outcome_expr(criterion, cond, col(d) if d in columns else None)
        select = select.select(exp.alias_(outcome, criterion.id, quoted=True), copy=False)
    inner = exp.Paren(this=source)
    if len(truths.expressions) > 1:
        inner = exp.Paren(this=truths.from_(exp.alias_(inner, "features", copy=False), copy=False))
    return select.from_(exp.alias_(inner, "truths" if len(truths.expressions) > 1 else "features", copy=False), copy=False)


def final_select(trial: ir.Trial, outcomes: exp.Select, registry: Registry, columns: set[str], *, order: bool,
                 deceased: bool = False, fold: bool = False,
                 explained_only: dict[str, exp.Expression] | None = None) -> exp.Select:
    ids = [c.id for c in trial.criteria]
    oc = {i: col(i) for i in ids}
    any_fail = exp.or_(*[exp.EQ(this=oc[i], expression=lit("fail")) for i in ids], copy=False) if ids else exp.false()
    all_pass = exp.and_(*[exp.EQ(this=oc[i], expression=lit("pass")) for i in ids], copy=False) if ids else exp.true()
    verdict = exp.Case().when(any_fail, lit("ineligible"), copy=False).when(all_pass, lit("eligible"), copy=False).else_(lit("needs_review"), copy=False)
    # the explanation is built only for rows where the criterion did not pass (CASE evaluates lazily)
    reasons = [criterion_reason(c, oc[c.id], registry, columns, fold=fold) for c in trial.criteria]
    if explained_only:
        # features only explanations read (DuckDB source layer): their expressions go into the
        # explanation, which is evaluated only for the criteria that did not pass
        reasons = [r.transform(lambda node: explained_only[node.name].copy()
                               if isinstance(node, exp.Column) and node.name in explained_only else node)
                   for r in reasons]
    if deceased:
        verdict = exp.Case().when(col("deceased"), lit("ineligible"), copy=False).else_(verdict, copy=False)
        on = frag("COALESCE(' ' || :day, '')", day=col("deceased_on")) if "deceased_on" in columns else lit("")
        reasons.insert(0, frag("CASE WHEN :d THEN 'deceased' || :day END", d=col("deceased"), day=on))
    reason = exp.func("CONCAT_WS", lit("; "), *reasons, dialect="duckdb") if reasons else lit("")
    select = exp.select(col("patient_id"), exp.alias_(verdict, "verdict", copy=False),
                        exp.alias_(exp.Coalesce(this=reason, expressions=[lit("")]), "reasons", copy=False),
                        *[oc[i] for i in ids]).from_(exp.alias_(exp.Paren(this=outcomes), "outcomes", copy=False), copy=False)
    if order:
        select = select.order_by(col("_row"), copy=False)
    return select


def screening_query(trial: ir.Trial, source: exp.Select, columns: Iterable[str], *,
                    registry: Registry | None = None, order: bool = False, fold: bool = False) -> exp.Select:
    """`fold` (the DuckDB engine): explanation prefixes joined to the details at compile time."""
    registry = registry or default_registry()
    columns = set(columns)
    return final_select(trial, outcomes_select(trial, source, columns, registry), registry, columns,
                        order=order and "_row" in columns, deceased="deceased" in columns, fold=fold,
                        explained_only=source.meta.get("explained_only"))


def render(query: exp.Expression, dialect: str) -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (expected one of {', '.join(DIALECTS)})")
    if dialect == "spark":
        # Spark evaluates a CAST hoisted out of its guarding CASE (common subexpressions), and
        # under ANSI mode (Spark 4's default) a malformed cell would then fail the whole query.
        # TRY_CAST gives the same value wherever the guard holds and NULL where it does not.
        query = query.transform(lambda node: exp.TryCast(this=node.this, to=node.to, safe=True)
                                if type(node) is exp.Cast and not node.args.get("safe") else node)
    if dialect == "postgres":
        # PostgreSQL pulls simple subqueries up into the query above and substitutes each column's
        # expression wherever it is referenced: layered on each other, the layers multiply (an age in
        # months is referenced a dozen times, each reference expanding the birth-date parse).
        # OFFSET 0 is its documented fence against that: each layer is computed once.
        query = query.transform(lambda node: node.offset(0, copy=False)
                                if isinstance(node, exp.Select) and node.parent is not None
                                and not node.args.get("offset") and not node.args.get("limit") else node)
    if dialect == "snowflake":
        # Snowflake's REGEXP_LIKE "implicitly anchors a pattern at both ends"
        # (docs.snowflake.com/en/sql-reference/functions/regexp): a search for a pattern anywhere in
        # the text, as DuckDB's REGEXP_MATCHES does, is REGEXP_INSTR(...) > 0 (0: no match)
        query = query.transform(lambda node: exp.GT(this=exp.RegexpInstr(this=node.this, expression=node.expression),
                                                    expression=exp.Literal.number(0))
                                if isinstance(node, exp.RegexpLike) and not node.args.get("flag") else node)
    if dialect in ("bigquery", "snowflake"):
        query = query.copy()
        # innermost first: a replaced node's pieces are not walked again
        for node in reversed(list(query.find_all(exp.ConcatWs))):
            node.replace(_array_join(node, dialect))
    return query.sql(dialect=dialect, pretty=True)


def _array_join(node: exp.ConcatWs, dialect: str) -> exp.Expression:
    """CONCAT_WS(sep, a, b, ...) where the dialect's does not skip NULL pieces.

    DuckDB, PostgreSQL, Spark and SQL Server skip them.  BigQuery has no CONCAT_WS, and
    Snowflake's returns NULL when a piece is NULL ("Unlike some implementations ... doesn't skip
    NULL values", docs.snowflake.com/en/sql-reference/functions/concat_ws); sqlglot pads each piece
    with COALESCE(x, ''), which leaves empty pieces between separators ('; ; I2 fail: ...').
    ARRAY_TO_STRING skips NULL elements in BigQuery (without null_text, "the function omits the NULL
    value and its preceding delimiter", GoogleSQL array functions); Snowflake's turns them into
    empty strings, so its array is built with ARRAY_CONSTRUCT_COMPACT, which leaves NULLs out.
    """
    sep, *pieces = node.expressions
    array = exp.Array(expressions=pieces) if dialect == "bigquery" else \
        exp.Anonymous(this="ARRAY_CONSTRUCT_COMPACT", expressions=pieces)
    return exp.ArrayToString(this=array, expression=sep)


def trial_to_sql(trial: ir.Trial, *, dialect: str = "duckdb", schema: str = "wide", table: str | None = None,
                 as_of: date, lookback_days: int = 365, registry: Registry | None = None,
                 header: list[str] | None = None, condition_map: bool = False) -> str:
    """One query screening a warehouse table (schema 'wide') or OMOP CDM 5.4 tables (schema 'omop').

    For 'wide', `header` names the table's columns (as in a wide CSV: concept
    names or synonyms, units in brackets); without it the table is assumed to
    have one column per concept id in canonical units plus patient_id, age,
    sex, conditions, medications, the status ids and `<concept>_uln` (see
    eligibility.sql.wide.default_header).  For 'omop', `table` is an optional
    schema prefix such as `cdm`.
    """
    registry = registry or default_registry()
    needs = trial_needs(trial)
    if schema == "wide":
        head = header if header is not None else default_header(needs, registry)
        source, columns = wide_source(exp.to_table(table or "patients"), head, needs, registry=registry, as_of=as_of)
    elif schema == "omop":
        source, columns = omop_source(needs, registry=registry, as_of=as_of, lookback_days=lookback_days,
                                      schema_prefix=table, condition_map=condition_map)
    else:
        raise ValueError(f"unknown schema {schema!r} (expected wide or omop)")
    return render(screening_query(trial, source, columns, registry=registry, order=False), dialect)
