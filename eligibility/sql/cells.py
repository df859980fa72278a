"""SQL expressions that parse wide-CSV cells exactly as eligibility.readers.wide_cells does in Python.

Token sets (missing, yes/no, sex) and the number pattern are taken from the
reader module itself so the two engines cannot drift apart; what the reader
decides per item of a list (ingredient, ATC code, drug-class name, ICD-10 or
SNOMED code) is decided here at compile time, per registry phrase, by calling
the reader's own functions, and becomes one regular expression per category.
"""
from __future__ import annotations

import re
from datetime import date

from sqlglot import exp

from eligibility.evaluate.category_rules import drug_rule
from eligibility.readers import wide_cells as wc
from eligibility.registry.concepts import Registry, normalize_phrase
from eligibility.sql.nodes import col, frag, lit
from eligibility.registry.units import normalize_unit

# the reader's number: sign, digits with an optional point, optional exponent
NUMBER = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
NUMBER_GROUPLESS = r"[+-]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][+-]?[0-9]+)?"
# a leading number with a three-digit exponent: not read (readers.wide_cells._HUGE_EXPONENT); PostgreSQL
# and Spark would stop the query casting '1e400' to a double
HUGE_EXPONENT = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)[eE][+-]?[0-9]{3}"
# unit spellings are compared folded: lower case, these characters mapped, no spaces
_FOLD = (("μ", "µ"), ("²", "2"), ("³", "3"), ("⁹", "9"), ("％", "%"), ("×", "x"))
_SEP = r"[;|]"


def _in(value: exp.Expression, words) -> exp.Expression:
    return exp.In(this=value, expressions=[lit(w) for w in sorted(words)])


def text(name: str) -> exp.Expression:
    """The cell as trimmed text (NULL stays NULL)."""
    return exp.Trim(this=exp.cast(col(name), "VARCHAR", copy=False))


def present(t: exp.Expression) -> exp.Expression:
    """TRUE when a trimmed cell holds something other than a missing token."""
    return exp.and_(exp.Not(this=exp.Is(this=t, expression=exp.null())),
                    exp.Not(this=_in(exp.Lower(this=t), wc.MISSING)), copy=False)


def _fold(unit: exp.Expression) -> exp.Expression:
    out: exp.Expression = exp.Lower(this=unit)
    for a, b in _FOLD:
        out = exp.func("REPLACE", out, lit(a), lit(b))
    return exp.func("REPLACE", out, lit(" "), lit(""))


def fold_key(spelling: str) -> str:
    key = normalize_unit(spelling)
    for a, b in _FOLD:
        key = key.replace(a, b)
    return key.replace(" ", "")


def unit_table(concept: str, registry: Registry) -> dict[str, tuple[float, float]]:
    """Folded spelling -> (scale, offset) into the canonical unit, for every spelling the concept accepts."""
    table: dict[str, tuple[float, float]] = {}
    info = registry.concept(concept)
    for spelling in [info.canonical_unit, *(a.unit for a in info.affine), *registry.units]:
        conv = wc._conversion(registry, concept, spelling)
        if isinstance(conv, str):
            continue
        # NB: the reader keeps `3 x ULN` in an ALT cell as the number 3 (scale 1); mirrored here
        # so the engines agree -- asked under "Open questions (helper-4)" in docs/patient-data.md
        table.setdefault(fold_key(spelling), (conv.scale, conv.offset))
    return table


def affine(num: exp.Expression, scale: float, offset: float) -> exp.Expression:
    # the same arithmetic, in the same order, as units.Conversion.apply
    out = num if scale == 1.0 else exp.Mul(this=lit(scale), expression=num)
    return out if offset == 0.0 else exp.Add(this=out, expression=lit(offset))


def huge_exponent(t: exp.Expression) -> exp.Expression:
    """TRUE for a cell whose leading number has a three-digit exponent (read by no engine)."""
    return exp.RegexpLike(this=t.copy(), expression=lit(HUGE_EXPONENT))


