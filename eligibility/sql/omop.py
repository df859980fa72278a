"""Source layer for OMOP CDM 5.4 tables: person, measurement, condition_occurrence, drug_exposure, death, concept.

Mirrors the OMOP reader (eligibility.readers.omop / observations.LongAssembler):

- measurement -> registry concept by measurement_concept_id (registry `omop` ids), else
  measurement_source_value as LOINC.  Unit: unit_concept_id through the registry's
  `omop_units`; 0 (or an id the registry does not list) falls back to unit_source_value;
  no unit at all means the canonical unit.  Usable rows (a number, a unit that converts,
  inside the plausible range, dated on or before as-of) are ranked per person/concept
  with ROW_NUMBER (latest date, then latest datetime); the latest counts when it lies in
  the lookback window.  range_high, converted alike, is the patient's ULN.
- condition_occurrence -> registry conditions by condition_concept_id, the SNOMED code of
  that concept in CONCEPT, or condition_source_value (ICD-10 by prefix, else SNOMED);
  rows starting after as-of are ignored.  Statuses (pregnancy) count only while the
  episode is open.  Diabetes duration: years since the earliest dated type 2 diagnosis.
- drug_exposure active on as-of (start <= as-of <= end, end defaulting to start +
  days_supply - 1): RxNorm drug concepts are not ingredients, so a drug belongs to a
  class when its RxNorm code (CONCEPT, or a numeric drug_source_value) is a registry
  ingredient's, or when an ingredient name of the class appears as a word in the
  concept name / drug_source_value (local forms such as creams count by name only).
- age from birth_datetime (else year/month/day of birth), sex from gender_concept_id
  (registry `omop_genders`) else gender_source_value, death from the death table.

All mappings come from the registry at compile time as inline VALUES lists, so the
query runs on a warehouse that has only the CDM tables (plus CONCEPT).
"""
from __future__ import annotations

import re
from datetime import date, timedelta

import sqlglot
from sqlglot import exp

from eligibility.evaluate.category_rules import other_sexes
from eligibility.readers.observations import code_map
from eligibility.registry.concepts import Registry
from eligibility.registry.codes import node_keys
from eligibility.sql.nodes import Needs, feature, safe_name
from eligibility.registry.units import conversion, display_unit
from eligibility.core.errors import UnitError


# OMOP CDM 5.4 columns the query reads, with the types it reads them as (CDM 5.4 DDL: integer ids,
# dates, datetimes, numeric values as DOUBLE; person ids compared as text, the way the DuckDB views
# carry them).  Every column is cast in the query itself, so tables loaded without a schema
# (DuckDB's read_csv_auto typing an all-empty `range_high` as VARCHAR) give the same answers.
_CDM_TYPES: dict[str, dict[str, str]] = {
    "person": {"person_id": "VARCHAR", "gender_concept_id": "BIGINT", "year_of_birth": "INTEGER",
               "month_of_birth": "INTEGER", "day_of_birth": "INTEGER", "birth_datetime": "TIMESTAMP",
               "gender_source_value": "VARCHAR"},
    "death": {"person_id": "VARCHAR", "death_date": "DATE"},
    "measurement": {"person_id": "VARCHAR", "measurement_concept_id": "BIGINT", "measurement_date": "DATE",
                    "measurement_datetime": "TIMESTAMP", "value_as_number": "DOUBLE", "range_high": "DOUBLE",
                    "unit_concept_id": "BIGINT", "measurement_source_value": "VARCHAR",
                    "unit_source_value": "VARCHAR", "operator_concept_id": "BIGINT", "value_source_value": "VARCHAR"},
    "condition_occurrence": {"person_id": "VARCHAR", "condition_concept_id": "BIGINT",
                             "condition_start_date": "DATE", "condition_end_date": "DATE",
                             "condition_source_value": "VARCHAR"},
    "drug_exposure": {"person_id": "VARCHAR", "drug_concept_id": "BIGINT", "drug_exposure_start_date": "DATE",
                      "drug_exposure_end_date": "DATE", "days_supply": "INTEGER", "drug_source_value": "VARCHAR"},
    "concept": {"concept_id": "BIGINT", "concept_name": "VARCHAR", "vocabulary_id": "VARCHAR",
                "concept_code": "VARCHAR"},
}


