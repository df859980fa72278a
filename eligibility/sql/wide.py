"""Source layer for one-row-per-patient data: a wide CSV, or a warehouse table with the same columns.

Headers are classified at compile time with the wide-CSV reader's own rules
(eligibility.readers.wide_cells, docs/patient-data.md §2); every cell is read
as text and parsed in SQL (eligibility.sql.cells).  The result is a SELECT of
the feature columns eligibility.sql.query expects, built in layers (trimmed
cells -> number parts -> values -> features) so no cell is parsed twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlglot import exp

from eligibility.evaluate import category_rules as cr
from eligibility.sql import cells as sc
from eligibility.readers import wide_cells as wc
from eligibility.registry.concepts import Registry
from eligibility.sql.nodes import Needs, col, feature, frag, lit


@dataclass(frozen=True)
class Column:
    name: str            # as in the header
    role: str            # id decision birth death death_flag sex conditions medications uln duration concept category
    key: str = ""        # concept / category / criterion id
    unit: str | None = None
    index: int = 0       # position in the header


def classify(header: list[str], registry: Registry) -> list[Column]:
    """What each header names, in the reader's order of rules; unknown and ambiguous columns are left out."""
    keys = [wc.header_key(h) for h in header]
    id_index = next((keys.index(k) for k in wc.ID_KEYS if k in keys), None)
    if id_index is None:
        raise ValueError("no patient id column (patient_id, id, subject_id, person_id, participant_id, mrn)")
    vocab = wc.vocabulary(registry)
    out = [Column(header[id_index], "id", index=id_index)]
    for index, name in enumerate(header):
        key = keys[index]
        if index == id_index:
            continue
        if criterion := wc.decision_id(name):
            out.append(Column(name, "decision", criterion, index=index))
        elif key in wc.BIRTH_KEYS:
            out.append(Column(name, "birth", index=index))
        elif key in wc.DEATH_DATE_KEYS or key in wc.DEATH_FLAG_KEYS:
            out.append(Column(name, "death_flag" if key in wc.DEATH_FLAG_KEYS else "death", index=index))
        elif key in wc.SEX_KEYS:
            out.append(Column(name, "sex", index=index))
        elif key in wc.CONDITION_LIST_KEYS:
            out.append(Column(name, "conditions", index=index))
        elif key in wc.MEDICATION_LIST_KEYS:
            out.append(Column(name, "medications", index=index))
        else:
            out += [Column(c.name, c.role, c.key, c.unit, index) for c in _measure(name, key, registry, vocab)]
    return out


def _measure(name: str, key: str, registry: Registry, vocab: wc.Vocabulary) -> list[Column]:
    base, unit = wc.name_and_unit(name, vocab, registry)
    base_key = wc.header_key(base)
    if base_key.endswith("uln") and len(vocab.concepts.get(base_key[:-3], ())) == 1:
        return [Column(name, "uln", vocab.concepts[base_key[:-3]][0], unit)]
    if derived := wc.duration_concept(base, vocab):
        return [Column(name, "duration", derived)]
    candidates = vocab.concepts.get(base_key, ())
    if len(candidates) > 1:
        exact = [c for c in candidates if wc.header_key(c) == base_key]
        fitting = [c for c in candidates if not isinstance(wc._conversion(registry, c, unit), str)] if unit else exact
        if len(fitting) != 1:
            return []    # ambiguous: the reader ignores it too
        candidates = tuple(fitting)
    if candidates:
        return [Column(name, "concept", candidates[0], unit)]
    if base_key in vocab.categories:
        return [Column(name, "category", vocab.categories[base_key])]
    return []


def default_header(needs: Needs, registry: Registry) -> list[str]:
    """Columns assumed for a warehouse table when none are given: concept ids in canonical units."""
    head = ["patient_id", "sex"] if needs.sex else ["patient_id"]
    head += sorted(needs.concepts) + [f"{c}_uln" for c in sorted(needs.uln)]
    kinds = {rule for rule, _code in needs.categories}
    head += ["conditions"] if kinds & {"condition", "status"} else []
    head += ["medications"] if "medication" in kinds else []
    # statuses get their own yes/no column (a diagnosis list cannot say "not pregnant")
    return head + sorted({code for rule, code in needs.categories if rule == "status"})