def fast_number(t: exp.Expression) -> exp.Expression:
    """DuckDB only: TRUE when TRY_CAST reads the cell as the reader's regex would (a plain finite number).

    TRY_CAST also reads `inf`, `nan`, `1_000`, `+-1` and `1e-400` (as 0), which the reader rejects:
    those fall through to the regex path.  Used by the DuckDB engine, never for warehouse SQL (no TRY_CAST there).
    """
    x = exp.TryCast(this=t.copy(), to=exp.DataType.build("DOUBLE"))
    return exp.and_(exp.Not(this=exp.Is(this=x, expression=exp.null())), exp.func("ISFINITE", x.copy()),
                    *[exp.EQ(this=exp.StrPosition(this=t.copy(), substr=lit(bad)), expression=lit(0))
                      for bad in ("_", "+-", "-+")],
                    # an exponent is read unless it has three digits (CASE: the regex only for cells with one)
                    exp.Case().when(exp.EQ(this=exp.StrPosition(this=exp.Lower(this=t.copy()), substr=lit("e")),
                                           expression=lit(0)), exp.true(), copy=False)
                    .else_(exp.Not(this=huge_exponent(t)), copy=False),
                    copy=False)


def fast_value(t: exp.Expression) -> exp.Expression:
    """DuckDB only: the cell as a DOUBLE when it is a plain finite number the reader's regex accepts, else NULL.

    Computed once per numeric cell, in its own layer: most cells are plain numbers
    and need neither the regex nor the unit work below.
    """
    x = exp.TryCast(this=t.copy(), to=exp.DataType.build("DOUBLE"))
    return exp.Case().when(fast_number(t), x.copy(), copy=False)


def fast_date(t: exp.Expression) -> exp.Expression:
    """DuckDB only: iso_date with the calendar check left to TRY_CAST (which rejects 02-30, 13-01, 2021-02-29)."""
    shape = exp.RegexpLike(this=t.copy(), expression=lit("^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"))
    not_zero = exp.NEQ(this=exp.Substring(this=t.copy(), start=lit(1), length=lit(4)), expression=lit("0000"))
    day = exp.TryCast(this=exp.Substring(this=t.copy(), start=lit(1), length=lit(10)), to=exp.DataType.build("DATE"))
    return exp.Case().when(exp.and_(shape, not_zero, copy=False), day, copy=False)


def number_parts(t: exp.Expression) -> dict[str, exp.Expression]:
    """Columns computed once per numeric cell: the number text (NULL: not a number) and the folded unit ('' none)."""
    starts = exp.RegexpLike(this=t, expression=lit(f"^{NUMBER}"))
    tail = exp.RegexpReplace(this=t, expression=lit(f"^{NUMBER}"), replacement=lit(""))
    numtext = exp.Left(this=t, expression=exp.Sub(this=exp.Length(this=t), expression=exp.Length(this=tail)))
    # the common case, a plain number, skips the unit work (CASE evaluates branches lazily)
    plain = exp.RegexpLike(this=t, expression=lit(f"^{NUMBER}$"))
    return {"num": exp.Case().when(huge_exponent(t), exp.null(), copy=False).when(plain, t, copy=False)
                             .when(exp.and_(present(t), starts), numtext, copy=False),
            "unit": exp.Case().when(plain.copy(), lit(""), copy=False).when(exp.and_(present(t), starts), _fold(exp.Trim(this=tail)), copy=False)}


def number_text(t: exp.Expression) -> exp.Expression:
    """DuckDB: the leading number of a trimmed cell by the reader's pattern (NULL when there is none)."""
    extracted = exp.Nullif(this=exp.func("REGEXP_EXTRACT", t, lit(f"^{NUMBER_GROUPLESS}"), dialect="duckdb"),
                           expression=lit(""))
    return exp.Case().when(huge_exponent(t), exp.null(), copy=False).else_(extracted, copy=False)


def unit_text(t: exp.Expression, num: exp.Expression) -> exp.Expression:
    """DuckDB: what follows the leading number, folded (fold_key)."""
    rest = exp.Substring(this=t, start=exp.Add(this=exp.Length(this=num), expression=lit(1)))
    return fold_unit(rest)


def fold_unit(unit: exp.Expression) -> exp.Expression:
    """DuckDB: the folded unit spelling (fold_key) of a unit text, one TRANSLATE for the character map."""
    src = "".join(a for a, _b in _FOLD) + " "
    dst = "".join(b for _a, b in _FOLD)   # the space has no counterpart: TRANSLATE deletes it
    return exp.func("TRANSLATE", exp.Lower(this=exp.Trim(this=unit)), lit(src), lit(dst), dialect="duckdb")