def _table(prefix: str, table: str, extra: tuple[str, ...] = ()) -> str:
    """A CDM table with the columns the query reads cast to their types (`extra`: non-CDM columns)."""
    cols = [f"CAST({c} AS {kind}) AS {c}" for c, kind in _CDM_TYPES[table].items()] + list(extra)
    return f"(SELECT {', '.join(cols)} FROM {prefix}{table})"


def _s(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _values(rows: list[tuple], names: str, types: tuple[str, ...]) -> str:
    """An inline table; typed NULL row when empty so the columns keep their types."""
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t})" for t in types)
        return f"(SELECT {nulls}) AS v({names}) WHERE FALSE"
    body = ", ".join("(" + ", ".join(_s(v) if isinstance(v, str) else repr(float(v)) if isinstance(v, float) else str(v)
                                      for v in row) + ")" for row in rows)
    return f"(VALUES {body}) AS v({names})"


def _words(name: str) -> str:
    """Regex for a name as whole words of a lower-cased text (any punctuation between words)."""
    parts = [re.escape(w) for w in re.sub(r"[^a-z0-9]+", " ", name.lower()).split()]
    return "(^|[^a-z0-9])" + "[^a-z0-9]+".join(parts) + "([^a-z0-9]|$)"


def _measurement_maps(needs: Needs, registry: Registry):
    ids, loinc, by_id, by_src, plaus = [], [], [], [], []
    wanted = sorted(needs.concepts - {"age", "diabetes_duration"})
    for concept in wanted:
        info = registry.concepts[concept]
        ids += [(int(i), concept) for i in info.omop]
        loinc += [(code, concept) for code in info.loinc]
        low, high = info.plausible or (-1e308, 1e308)
        plaus.append((concept, float(low), float(high)))
        for uid, spelling in registry.omop_units.items():
            try:
                conv = conversion(concept, spelling, registry)
            except UnitError:
                continue
            by_id.append((concept, int(uid), conv.scale, conv.offset))
        for spelling in sorted({*registry.units, info.canonical_unit, *(a.unit for a in info.affine)}):
            try:
                conv = conversion(concept, spelling, registry)
            except UnitError:
                continue
            by_src.append((concept, spelling.strip().lower(), conv.scale, conv.offset))
    return wanted, ids, loinc, by_id, by_src, plaus


def _operator(registry: Registry) -> str:
    """The bound direction of a measurement ('<', '<=', '>', '>=', NULL for an exact value), as the OMOP reader
    reads it: operator_concept_id through the registry's `omop_operators`, else a leading comparator of
    value_source_value ('<0.3').  OMOP standard concepts of the "Meas Value Operator" domain: 4172703 '=',
    4171756 '<', 4171754 '<=', 4171755 '>=', 4172704 '>' (OMOP CDM 5.4 MEASUREMENT.operator_concept_id; the
    same ids in OHDSI ETLs, e.g. the MIMIC-to-OMOP lab mapping's "SNOMED Meas Value Operator (<)" = 4171756,
    and the CDM-to-PCORnet view's 4172703 E / 4171756 LT / 4172704 GT / 4171754 LE / 4171755 GE).
    '=' gives no direction."""
    by_id = " ".join(f"WHEN {cid} THEN {_s(o)}" for cid, o in sorted(registry.omop_operators.items()))
    text = "TRIM(m.value_source_value)"
    by_text = " ".join(f"WHEN {text} LIKE {_s(o + '%')} THEN {_s(o)}" for o in ("<=", ">=", "<", ">", "="))
    ids = f"CASE m.operator_concept_id {by_id} END" if by_id else "CAST(NULL AS VARCHAR)"
    return f"NULLIF(COALESCE({ids}, CASE {by_text} END), '=')"


