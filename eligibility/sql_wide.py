"""Source layer for one-row-per-patient data (a wide CSV or a warehouse table with its columns).

Every cell is read as text and parsed in SQL with the wide-CSV reader's rules
(docs/patient-data.md): missing tokens, plain numbers in the header's unit (or
the canonical unit), numbers with their own unit (a CASE per known spelling
with the affine conversion from eligibility.units, chosen at compile time),
unusable values -> NULL plus a reason, plausibility ranges, yes/no statuses,
`;`-separated condition and medication lists matched to registry codes, and
birth dates -> completed years at the as-of date.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlglot import exp

from .errors import UnitError
from .registry import Registry, normalize_phrase
from .sqlgen import Needs, col, feature, frag, lit
from .units import conversion, normalize_unit

MISSING = ("", "na", "n/a", "null", "unknown", "-")
YES = ("yes", "y", "true", "t", "1")
NO = ("no", "n", "false", "f", "0")
NUMBER = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)"
ID_NAMES = ("patient_id", "patient id", "patientid", "id", "subject_id", "subject id", "subjectid",
            "subject", "person_id", "participant_id", "mrn")
BIRTH_NAMES = ("birth_date", "birthdate", "date_of_birth", "dob", "birth date", "date of birth")
SEX_NAMES = ("sex", "gender")
CONDITION_LISTS = ("conditions", "diagnoses", "condition", "diagnosis", "comorbidities", "problems")
MEDICATION_LISTS = ("medications", "medication", "meds", "drugs", "current_medications", "current medications")
# `(unit)` or `[unit]` at the end of a header
_HEADER_UNIT = re.compile(r"^(.*?)\s*[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*$")
# characters a unit may be written with that the SQL side folds like normalize_unit
_FOLD = (("μ", "µ"), ("²", "2"), ("³", "3"), ("⁹", "9"), ("％", "%"), ("×", "x"))


@dataclass(frozen=True)
class Column:
    name: str            # as in the header
    role: str            # id concept uln birth_date sex conditions medications category decision other
    key: str = ""        # concept / category / criterion id
    unit: str | None = None


def header_key(name: str) -> str:
    return normalize_phrase(re.sub(r"[_\s]+", " ", name.replace("\ufeff", "")))


def _concept_for(phrase: str, unit: str | None, registry: Registry) -> str | None:
    candidates = registry.concept_synonyms.get(phrase, ())
    for concept in candidates:
        if unit is None or _fits(concept, unit, registry):
            return concept
    return None


def _fits(concept: str, unit: str, registry: Registry) -> bool:
    try:
        conversion(concept, unit, registry)
    except UnitError:
        return False
    return True


def classify(header: list[str], registry: Registry, criterion_ids: list[str] = ()) -> list[Column]:
    """What each header names (first id-like column is the patient id)."""
    out: list[Column] = []
    ids = {c.lower(): c for c in criterion_ids}
    have_id = False
    for name in header:
        key = header_key(name)
        if not have_id and key in {header_key(n) for n in ID_NAMES}:
            have_id = True
            out.append(Column(name, "id"))
        elif name.strip().lower() in ids and name.strip().lower() not in ("age", "sex"):
            out.append(Column(name, "decision", ids[name.strip().lower()]))
        elif key in {header_key(n) for n in BIRTH_NAMES}:
            out.append(Column(name, "birth_date"))
        elif key in SEX_NAMES:
            out.append(Column(name, "sex"))
        elif key in {header_key(n) for n in CONDITION_LISTS}:
            out.append(Column(name, "conditions"))
        elif key in {header_key(n) for n in MEDICATION_LISTS}:
            out.append(Column(name, "medications"))
        elif key.endswith(" uln") and _concept_for(key[:-4], None, registry):
            out.append(Column(name, "uln", _concept_for(key[:-4], None, registry)))
        elif _concept_for(key, None, registry):
            out.append(Column(name, "concept", _concept_for(key, None, registry)))
        elif (m := _HEADER_UNIT.match(name)) and _concept_for(header_key(m.group(1)), m.group(2), registry):
            out.append(Column(name, "concept", _concept_for(header_key(m.group(1)), m.group(2), registry),
                              m.group(2)))
        elif key in registry.category_synonyms:
            out.append(Column(name, "category", registry.category_synonyms[key]))
        else:
            out.append(Column(name, "other"))
    if not have_id:
        raise ValueError("no patient id column (patient_id, id, subject_id, ...)")
    return out


def default_header(needs: Needs, registry: Registry) -> list[str]:
    """Columns assumed for a warehouse table when none are given: concept ids in canonical units."""
    head = ["patient_id", "sex"] if needs.sex else ["patient_id"]
    head += sorted(needs.concepts)
    head += [f"{c}_uln" for c in sorted(needs.uln)]
    cats = [registry.categories[c] for c in sorted(needs.categories) if c in registry.categories]
    if any(c.category == "condition" for c in cats):
        head.append("conditions")
    if any(c.category == "medication" for c in cats):
        head.append("medications")
    head += [c.id for c in cats if c.category == "status"]
    return head


# -- cell parsing -----------------------------------------------------------------
def cell(name: str) -> exp.Expression:
    """The trimmed cell text, NULL for a missing token."""
    t = exp.Trim(this=exp.cast(col(name), "VARCHAR"))
    return frag("CASE WHEN LOWER(:t) IN (" + ", ".join(f"'{m}'" for m in MISSING) + ") THEN NULL ELSE :t END", t=t)


def _folded_unit(rest: exp.Expression) -> exp.Expression:
    text: exp.Expression = exp.Lower(this=rest)
    for a, b in _FOLD:
        text = exp.func("REPLACE", text, lit(a), lit(b))
    return exp.func("REPLACE", text, lit(" "), lit(""))


def _fold_key(spelling: str) -> str:
    key = normalize_unit(spelling)
    for a, b in _FOLD:
        key = key.replace(a, b)
    return key.replace(" ", "")


def unit_table(concept: str, registry: Registry) -> dict[str, tuple[float, float]]:
    """Folded unit spelling -> (scale, offset) into the canonical unit, for every spelling that fits."""
    table: dict[str, tuple[float, float]] = {}
    info = registry.concept(concept)
    for spelling in [info.canonical_unit, *(a.unit for a in info.affine), *registry.units]:
        try:
            conv = conversion(concept, spelling, registry)
        except UnitError:
            continue
        except ArithmeticError:   # pint fails on some spellings (e.g. a ratio to zero); not a unit here
            continue
        if conv.canonical_unit != info.canonical_unit:   # multiples of ULN are not values
            continue
        table.setdefault(_fold_key(spelling), (conv.scale, conv.offset))
    return table


def _affine(num: exp.Expression, scale: float, offset: float) -> exp.Expression:
    # same arithmetic, in the same order, as units.Conversion.apply
    out = num if scale == 1.0 else exp.Mul(this=lit(scale), expression=num)
    return out if offset == 0.0 else exp.Add(this=out, expression=lit(offset))


def number_parts(t: exp.Expression) -> dict[str, exp.Expression]:
    """Layer-1 columns of a numeric cell: is it a plain number, the number text before a unit, the folded unit."""
    with_unit = exp.RegexpLike(this=t, expression=lit(f"^{NUMBER}\\s*[^0-9.\\s].*$"))
    rest = exp.RegexpReplace(this=t, expression=lit(f"^{NUMBER}\\s*"), replacement=lit(""))
    tail = exp.RegexpReplace(this=t, expression=lit(f"^{NUMBER}"), replacement=lit(""))
    numtext = exp.Left(this=t, expression=exp.Sub(this=exp.Length(this=t), expression=exp.Length(this=tail)))
    return {
        "plain": exp.RegexpLike(this=t, expression=lit(f"^{NUMBER}$")),
        "num": exp.Case().when(with_unit, numtext),
        "unit": exp.Case().when(with_unit, _folded_unit(rest)),
    }


def numeric(t: exp.Expression, plain: exp.Expression, num: exp.Expression, unit: exp.Expression, concept: str,
            header_unit: str | None, registry: Registry) -> tuple[exp.Expression, exp.Expression]:
    """(canonical value before the plausibility check, reason when a present cell is unusable)."""
    info = registry.concept(concept)
    hs, ho = (1.0, 0.0)
    if header_unit is not None:
        conv = conversion(concept, header_unit, registry)
        hs, ho = conv.scale, conv.offset
    table = unit_table(concept, registry)
    per_unit = exp.Case()
    as_number = exp.cast(num, "DOUBLE")
    for key, (scale, offset) in table.items():
        per_unit = per_unit.when(exp.EQ(this=unit, expression=lit(key)), _affine(as_number, scale, offset))
    value = exp.Case().when(plain, _affine(exp.cast(t, "DOUBLE"), hs, ho)).when(
        exp.Not(this=exp.Is(this=num, expression=exp.null())), per_unit)
    known = exp.In(this=unit, expressions=[lit(k) for k in table])
    reason = (exp.Case()
              .when(exp.Is(this=t, expression=exp.null()), exp.null())
              .when(plain, exp.null())
              .when(exp.and_(exp.Not(this=exp.Is(this=num, expression=exp.null())), exp.Not(this=known)),
                    frag(":q || :t || :q2", q="'", t=t, q2=f"': unit not usable for {info.name}"))
              .when(exp.Not(this=exp.Is(this=num, expression=exp.null())), exp.null())
              .else_(frag(":q || :t || :q2", q="'", t=t, q2="' is not a number")))
    return value, reason


def plausible(value: exp.Expression, reason: exp.Expression, concept: str, registry: Registry) -> tuple[exp.Expression, exp.Expression]:
    info = registry.concept(concept)
    if info.plausible is None:
        return value, reason
    lo, hi = (float(x) for x in info.plausible)
    ok = exp.Between(this=value, low=lit(lo), high=lit(hi))
    v = exp.Case().when(ok, value)
    why = exp.Coalesce(this=reason, expressions=[
        exp.Case().when(exp.Not(this=ok), frag("CAST(:v AS VARCHAR) || :tail", v=value,
                                                 tail=f" is implausible for {info.name} "
                                                      f"(plausible {lo:g}–{hi:g} {info.canonical_unit})"))])
    return v, why


def yes_no(t: exp.Expression) -> exp.Expression:
    low = exp.Lower(this=t)
    return (exp.Case().when(exp.In(this=low, expressions=[lit(y) for y in YES]), exp.true())
            .when(exp.In(this=low, expressions=[lit(n) for n in NO]), exp.false()))


def _regex_escape(text: str) -> str:
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


def _phrase(text: str) -> str:
    return r"\s+".join(_regex_escape(w) for w in normalize_phrase(text).split(" "))


def list_pattern(category: str, registry: Registry) -> str | None:
    """A regex over the lower-cased `;` list that matches an item naming the category (None: nothing can)."""
    cat = registry.categories[category]
    alts: list[str] = [_phrase(s) for s in (cat.name, cat.id.replace("_", " "), *cat.synonyms)]
    alts += [_regex_escape(code.lower()) for code in cat.snomed]
    for prefix in cat.icd10:
        alts.append(_regex_escape(prefix.lower()) + ("[0-9]{2}" if len(prefix) == 1 else "") + "[0-9a-z.]*")
    if cat.category == "medication":
        for ing in registry.ingredients.values():
            if registry.drug_class_contains(category, ing.atc, ing.name):
                alts += [_phrase(n) for n in (ing.name, *ing.synonyms)] + [_regex_escape(r) for r in ing.rxnorm]
        alts += [_phrase(m) for m in cat.members]
        alts += [_regex_escape(p.lower()) + "[0-9a-z]*" for p in cat.atc]
    alts = list(dict.fromkeys(a for a in alts if a))
    if not alts:
        return None
    return r"(^|;)\s*(" + "|".join(alts) + r")\s*(;|$)"


def completed_years(birth: exp.Expression, as_of: date) -> exp.Expression:
    late = exp.or_(exp.GT(this=exp.Extract(this=exp.var("MONTH"), expression=birth), expression=lit(as_of.month)),
                   exp.and_(exp.EQ(this=exp.Extract(this=exp.var("MONTH"), expression=birth), expression=lit(as_of.month)),
                            exp.GT(this=exp.Extract(this=exp.var("DAY"), expression=birth), expression=lit(as_of.day))))
    years = exp.Sub(this=lit(as_of.year), expression=exp.Extract(this=exp.var("YEAR"), expression=birth))
    return exp.Sub(this=years, expression=exp.Case().when(late, lit(1)).else_(lit(0)))


def _star_plus(inner: exp.Select, alias: str, extra: list[exp.Expression]) -> exp.Select:
    return exp.select(exp.Star(), *extra).from_(exp.alias_(exp.paren(inner), alias))


def wide_source(table: exp.Expression, header: list[str], needs: Needs, *, registry: Registry, as_of: date,
                criterion_ids: list[str] = (), row_column: str | None = None) -> tuple[exp.Select, list[str]]:
    """SELECT of feature columns over `table` (whose columns are `header`); returns (select, feature names).

    Layers (each a subquery, so no cell is parsed twice): trimmed cells ->
    number parts -> canonical values and reasons -> features.
    """
    columns = classify(header, registry, criterion_ids)
    by_role: dict[str, list[Column]] = {}
    for c in columns:
        by_role.setdefault(c.role, []).append(c)

    def first(role: str, key: str | None = None) -> Column | None:
        return next((c for c in by_role.get(role, ()) if key is None or c.key == key), None)

    cells: list[exp.Expression] = [exp.alias_(cell(first("id").name), "patient_id", quoted=True)]
    cell_of: dict[str, str] = {}

    def t(column: Column) -> exp.Column:
        if column.name not in cell_of:
            cell_of[column.name] = f"t{len(cell_of)}"
            cells.append(exp.alias_(cell(column.name), cell_of[column.name], quoted=True))
        return col(cell_of[column.name])

    parts: list[exp.Expression] = []      # layer 1: number parts
    values: list[exp.Expression] = []     # layer 2: canonical values, reasons, categories
    feats: list[exp.Expression] = [col("patient_id")]
    names = ["patient_id"]
    if row_column:
        cells.append(exp.alias_(col(row_column), "_row", quoted=True))
        feats.append(col("_row"))
        names.append("_row")

    def keep(name: str, expr: exp.Expression) -> None:
        values.append(exp.alias_(expr, name, quoted=True))
        feats.append(col(name))
        names.append(name)

    def number(column: Column, concept: str) -> tuple[exp.Expression, exp.Expression]:
        tc = t(column)
        stem = cell_of[column.name]
        for key, expr in number_parts(tc).items():
            if f"{stem}_{key}" not in {p.alias for p in parts}:
                parts.append(exp.alias_(expr, f"{stem}_{key}", quoted=True))
        return numeric(tc, col(f"{stem}_plain"), col(f"{stem}_num"), col(f"{stem}_unit"), concept, column.unit, registry)

    for concept in sorted(needs.concepts):
        src = first("concept", concept)
        birth = first("birth_date") if concept == "age" else None
        if src is None and birth is None:
            continue
        value, why = number(src, concept) if src else (exp.null(), exp.null())
        if birth is not None:
            b = t(birth)
            dated = frag("CASE WHEN REGEXP_MATCHES(:b, '^[0-9]{4}-[0-9]{2}-[0-9]{2}$') THEN TRY_CAST(:b AS DATE) END", b=b)
            bad_birth = frag("CASE WHEN :b IS NOT NULL AND :d IS NULL THEN :q || :b || :tail END", b=b, d=dated,
                             q="'", tail="' is not a date (YYYY-MM-DD)")
            # a stated age wins; the birth date fills in where it is missing
            value = exp.Coalesce(this=value, expressions=[exp.cast(completed_years(dated, as_of), "DOUBLE")])
            why = exp.Case().when(exp.Is(this=value, expression=exp.null()),
                                  exp.Coalesce(this=why, expressions=[bad_birth]))
        values += [exp.alias_(value, f"n_{concept}", quoted=True), exp.alias_(why, f"e_{concept}", quoted=True)]
        v, r = plausible(col(f"n_{concept}"), col(f"e_{concept}"), concept, registry)
        feats += [exp.alias_(v, feature("v", concept), quoted=True), exp.alias_(r, feature("r", concept), quoted=True)]
        names += [feature("v", concept), feature("r", concept)]
    for concept in sorted(needs.uln):
        if src := first("uln", concept):
            keep(feature("uln", concept), number(src, concept)[0])
    if needs.sex and (src := first("sex")):
        low = exp.Lower(this=t(src))
        keep("sex", exp.Case()
             .when(exp.In(this=low, expressions=[lit(x) for x in ("f", "female", "w", "woman")]), lit("female"))
             .when(exp.In(this=low, expressions=[lit(x) for x in ("m", "male", "man")]), lit("male")))
    for code in sorted(needs.categories):
        if code not in registry.categories:
            continue
        cat = registry.categories[code]
        own = first("category", code)
        lst = first({"condition": "conditions", "medication": "medications"}.get(cat.category, "-"))
        pattern = list_pattern(code, registry)
        found = []
        if own is not None:
            found.append(yes_no(t(own)))
        if lst is not None and pattern is not None:
            found.append(exp.RegexpLike(this=exp.Lower(this=t(lst)), expression=lit(pattern)))
        if found:
            keep(feature("h", code), exp.Coalesce(this=found[0], expressions=found[1:]) if len(found) > 1 else found[0])
    for cid in criterion_ids:
        if src := first("decision", cid):
            low = exp.Lower(this=t(src))
            keep(feature("d", cid), exp.Case().when(exp.In(this=low, expressions=[lit("pass"), lit("fail")]), low))
    layer0 = exp.select(*cells).from_(table)
    layer1 = _star_plus(layer0, "cells", parts) if parts else layer0
    layer2 = _star_plus(layer1, "parts", values) if values else layer1
    return exp.select(*feats).from_(exp.alias_(exp.paren(layer2), "parsed")), names