def numeric(t: exp.Expression, num: exp.Expression, unit: exp.Expression, concept: str,
            header_unit: str | None, registry: Registry,
            x: exp.Expression | None = None) -> tuple[exp.Expression, exp.Expression]:
    """(canonical value, reason a present cell is unusable) from a cell's number text (NULL: not a
    number) and folded unit ('' none).

    `x` (DuckDB) is the cell's fast_value: when it holds a number, that is the value in the
    header's unit and nothing else is looked at.
    """
    info = registry.concept(concept)
    as_number = exp.cast(num, "DOUBLE", copy=False)
    value = exp.Case()
    header = wc._conversion(registry, concept, header_unit)
    if x is not None and not isinstance(header, str):
        value = value.when(exp.Not(this=exp.Is(this=x, expression=exp.null())),
                           affine(x.copy(), header.scale, header.offset), copy=False)
    if not isinstance(header, str):
        # most cells are plain numbers: their branch comes first
        value = value.when(exp.EQ(this=unit, expression=lit("")), affine(as_number, header.scale, header.offset), copy=False)
    for key, (scale, offset) in unit_table(concept, registry).items():
        value = value.when(exp.EQ(this=unit.copy(), expression=lit(key)), affine(as_number.copy(), scale, offset), copy=False)
    why = exp.Case()
    if x is not None:
        why = why.when(exp.Not(this=exp.Is(this=x.copy(), expression=exp.null())), exp.null(), copy=False)
    why = (why
           .when(exp.not_(present(t), copy=False), exp.null(), copy=False)
           .when(exp.Is(this=num.copy(), expression=exp.null()), frag("'''' || :t || ''' is not a number'", t=t), copy=False)
           .when(exp.Is(this=value.copy(), expression=exp.null()),
                 frag("'''' || :t || :tail", t=t.copy(), tail=f"': unit not usable for {info.name}"), copy=False))
    return value, why


def plausible(value: exp.Expression, why: exp.Expression, concept: str, registry: Registry) -> tuple[exp.Expression, exp.Expression]:
    """The value when inside the registry's plausible range (inclusive), else NULL with a reason."""
    info = registry.concept(concept)
    if info.plausible is None:
        return value, why
    low, high = (float(x) for x in info.plausible)
    ok = exp.Between(this=value, low=lit(low), high=lit(high))
    return (exp.Case().when(ok, value, copy=False),
            exp.Coalesce(this=why, expressions=[exp.Case().when(exp.Not(this=ok), frag(
                "CAST(:v AS VARCHAR) || :tail", v=value,
                tail=f" is outside the plausible range {low:g}–{high:g} {info.canonical_unit}"), copy=False)]))


def yes_no(t: exp.Expression) -> exp.Expression:
    low = exp.Lower(this=t)
    return exp.Case().when(_in(low, wc.YES), exp.true(), copy=False).when(_in(low, wc.NO), exp.false(), copy=False)


def iso_date(t: exp.Expression) -> exp.Expression:
    """The date of an ISO cell (`YYYY-MM-DD`, a time part ignored); NULL when absent or not a calendar date.

    Checked field by field (month lengths, leap years) before the CAST, because
    not every engine has TRY_CAST and an impossible date must not stop a run.
    """
    return frag(
        "CASE WHEN REGEXP_MATCHES(:t, '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([T ].*)?$') "
        "AND SUBSTRING(:t, 1, 4) <> '0000' "
        "AND CAST(SUBSTRING(:t, 9, 2) AS INT) <= CASE CAST(SUBSTRING(:t, 6, 2) AS INT) "
        "WHEN 2 THEN CASE WHEN MOD(CAST(SUBSTRING(:t, 1, 4) AS INT), 4) = 0 "
        "AND (MOD(CAST(SUBSTRING(:t, 1, 4) AS INT), 100) <> 0 OR MOD(CAST(SUBSTRING(:t, 1, 4) AS INT), 400) = 0) "
        "THEN 29 ELSE 28 END WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END "
        "THEN CAST(SUBSTRING(:t, 1, 10) AS DATE) END", t=t)


def completed_months(born: exp.Expression, as_of: date) -> exp.Expression:
    """eligibility.core.patient.completed_months: whole months from born to as_of."""
    months = exp.Add(this=exp.Mul(this=exp.Extract(this=exp.var("YEAR"), expression=born), expression=lit(12)),
                     expression=exp.Extract(this=exp.var("MONTH"), expression=born.copy()))
    short = exp.Case().when(exp.GT(this=exp.Extract(this=exp.var("DAY"), expression=born.copy()), expression=lit(as_of.day)),
                            lit(1), copy=False).else_(lit(0), copy=False)
    return exp.Sub(this=exp.Sub(this=lit(as_of.year * 12 + as_of.month), expression=exp.Paren(this=months)), expression=short)