def _shown(registry: Registry, wanted: list[str]) -> str:
    """A usable measurement as the explanations show it (eligibility.evaluate.explain.observed, without the
    comparator): the number as written with its unit (prettified), the canonical value after a unit that
    converts, ' on <date>'.  (The Python text rounds a converted value against the bound it is compared
    with; here it is the double as text.)"""
    spellings = {*registry.units, *registry.omop_units.values(), *(c.canonical_unit for c in registry.concepts.values())}
    pretty = " ".join(f"WHEN {_s(u)} THEN {_s(display_unit(u))}" for u in sorted(spellings) if display_unit(u) != u)
    canonical = " ".join(f"WHEN {_s(c)} THEN {_s(display_unit(registry.concepts[c].canonical_unit))}"
                         for c in wanted)
    return (f"LTRIM(meas.vt, '<>=≤≥ ') || ' ' || CASE WHEN meas.us IS NULL THEN CASE meas.concept {canonical} END "
            f"WHEN meas.s <> 1.0 OR meas.o <> 0.0 THEN meas.us || ' = ' || CAST(meas.s * meas.x + meas.o AS VARCHAR) "
            f"|| ' ' || CASE meas.concept {canonical} END ELSE CASE meas.us {pretty} ELSE meas.us END END "
            f"|| ' on ' || CAST(meas.d AS VARCHAR)")


def _sex(registry: Registry) -> str:
    """The person's sex ('female'/'male', NULL when unknown), as the OMOP reader reads it."""
    genders = " ".join(f"WHEN {cid} THEN {_s(sex)}" for cid, sex in registry.omop_genders.items())
    return (f"COALESCE(CASE pe.gender_concept_id {genders} END, CASE LOWER(TRIM(pe.gender_source_value)) "
            f"WHEN 'f' THEN 'female' WHEN 'female' THEN 'female' WHEN 'm' THEN 'male' WHEN 'male' THEN 'male' END)")