def _layer(inner: exp.Select, alias: str, extra: list[exp.Expression]) -> exp.Select:
    return exp.select(exp.Star(), *extra).from_(exp.alias_(exp.Paren(this=inner), alias, copy=False), copy=False) if extra else inner


def _first_non_null(exprs: list[exp.Expression]) -> exp.Expression:
    return exprs[0] if len(exprs) == 1 else exp.Coalesce(this=exprs[0], expressions=exprs[1:])


def wide_source(table: exp.Expression, header: list[str], needs: Needs, *, registry: Registry, as_of: date,
                row_column: str | None = None, names: list[str] | None = None,
                fast: bool = False) -> tuple[exp.Select, list[str]]:
    """SELECT of feature columns over `table`; returns (select, feature names).

    `header` is the table's header as the data gives it (what the columns mean);
    `names` the SQL column names in the same order when they differ (c0, c1, ...).
    """
    columns = classify(header, registry)
    sql_name = (lambda c: names[c.index]) if names is not None else (lambda c: c.name)
    cells = [exp.alias_(sc.text(sql_name(columns[0])), "patient_id", quoted=True, copy=False)]
    if row_column:
        cells.append(exp.alias_(col(row_column), "_row", quoted=True, copy=False))
    stems: dict[int, str] = {}
    parts: list[exp.Expression] = []
    typed: list[exp.Expression] = []      # layer 1: each cell's plain number (DuckDB) and date, computed once
    values: list[exp.Expression] = []
    feats: list[exp.Expression] = [col("patient_id")] + ([col("_row")] if row_column else [])
    fnames = ["patient_id"] + (["_row"] if row_column else [])

    def t(c: Column) -> exp.Column:
        # keyed by position: a header may repeat a name
        if c.index not in stems:
            stems[c.index] = f"t{len(stems)}"
            cells.append(exp.alias_(sc.text(sql_name(c)), stems[c.index], quoted=True, copy=False))
        return col(stems[c.index])

    def u(c: Column) -> exp.Column:
        """DuckDB: the cell as read, untrimmed (numeric cells: TRY_CAST ignores surrounding spaces,
        and only cells that are not plain numbers are trimmed, inside the branches that read them)."""
        name = f"u{c.index}"
        if not any(e.alias == name for e in cells):
            cells.append(exp.alias_(exp.cast(col(sql_name(c)), "VARCHAR", copy=False), name, quoted=True, copy=False))
        return col(name)

    raws: list[exp.Expression] = []       # layer 2: canonical numbers before the plausibility check
    units: list[exp.Expression] = []      # DuckDB: folded unit of a cell that is not a plain number

    def typed_col(c: Column, kind: str, make) -> exp.Column:
        name = f"{t(c).name}_{kind}"
        if not any(e.alias == name for e in typed):
            typed.append(exp.alias_(make(t(c)), name, quoted=True, copy=False))
        return col(name)

    def day(c: Column) -> exp.Column:
        return typed_col(c, "date", sc.fast_date if fast else sc.iso_date)

    def number(c: Column, concept: str) -> tuple[exp.Expression, exp.Expression]:
        if fast:
            return fast_number(c, concept)
        stem = t(c).name
        if not any(p.alias == f"{stem}_num" for p in parts):
            parts.extend(exp.alias_(e, f"{stem}_{k}", quoted=True, copy=False) for k, e in sc.number_parts(t(c)).items())
        raw, why = sc.numeric(t(c), col(f"{stem}_num"), col(f"{stem}_unit"), concept, c.unit, registry)
        key = f"{stem}_{concept}"
        if not any(r.alias == f"{key}_raw" for r in raws):
            raws.extend([exp.alias_(raw, f"{key}_raw", quoted=True, copy=False), exp.alias_(why, f"{key}_why", quoted=True, copy=False)])
        return sc.plausible(col(f"{key}_raw"), col(f"{key}_why"), concept, registry)

    def fast_number(c: Column, concept: str) -> tuple[exp.Expression, exp.Expression]:
        """DuckDB: (value, why).  A plain number (most cells) is converted straight from TRY_CAST;
        only the other cells are trimmed and split into number and unit, each step a column
        guarded by `x IS NULL`.  `why` is only ever evaluated inside an explanation."""
        cell = u(c)
        stem = cell.name
        header = wc._conversion(registry, concept, c.unit)
        x = col(f"{stem}_x")
        usable = not isinstance(header, str)
        if usable and not any(e.alias == x.name for e in typed):
            typed.append(exp.alias_(sc.fast_value(cell), x.name, quoted=True, copy=False))
        number, unit = col(f"{stem}_num"), col(f"{stem}_unit")
        if not any(p.alias == number.name for p in parts):
            text = sc.number_text(exp.Trim(this=cell.copy()))
            guarded = exp.Case().when(exp.Is(this=x.copy(), expression=exp.null()), text, copy=False) if usable else text
            parts.append(exp.alias_(guarded, number.name, quoted=True, copy=False))
            # guarded: string functions cost even on the NULLs of the plain-number rows
            folded = exp.Case().when(exp.Not(this=exp.Is(this=number.copy(), expression=exp.null())),
                                     sc.unit_text(exp.Trim(this=cell.copy()), number.copy()), copy=False)
            units.append(exp.alias_(folded, unit.name, quoted=True, copy=False))
        raw, why = sc.numeric(exp.Trim(this=cell.copy()), number, unit, concept, c.unit, registry,
                              x if usable else None)
        key = f"{stem}_{concept}_raw"
        if not any(r.alias == key for r in raws):
            raws.append(exp.alias_(raw, key, quoted=True, copy=False))
        return sc.plausible(col(key), why, concept, registry)

    lazy: dict[str, exp.Expression] = {}

    def keep(name: str, expr: exp.Expression, explained_only: bool = False) -> None:
        """A feature column; `explained_only` (DuckDB): one only explanations read, so no column is
        computed for every row: screening_query writes the expression into the explanation itself."""
        if explained_only:
            lazy[name] = expr
        else:
            values.append(exp.alias_(expr, name, quoted=True, copy=False))
            feats.append(col(name))
        fnames.append(name)

    def of(role: str, key: str | None = None) -> list[Column]:
        return [c for c in columns if c.role == role and (key is None or c.key == key)]

    for concept in sorted(needs.concepts):
        found = [number(c, concept) for c in of("concept", concept)]
        vals, whys = [v for v, _r in found], [r for _v, r in found]
        for c in of("duration", concept):
            when = day(c)
            ok = exp.LTE(this=when, expression=exp.cast(lit(as_of.isoformat()), "DATE", copy=False))
            vals.append(exp.Case().when(ok, exp.Div(this=exp.cast(sc.days_between(when, as_of), "DOUBLE", copy=False),
                                                    expression=lit(365.25)), copy=False))
            whys.append(exp.Case().when(exp.and_(sc.present(t(c)), exp.not_(ok, copy=False)),
                                        frag("'''' || :t || ''' is not a date on or before the as-of date'", t=t(c)), copy=False))
        if not vals and not (concept == "age" and of("birth")):
            continue
        value = _first_non_null(vals) if vals else exp.null()
        # DuckDB: the reason is built inside the explanation, after the value (a column by then)
        value_ref = col(feature("v", concept)) if fast else value
        why = exp.Case().when(exp.Is(this=value_ref, expression=exp.null()), _first_non_null(whys), copy=False) if whys else exp.null()
        if concept == "age" and (births := of("birth")):
            b = t(births[0])
            born = day(births[0])
            # a valid birth date wins; one after the as-of date or not a date makes the age unusable,
            # except that a stated age still counts when the birth date is not a date
            after = exp.GT(this=born, expression=exp.cast(lit(as_of.isoformat()), "DATE", copy=False))
            value = (exp.Case().when(after, exp.null(), copy=False)
                     .when(exp.Not(this=exp.Is(this=born, expression=exp.null())),
                           exp.cast(sc.completed_years(born, as_of), "DOUBLE", copy=False), copy=False).else_(value, copy=False))
            why = (exp.Case().when(after, frag("'birth date ' || :b || ' is after the as-of date'", b=b), copy=False)
                   .when(exp.and_(sc.present(b), exp.Is(this=born, expression=exp.null()), exp.Is(this=value_ref, expression=exp.null())),
                         frag("'birth date ''' || :b || ''' is not a date'", b=b), copy=False).else_(why, copy=False))
        keep(feature("v", concept), value)
        if concept == "age" and needs.age_months:
            # from a valid birth date on or before the as-of date (docs/patient-data.md "Age"), as years:
            # completed months / 12 for bounds in months, days lived / 365.25 for bounds in days or weeks
            for name, count, per_year in (("m_age", sc.completed_months, 12.0), ("day_age", sc.days_between, 365.25)):
                since = exp.null()
                if births := of("birth"):
                    born = day(births[0])
                    since = exp.Case().when(exp.LTE(this=born, expression=exp.cast(lit(as_of.isoformat()), "DATE", copy=False)),
                                            exp.Div(this=exp.cast(count(born.copy(), as_of), "DOUBLE", copy=False),
                                                    expression=lit(per_year)), copy=False)
                keep(name, since)
        # (kept in the same layer as the value: PostgreSQL inlines a column's expression into every
        # reference above it, so a reason built on the value one layer up multiplies the query)
        keep(feature("r", concept), why, explained_only=fast)
        if fast and len(own := of("concept", concept)) == 1 and len(vals) == 1 and not (concept == "age" and of("birth")):
            # DuckDB: a plain number in the canonical unit is shown as written, which spares
            # formatting a double per explanation (the value is that number: x = TRY_CAST(cell))
            conv = wc._conversion(registry, concept, own[0].unit)
            if not isinstance(conv, str) and conv.scale == 1.0 and conv.offset == 0.0:
                # untrimmed: the explanation trims it, for the few rows that are explained
                shown = exp.Case().when(exp.Not(this=exp.Is(this=col(f"{u(own[0]).name}_x"), expression=exp.null())),
                                        u(own[0]), copy=False)
                keep(feature("s", concept), shown, explained_only=True)
    for concept in sorted(needs.uln):
        ulns = [number(c, concept)[0] for c in of("uln", concept)]
        if ulns:
            keep(feature("uln", concept), _first_non_null(ulns[::-1]))   # the reader keeps the last one
    if needs.sex and (sexes := of("sex")):
        low = exp.Lower(this=t(sexes[-1]))
        keep("f_sex", exp.Case().when(sc._in(low, wc.FEMALE), lit("female"), copy=False).when(sc._in(low, wc.MALE), lit("male"), copy=False))

    def lowered(c: Column) -> exp.Expression:
        # DuckDB: a list cell is lowered and checked for content once, not once per drug class
        return typed_col(c, "low", lambda cell: exp.Lower(this=cell)) if fast else exp.Lower(this=t(c))

    def has_content(c: Column) -> exp.Expression:
        return typed_col(c, "known", sc.list_known) if fast else sc.list_known(t(c))

    groups: dict[tuple[int, str], exp.Column] = {}

    def lists_group(c: Column, pattern: str) -> exp.Expression:
        """The cell lists a drug group (`oral antidiabetics`); DuckDB: one column per (cell, group), as
        several classes share a group and each would otherwise run the same regex per row."""
        test = exp.and_(has_content(c), exp.RegexpLike(this=lowered(c), expression=lit(pattern)), copy=False)
        if not fast:
            return test
        if (c.index, pattern) not in groups:
            groups[(c.index, pattern)] = col(f"{t(c).name}_group{len(groups)}")
            parts.append(exp.alias_(test, groups[(c.index, pattern)].name, quoted=True, copy=False))
        return groups[(c.index, pattern)].copy()

    for rule, code in sorted(needs.categories):
        keep_category(rule, code, registry, of, t, keep, lowered, has_content, lists_group)
    deaths = [(c, day(c)) for c in of("death") + of("death_flag")]
    if deaths:
        died = [exp.or_(exp.LTE(this=d, expression=exp.cast(lit(as_of.isoformat()), "DATE", copy=False)),
                        exp.EQ(this=sc.yes_no(t(c)), expression=exp.true()) if c.role == "death_flag" else exp.false(), copy=False)
                for c, d in deaths]
        keep("deceased", exp.Coalesce(this=exp.or_(*died, copy=False), expressions=[exp.false()]))
    for cid in needs.decisions:
        if decided := of("decision", cid.upper()):
            low = exp.Lower(this=t(decided[-1]))
            keep(feature("d", cid), exp.Case().when(sc._in(low, ("pass", "fail")), low, copy=False))
    layer0 = exp.select(*cells).from_(table, copy=False)
    layered = _layer(_layer(_layer(_layer(_layer(layer0, "cells", typed), "typed", parts), "parts", units), "units", raws),
                     "raws", values)
    # the columns the explanation-only expressions read travel up with the features
    shown = {c.name for c in feats}
    for expr in lazy.values():
        for ref in expr.find_all(exp.Column):
            if ref.name not in shown and ref.name not in lazy:
                shown.add(ref.name)
                feats.append(col(ref.name))
    # Explicit feature columns: PostgreSQL pulls simple subqueries up and substitutes each
    # column's expression wherever it is referenced, so what goes up must stay small.
    select = exp.select(*feats).from_(exp.alias_(exp.Paren(this=layered), "parsed", copy=False), copy=False)
    select.meta["explained_only"] = lazy
    return select, fnames