def completed_years(born: exp.Expression, as_of: date) -> exp.Expression:
    month = exp.Extract(this=exp.var("MONTH"), expression=born)
    day = exp.Extract(this=exp.var("DAY"), expression=born)
    before_birthday = exp.or_(exp.GT(this=month, expression=lit(as_of.month)),
                              exp.and_(exp.EQ(this=month.copy(), expression=lit(as_of.month)),
                                       exp.GT(this=day, expression=lit(as_of.day))), copy=False)
    years = exp.Sub(this=lit(as_of.year), expression=exp.Extract(this=exp.var("YEAR"), expression=born))
    return exp.Sub(this=years, expression=exp.Case().when(before_birthday, lit(1), copy=False).else_(lit(0), copy=False))


def days_between(earlier: exp.Expression, as_of: date) -> exp.Expression:
    return exp.DateDiff(this=exp.cast(lit(as_of.isoformat()), "DATE", copy=False), expression=earlier, unit=exp.var("DAY"))


# -- lists -------------------------------------------------------------------------
def _escape(phrase: str) -> str:
    return r"\s+".join(re.sub(r"([.^$*+?()\[\]{}|\\-])", r"\\\1", w) for w in phrase.split(" "))


def _code_pattern(prefix: str, shape: list[str], lengths: set[int]) -> str:
    """Regex for every code of the given shape (one class per position) that starts with `prefix`."""
    head = _escape(prefix.lower())
    tails = sorted({"".join(shape[len(prefix):n]) for n in lengths if n >= len(prefix)}, key=len)
    rest = [t for t in tails if t]
    if not rest:
        return head
    return head + "(" + "|".join(rest) + ")" + ("?" if "" in tails else "")


_ATC_SHAPE = ["[a-z]", "[0-9]", "[0-9]", "[a-z]", "[a-z]", "[0-9]", "[0-9]"]
_ICD_SHAPE = ["[a-z]", "[0-9]", "[0-9]", r"\.", "[0-9a-z]", "[0-9a-z]?", "[0-9a-z]?", "[0-9a-z]?"]


def _icd_pattern(prefix: str) -> str:
    shape = _ICD_SHAPE
    head = _escape(prefix.lower())
    if len(prefix) <= 3:
        return head + "".join(shape[len(prefix):3]) + r"(\.[0-9a-z]{1,4})?"
    return head + "[0-9a-z]{0,%d}" % (8 - len(prefix))


def _phrases(registry: Registry) -> list[str]:
    """Every registry phrase a list item could be (names, synonyms, codes)."""
    out = []
    for ing in registry.ingredients.values():
        out += [ing.name, *ing.synonyms, *ing.rxnorm]
    for cat in registry.categories.values():
        out += [cat.id, cat.name, *cat.synonyms, *cat.members, *cat.snomed]
    return list(dict.fromkeys(normalize_phrase(p) for p in out))


def list_pattern(rule: str, code: str, registry: Registry) -> tuple[str, str] | None:
    """(list column kind, regex over the lower-cased list cell) for items that make a has-node TRUE."""
    vocab = wc.vocabulary(registry)
    alts: list[str] = []
    if rule == "medication":
        kind = "medications"
        prefixes, members = drug_rule(registry, code)
        for phrase in _phrases(registry) + sorted(members):
            tokens, _known = wc.medication_tokens(phrase, registry, vocab)
            if not wc._ATC.match(phrase.upper()) and any(t in members or t.startswith(prefixes) for t in tokens):
                alts.append(_escape(phrase))
        alts += [_code_pattern(p, _ATC_SHAPE, {1, 3, 4, 5, 7}) for p in prefixes]
    else:
        kind = "conditions"
        for phrase in _phrases(registry):
            if code in wc.condition_ids(phrase, registry, vocab) and not wc._ICD10.match(phrase.upper()):
                alts.append(_escape(phrase))
        cat = registry.categories.get(code)
        alts += [_icd_pattern(p) for p in (cat.icd10 if cat and cat.category != "medication" else ())]
    alts = list(dict.fromkeys(a for a in alts if a))
    if not alts:
        return None
    return kind, rf"(^|{_SEP})\s*({'|'.join(alts)})\s*({_SEP}|$)"


def list_known(t: exp.Expression) -> exp.Expression:
    """TRUE when a list cell lists something (or says `none`): the list is then complete."""
    low = exp.Lower(this=t)
    return exp.or_(_in(low, wc.LIST_EMPTY), present(t), copy=False)