def omop_source(needs: Needs, *, registry: Registry, as_of: date, lookback_days: int,
                schema_prefix: str | None = None, condition_map: bool = False) -> tuple[exp.Select, list[str]]:
    """The per-person feature layer over OMOP CDM tables.

    `condition_map`: the DuckDB engine's views carry `elig_condition_map`, each distinct condition
    record's keys as the Python readers compute them (eligibility.engines.long_views); conditions
    are then matched by joining it.  Without it (a warehouse), by codes: concept ids, SNOMED codes
    and ICD-10-CM codes with their hierarchy.
    """
    p = f"{schema_prefix}." if schema_prefix else ""
    day = f"CAST({_s(as_of.isoformat())} AS DATE)"
    window = f"CAST({_s((as_of - timedelta(days=lookback_days)).isoformat())} AS DATE)"
    wanted, ids, loinc, by_id, by_src, plaus = _measurement_maps(needs, registry)
    known_units = sorted(registry.omop_units)
    spellings = [(int(uid), spelling) for uid, spelling in sorted(registry.omop_units.items())]
    # the value as the readers write it: the views carry it (OMOP: the double as Python prints it;
    # Synthea: the cell), a warehouse gives the double as text
    text = "m.value_text" if condition_map else "CAST(m.value_as_number AS VARCHAR)"
    ctes = []
    feats = ["pe.person_id AS patient_id"]
    names = ["patient_id"]
    if wanted:
        unknown_uid = f"m.unit_concept_id NOT IN ({', '.join(map(str, known_units))})" if known_units else "TRUE"
        ctes.append(f"""meas AS (
  SELECT m.person_id, COALESCE(mi.concept, ml.concept) AS concept, m.measurement_date AS d,
         m.measurement_datetime AS dt, m.value_as_number AS x, m.range_high AS hi, {_operator(registry)} AS op,
         {text} AS vt, COALESCE(uu.spelling, NULLIF(TRIM(m.unit_source_value), '')) AS us,
         {'COALESCE(m.source_label, ' if condition_map else '('}CASE WHEN mi.concept IS NOT NULL
              THEN 'OMOP ' || CAST(m.measurement_concept_id AS VARCHAR) ELSE 'LOINC ' || m.measurement_source_value END) AS lbl,
         COALESCE(ui.scale, us.scale, CASE WHEN (m.unit_concept_id IS NULL OR m.unit_concept_id = 0 OR {unknown_uid})
              AND COALESCE(TRIM(m.unit_source_value), '') = '' THEN 1.0 END) AS s,
         COALESCE(ui.off, us.off, 0.0) AS o
  FROM {_table(p, 'measurement', ('value_text', 'source_label') if condition_map else ())} AS m
  LEFT JOIN {_values(spellings, 'uid, spelling', ('BIGINT', 'VARCHAR')).replace('AS v(', 'AS uu(')}
       ON uu.uid = m.unit_concept_id
  LEFT JOIN {_values(ids, 'cid, concept', ('BIGINT', 'VARCHAR')).replace('AS v(', 'AS mi(')} ON mi.cid = m.measurement_concept_id
  LEFT JOIN {_values(loinc, 'code, concept', ('VARCHAR', 'VARCHAR')).replace('AS v(', 'AS ml(')}
       ON mi.concept IS NULL AND ml.code = m.measurement_source_value
  LEFT JOIN {_values(by_id, 'concept, uid, scale, off', ('VARCHAR', 'BIGINT', 'DOUBLE', 'DOUBLE')).replace('AS v(', 'AS ui(')}
       ON ui.concept = COALESCE(mi.concept, ml.concept) AND ui.uid = m.unit_concept_id
  LEFT JOIN {_values(by_src, 'concept, unit, scale, off', ('VARCHAR', 'VARCHAR', 'DOUBLE', 'DOUBLE')).replace('AS v(', 'AS us(')}
       ON ui.concept IS NULL AND (m.unit_concept_id IS NULL OR m.unit_concept_id = 0 OR {unknown_uid})
       AND us.concept = COALESCE(mi.concept, ml.concept) AND us.unit = LOWER(TRIM(m.unit_source_value))
  WHERE COALESCE(mi.concept, ml.concept) IS NOT NULL)""")
        ctes.append(f"""usable AS (
  SELECT meas.person_id, meas.concept, meas.d, meas.dt, meas.op, meas.s * meas.x + meas.o AS v,
         meas.vt || COALESCE(' ' || meas.us, '') AS rt, meas.lbl, {_shown(registry, wanted)} AS ot,
         meas.s * meas.hi + meas.o AS uln
  FROM meas JOIN {_values(plaus, 'concept, lo, hi', ('VARCHAR', 'DOUBLE', 'DOUBLE')).replace('AS v(', 'AS pl(')}
       ON pl.concept = meas.concept
  WHERE meas.x IS NOT NULL AND meas.s IS NOT NULL AND meas.d IS NOT NULL AND meas.d <= {day}
    AND meas.s * meas.x + meas.o BETWEEN pl.lo AND pl.hi)""")
        ctes.append("""ranked AS (
  SELECT usable.*, ROW_NUMBER() OVER (PARTITION BY person_id, concept ORDER BY d DESC, dt DESC) AS rn FROM usable)""")
        cols = ", ".join(f"MAX(CASE WHEN concept = {_s(c)} AND d >= {window} THEN {k} END) AS {feature(f, c)}"
                         for c in wanted for k, f in (("v", "v"), ("uln", "uln"), ("op", "op")))
        # the explanations' texts: the value as observed, and why the latest usable one is not used
        # (older than the lookback: the readers' wording, eligibility.readers.observations)
        old = f"is older than the {lookback_days}-day lookback before {as_of.isoformat()}"
        cols += "".join(f", MAX(CASE WHEN concept = {_s(c)} AND d >= {window} THEN ot END) AS {feature('o', c)}"
                        f", MAX(CASE WHEN concept = {_s(c)} AND d < {window} THEN {_s('rejected: latest ' + registry.concepts[c].name + ' ')}"
                        f" || rt || ' on ' || CAST(d AS VARCHAR) || ' (' || lbl || ') ' || {_s(old)} END) AS {feature('r', c)}"
                        for c in wanted)
        ctes.append(f"latest AS (SELECT person_id, {cols} FROM ranked WHERE rn = 1 GROUP BY person_id)")
        for c in wanted:
            feats += [f"la.{feature(k, c)}" for k in ("v", "op", "o", "r")]
            names += [feature(k, c) for k in ("v", "op", "o", "r")]
            if c in needs.uln:
                feats.append(f"la.{feature('uln', c)}")
                names.append(feature("uln", c))
    # -- conditions ------------------------------------------------------------
    codes = code_map(registry)
    cond_codes = sorted({code for rule, code in needs.categories if rule in ("condition", "status")}
                        | ({"type_2_diabetes"} if "diabetes_duration" in needs.concepts else set()))
    if cond_codes:
        flags = []
        for code in cond_codes:
            # a registry entry, or a code-book entry (icd10cm:...) the compiler made from ICD-10-CM
            cat = registry.categories.get(code) or codes.vocabulary.category(code)
            if cat is None or cat.category == "medication":
                flags.append(f"FALSE AS f_{safe_name(code)}")
                continue
            if condition_map:
                # as eligibility.evaluate.has matches: a registry entry by its id, a code-book entry by its codes
                keys = [code] if code in registry.categories else \
                    sorted(node_keys(code, codes.vocabulary.codes(cat)))
                flags.append(f"COALESCE(cm.category IN ({', '.join(map(_s, keys))}), FALSE) AS f_{safe_name(code)}")
                continue
            tests = [f"c.condition_concept_id IN ({', '.join(map(str, cat.omop))})"] if cat.omop else []
            if cat.snomed:
                snomed = ", ".join(map(_s, cat.snomed))
                tests.append(f"(k.vocabulary_id = 'SNOMED' AND k.concept_code IN ({snomed}))")
                tests.append(f"(NOT REGEXP_MATCHES(COALESCE(c.condition_source_value, ''), "
                             f"'^[A-TV-Za-tv-z][0-9][0-9A-Za-z]([.][0-9A-Za-z]{{1,4}})?$') "
                             f"AND TRIM(c.condition_source_value) IN ({snomed}))")
            for prefix in cat.icd10:
                flat = prefix.replace(".", "").upper()
                tests.append(f"(REGEXP_MATCHES(COALESCE(c.condition_source_value, ''), "
                             f"'^[A-TV-Za-tv-z][0-9][0-9A-Za-z]([.][0-9A-Za-z]{{1,4}})?$') AND "
                             f"UPPER(REPLACE(c.condition_source_value, '.', '')) LIKE {_s(flat + '%')})")
                # an ICD-10-CM concept (a source concept or a non-standard condition_concept_id)
                tests.append(f"(k.vocabulary_id = 'ICD10CM' AND UPPER(REPLACE(k.concept_code, '.', '')) "
                             f"LIKE {_s(flat + '%')})")
            flags.append(f"COALESCE({' OR '.join(tests) or 'FALSE'}, FALSE) AS f_{safe_name(code)}")
        join = ("JOIN elig_condition_map AS cm ON cm.condition_concept_id = COALESCE(c.condition_concept_id, 0) "
                "AND cm.condition_source_value = COALESCE(c.condition_source_value, '') "
                "AND cm.condition_display = COALESCE(c.condition_display, '')") if condition_map else \
            f"LEFT JOIN {_table(p, 'concept')} AS k ON k.concept_id = c.condition_concept_id"
        ctes.append(f"""crow AS (
  SELECT c.person_id, c.condition_start_date AS s, c.condition_end_date AS e, {', '.join(flags)}
  FROM {_table(p, 'condition_occurrence', ('condition_display',) if condition_map else ())} AS c {join}
  WHERE c.condition_start_date IS NULL OR c.condition_start_date <= {day})""")
        aggs = []
        for code in cond_codes:
            n = safe_name(code)
            aggs.append(f"BOOL_OR(f_{n}) AS c_{n}, "
                        f"BOOL_OR(f_{n} AND (e IS NULL OR e >= {day})) AS o_{n}, "
                        f"MIN(CASE WHEN f_{n} THEN s END) AS on_{n}, MAX(CASE WHEN f_{n} THEN s END) AS last_{n}")
        ctes.append(f"cagg AS (SELECT person_id, {', '.join(aggs)} FROM crow GROUP BY person_id)")
        for rule, code in sorted(needs.categories):
            if code not in cond_codes:
                continue
            status = registry.categories.get(code) and registry.categories[code].category == "status"
            if rule == "status":
                # an open episode says yes; a known sex the status cannot apply to says no
                other = other_sexes(registry.categories.get(code))
                no = f"WHEN {_sex(registry)} IN ({', '.join(map(_s, other))}) THEN FALSE " if other else ""
                feats.append(f"CASE WHEN ca.o_{safe_name(code)} THEN TRUE {no}END AS {feature('h', f'{rule}_{code}')}")
            elif status:      # statuses never enter the condition set
                feats.append(f"FALSE AS {feature('h', f'{rule}_{code}')}")
            else:
                feats.append(f"COALESCE(ca.c_{safe_name(code)}, FALSE) AS {feature('h', f'{rule}_{code}')}")
                # every record's start date counts: a window ("within the last 6 months") asks for the
                # latest, a minimum duration for the earliest (eligibility.evaluate.has._timed)
                for kind, agg in (("first", "on"), ("last", "last")):
                    feats += [f"ca.{agg}_{safe_name(code)} AS {feature(kind, f'{rule}_{code}')}",
                              f"DATE_DIFF('day', ca.{agg}_{safe_name(code)}, {day}) AS {feature('d' + kind, f'{rule}_{code}')}"]
                    names += [feature(kind, f"{rule}_{code}"), feature("d" + kind, f"{rule}_{code}")]
            names.append(feature("h", f"{rule}_{code}"))
        if "diabetes_duration" in needs.concepts:
            feats.append(f"CAST(DATE_DIFF('day', ca.on_type_2_diabetes, {day}) AS DOUBLE) / 365.25 AS v_diabetes_duration")
            names.append("v_diabetes_duration")
    # -- drugs ----------------------------------------------------------------
    med_codes = sorted(code for rule, code in needs.categories if rule == "medication")
    if med_codes:
        local = "|".join(re.escape(w) for w in registry.medication_forms.get("local", ()))
        text = ("LOWER(COALESCE(k.concept_name, '') || ' ' || CASE WHEN REGEXP_MATCHES(COALESCE(d.drug_source_value, ''), "
                "'^[0-9]+$') THEN '' ELSE COALESCE(d.drug_source_value, '') END)")
        rx = ("CASE WHEN k.vocabulary_id = 'RxNorm' THEN k.concept_code WHEN REGEXP_MATCHES(COALESCE(d.drug_source_value, ''), "
              "'^[0-9]+$') THEN d.drug_source_value END")
        flags = []
        for code in med_codes:
            cat = registry.categories.get(code)
            prefixes = tuple(x.upper() for x in cat.atc) if cat else ()
            members = {m.lower() for m in cat.members} if cat else {code.lower()}
            ings = [i for i in registry.ingredients.values() if i.atc.upper().startswith(prefixes or ("\0",))]
            by_member = [i for i in registry.ingredients.values() if i.name.lower() in members]
            tests = []
            rxn = sorted({r for i in ings + by_member for r in i.rxnorm})
            if rxn:
                tests.append(f"{rx} IN ({', '.join(map(_s, rxn))})")
            systemic = "|".join(_words(n)[len('(^|[^a-z0-9])'):-len('([^a-z0-9]|$)')] for i in ings
                                for n in (i.name, *i.synonyms))
            if systemic:
                tests.append(f"(REGEXP_MATCHES({text}, {_s('(^|[^a-z0-9])(' + systemic + ')([^a-z0-9]|$)')})"
                             + (f" AND NOT REGEXP_MATCHES({text}, {_s('(^|[^a-z0-9])(' + local + ')([^a-z0-9]|$)')}))"
                                if local else ")"))
            names_any = "|".join(_words(n)[len('(^|[^a-z0-9])'):-len('([^a-z0-9]|$)')] for n in sorted(members))
            if names_any:
                tests.append(f"REGEXP_MATCHES({text}, {_s('(^|[^a-z0-9])(' + names_any + ')([^a-z0-9]|$)')})")
            flags.append(f"COALESCE({' OR '.join(tests) or 'FALSE'}, FALSE) AS g_{code}")
        ctes.append(f"""drow AS (
  SELECT d.person_id, {', '.join(flags)}
  FROM {_table(p, 'drug_exposure')} AS d LEFT JOIN {_table(p, 'concept')} AS k ON k.concept_id = d.drug_concept_id
  WHERE d.drug_exposure_start_date <= {day}
    AND COALESCE(COALESCE(d.drug_exposure_end_date, CASE WHEN d.days_supply > 0
        THEN ELIG_ADD_DAYS(d.drug_exposure_start_date, d.days_supply - 1) END) >= {day}, TRUE))""")
        ctes.append(f"dagg AS (SELECT person_id, {', '.join(f'BOOL_OR(g_{c}) AS g_{c}' for c in med_codes)} "
                    f"FROM drow GROUP BY person_id)")
        for code in med_codes:
            feats.append(f"COALESCE(da.g_{code}, FALSE) AS {feature('h', f'medication_{code}')}")
            names.append(feature("h", f"medication_{code}"))
    # -- person ---------------------------------------------------------------
    born = ("COALESCE(CAST(pe.birth_datetime AS DATE), CASE WHEN pe.year_of_birth IS NOT NULL AND pe.month_of_birth IS NOT NULL "
            "AND pe.day_of_birth IS NOT NULL THEN CAST(CAST(pe.year_of_birth AS VARCHAR) || '-' || "
            "LPAD(CAST(pe.month_of_birth AS VARCHAR), 2, '0') || '-' || LPAD(CAST(pe.day_of_birth AS VARCHAR), 2, '0') AS DATE) END)")
    if "age" in needs.concepts:
        years = (f"{as_of.year} - EXTRACT(YEAR FROM {born}) - CASE WHEN EXTRACT(MONTH FROM {born}) > {as_of.month} OR "
                 f"(EXTRACT(MONTH FROM {born}) = {as_of.month} AND EXTRACT(DAY FROM {born}) > {as_of.day}) THEN 1 ELSE 0 END")
        feats.append(f"CASE WHEN {born} <= {day} THEN CAST({years} AS DOUBLE) END AS v_age")
        # as the readers word an age from a birth date: '55 years (born 1970-05-01)', or why there is none
        feats.append(f"CASE WHEN {born} <= {day} THEN CAST(CAST({years} AS BIGINT) AS VARCHAR) || ' years (born ' || "
                     f"CAST({born} AS VARCHAR) || ')' END AS o_age")
        feats.append(f"CASE WHEN {born} > {day} THEN 'rejected: born ' || CAST({born} AS VARCHAR) || "
                     f"{_s(', after the as-of date ' + as_of.isoformat())} END AS r_age")
        names += ["v_age", "o_age", "r_age"]
        if needs.age_months:
            feats.append(f"CASE WHEN {born} <= {day} THEN CAST({as_of.year * 12 + as_of.month} - (EXTRACT(YEAR FROM {born}) * 12 + "
                         f"EXTRACT(MONTH FROM {born})) - CASE WHEN EXTRACT(DAY FROM {born}) > {as_of.day} THEN 1 ELSE 0 END "
                         f"AS DOUBLE) / 12.0 END AS m_age")
            names.append("m_age")
            feats.append(f"CASE WHEN {born} <= {day} THEN CAST(DATE_DIFF('day', {born}, {day}) AS DOUBLE) / 365.25 "
                         f"END AS day_age")
            names.append("day_age")
    if needs.sex:
        feats.append(f"{_sex(registry)} AS f_sex")
        names.append("f_sex")
    feats.append(f"COALESCE(dth.death_date <= {day}, FALSE) AS deceased")
    # the date in the reasons ('deceased 2015-10-23'), as the readers give it; the lists are records
    # (a condition is "on the conditions list", a status without an open episode "not recorded")
    feats.append(f"CASE WHEN dth.death_date <= {day} THEN CAST(dth.death_date AS VARCHAR) END AS deceased_on")
    feats.append("TRUE AS record_lists")
    names += ["deceased", "deceased_on", "record_lists"]
    joins = [f"LEFT JOIN (SELECT person_id, MIN(death_date) AS death_date FROM {_table(p, 'death')} AS dsrc GROUP BY person_id) AS dth "
             "ON dth.person_id = pe.person_id"]
    if wanted:
        joins.append("LEFT JOIN latest AS la ON la.person_id = pe.person_id")
    if cond_codes:
        joins.append("LEFT JOIN cagg AS ca ON ca.person_id = pe.person_id")
    if med_codes:
        joins.append("LEFT JOIN dagg AS da ON da.person_id = pe.person_id")
    sql = (("WITH " + ",\n".join(ctes) + "\n") if ctes else "") + \
        f"SELECT {', '.join(feats)} FROM {_table(p, 'person')} AS pe {' '.join(joins)}"
    return sqlglot.parse_one(sql, read="duckdb").transform(_add_days), names


def _add_days(node: exp.Expression) -> exp.Expression:
    """ELIG_ADD_DAYS(date, n) -> a DateAdd node, which sqlglot renders in each dialect's own form
    (BigQuery has no DATE + INT64, Snowflake and SQL Server want DATEADD(DAY, n, date))."""
    if isinstance(node, exp.Anonymous) and node.name.upper() == "ELIG_ADD_DAYS":
        day, n = node.expressions
        return exp.DateAdd(this=day, expression=n, unit=exp.var("DAY"))
    return node