def keep_category(rule, code, registry, of, t, keep, lowered, has_content, lists_group) -> None:
    """h_<rule>_<code>: a yes/no column for the code decides; else the list (status rule: TRUE or unknown),
    a sex the registry's `sexes` excludes (FALSE), a listed broader drug group (unknown); docs/patient-data.md §4."""
    own = of("category", code)
    pattern = sc.list_pattern(rule, code, registry)
    from_list: exp.Expression | None = None
    if pattern is not None and (lists := of(pattern[0])):
        matches = [exp.and_(has_content(c), exp.RegexpLike(this=lowered(c), expression=lit(pattern[1])), copy=False)
                   for c in lists]
        known = exp.or_(*[has_content(c) for c in lists], copy=False)
        listed = exp.or_(*[exp.Coalesce(this=exp.Paren(this=m), expressions=[exp.false()]) for m in matches], copy=False)
        status = rule == "status"
        from_list = exp.Case().when(listed, exp.true(), copy=False)
        if rule == "medication" and (broad := cr.broad_pattern(code, cr.drug_rule(registry, code)[0], registry)):
            # a listed group containing the class (A10B for DPP-4 inhibitors): unknown, not FALSE
            wide = [lists_group(c, broad) for c in lists]
            from_list = from_list.when(exp.or_(*[exp.Coalesce(this=exp.Paren(this=w), expressions=[exp.false()]) for w in wide],
                                               copy=False), exp.null(), copy=False)
        from_list = from_list.when(exp.and_(known, exp.not_(lit(status), copy=False)), exp.false(), copy=False)
    if rule != "medication" and (excluded := cr.other_sexes(registry.categories.get(code))) and (sexes := of("sex")):
        # a known sex the category cannot apply to is FALSE, after a list that names it (explicit data wins)
        words = frozenset().union(*(wc.FEMALE if s == "female" else wc.MALE for s in excluded))
        other = exp.Case().when(sc._in(exp.Lower(this=t(sexes[-1])), words), exp.false(), copy=False)
        if from_list is None:
            from_list = other
        else:
            ifs = from_list.args["ifs"]
            from_list.set("ifs", ifs[:1] + other.args["ifs"] + ifs[1:])
    if own:
        cell = t(own[-1])
        decided = exp.Case().when(sc.present(cell), sc.yes_no(cell), copy=False)
        if from_list is not None:
            decided = decided.else_(from_list, copy=False)
        keep(feature("h", f"{rule}_{code}"), decided)
    elif from_list is not None:
        keep(feature("h", f"{rule}_{code}"), from_list)
