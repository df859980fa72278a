"""DuckDB views that present long EHR extracts as OMOP CDM 5.4 tables.

The SQL engine screens OMOP-shaped tables (`trial_to_sql(..., schema="omop")`).
`register_long_views(con, folder)` makes a folder of CSVs look like that schema
in a DuckDB connection, without loading anything into Python:

- an OMOP CDM folder (PERSON.csv, MEASUREMENT.csv, ...): each table as a view
  with the CDM column names and types (columns a file lacks are NULL);
- a Synthea export (patients.csv, observations.csv, conditions.csv,
  medications.csv): mapped the way an OMOP ETL would map it.  Codes the
  registry knows become its OMOP concept ids (LOINC -> measurement_concept_id,
  SNOMED -> condition_concept_id), every code stays in *_source_value, the
  unit spelling in unit_source_value (unit_concept_id 0), a leading comparator
  (`<0.1`) becomes operator_concept_id; each RxNorm drug gets a CONCEPT row
  (concept_id = -RxCUI, so never an Athena id) carrying its description.

Every view has the same columns whichever the source, so the engine's query
does not care.  A missing conditions / medications file becomes an empty view
and is listed by `missing_tables(con)` (table `elig_tables`): the readers call
those facts unknown, so an engine must not read that emptiness as FALSE.

What the Python readers do with these rows (eligibility.readers.observations),
and so what the engine's query must reproduce for the two to agree: per
patient and concept, the value is the latest row on or before as-of that is
*usable* (a number, a unit that converts, inside the concept's plausible
range), provided it lies within the lookback window; unusable rows never
hide an older usable one; if no usable row is in the window the concept is
unknown.  Ties on one date go to the later timestamp.  A measurement maps to
a concept by measurement_concept_id (registry `omop` ids), else by
measurement_source_value as LOINC; unit_concept_id 0 means unit_source_value.  `person` has `_row`, the 1-based input order, and person_id is
VARCHAR throughout (Synthea ids are UUIDs; the Python readers use the same
strings as patient ids).
"""
from __future__ import annotations

import csv
from pathlib import Path

from eligibility.core.errors import DataInputError
from eligibility.readers import detect_format
from eligibility.readers.csv_tables import find_table
from eligibility.registry.concepts import Registry, default_registry

# OMOP CDM 5.4 columns the views provide, with their DuckDB types.
TABLES: dict[str, dict[str, str]] = {
    "person": {"person_id": "VARCHAR", "gender_concept_id": "BIGINT", "year_of_birth": "INTEGER",
               "month_of_birth": "INTEGER", "day_of_birth": "INTEGER", "birth_datetime": "TIMESTAMP",
               "person_source_value": "VARCHAR", "gender_source_value": "VARCHAR"},
    "death": {"person_id": "VARCHAR", "death_date": "DATE"},
    "measurement": {"person_id": "VARCHAR", "measurement_concept_id": "BIGINT", "measurement_date": "DATE",
                    "measurement_datetime": "TIMESTAMP", "operator_concept_id": "BIGINT",
                    "value_as_number": "DOUBLE", "value_as_concept_id": "BIGINT", "unit_concept_id": "BIGINT",
                    "range_low": "DOUBLE", "range_high": "DOUBLE", "measurement_source_value": "VARCHAR",
                    "unit_source_value": "VARCHAR", "value_source_value": "VARCHAR",
                    # not a CDM column: the value as the readers write it in explanations (OMOP: the
                    # double as Python prints it, '6.0'; Synthea: the cell, '<0.1'), and how the
                    # reader names the record's code where it is not the concept id ('LOINC 4548-4')
                    "value_text": "VARCHAR", "source_label": "VARCHAR"},
    "condition_occurrence": {"person_id": "VARCHAR", "condition_concept_id": "BIGINT",
                             "condition_start_date": "DATE", "condition_end_date": "DATE",
                             "condition_source_value": "VARCHAR",
                             # not a CDM column: the record's display name where the export has one
                             # (Synthea DESCRIPTION); OMOP names come from CONCEPT
                             "condition_display": "VARCHAR"},
    "drug_exposure": {"person_id": "VARCHAR", "drug_concept_id": "BIGINT", "drug_exposure_start_date": "DATE",
                      "drug_exposure_end_date": "DATE", "days_supply": "INTEGER", "drug_source_value": "VARCHAR"},
    "concept": {"concept_id": "BIGINT", "concept_name": "VARCHAR", "domain_id": "VARCHAR",
                "vocabulary_id": "VARCHAR", "concept_class_id": "VARCHAR", "concept_code": "VARCHAR"},
}
_REQUIRED = {"person": "person", "measurement": "measurement"}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _header(path: Path) -> tuple[list[str], str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        first = handle.readline()
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    return next(csv.reader([first], delimiter=delimiter), []), delimiter


def _scan(path: Path, *required: str) -> tuple[str, dict[str, str]]:
    """A DuckDB scan of a CSV file as text, and lower-case header -> quoted column."""
    header, delimiter = _header(path)
    missing = [r for r in required if r not in {h.strip().lower() for h in header}]
    if missing:
        raise DataInputError(f"{path.name}: missing column(s) {', '.join(missing)}", code="E-DATA-COLUMNS",
                             file=str(path), line=1)
    scan = (f"read_csv({_q(str(path))}, header=true, all_varchar=true, delim={_q(delimiter)}, quote='\"', "
            f"escape='\"', null_padding=true)")
    return scan, {h.strip().lower(): _ident(h) for h in reversed(header)}


def _typed(expr: str, kind: str) -> str:
    if kind == "VARCHAR":
        return f"NULLIF(TRIM({expr}), '')"
    if kind == "DATE":
        return f"TRY_CAST(SUBSTR(TRIM({expr}), 1, 10) AS DATE)"
    if kind == "TIMESTAMP":
        return f"TRY_CAST(TRIM({expr}) AS TIMESTAMP)"      # DuckDB reads ISO 8601 with T and Z
    return f"TRY_CAST(NULLIF(TRIM({expr}), '') AS {kind})"


def _select(table: str, exprs: dict[str, str], source: str, extra: str = "") -> str:
    cols = [f"{exprs[c] if c in exprs else f'CAST(NULL AS {kind})'} AS {c}" for c, kind in TABLES[table].items()]
    return f"SELECT {', '.join(cols)}{extra} FROM {source}"


def register_long_views(con, folder: str | Path, fmt: str = "auto", *, registry: Registry | None = None) -> str:
    """Create the OMOP-shaped views in `con` for a Synthea or OMOP folder; returns the format."""
    folder = Path(folder)
    fmt = detect_format(folder) if fmt == "auto" else fmt
    registry = registry or default_registry()
    if fmt == "omop":
        _omop_views(con, folder)
    elif fmt == "synthea":
        _synthea_views(con, folder, registry)
    else:
        raise DataInputError(f"{folder}: long views need a Synthea or OMOP CDM folder, not {fmt}",
                             code="E-DATA-FORMAT", file=str(folder))
    names = {"omop": {"condition_occurrence": "condition_occurrence", "drug_exposure": "drug_exposure"},
             "synthea": {"condition_occurrence": "conditions", "drug_exposure": "medications"}}[fmt]
    con.execute("CREATE OR REPLACE TEMP TABLE elig_tables (table_name VARCHAR, present BOOLEAN)")
    con.executemany("INSERT INTO elig_tables VALUES (?, ?)",
                    [(view, find_table(folder, file) is not None) for view, file in names.items()])
    return fmt


def missing_tables(con) -> list[str]:
    """Views standing in for a file the folder does not have.

    An empty condition_occurrence view then means "nothing known", not "no
    conditions": the Python readers report such conditions / medications as
    unknown, and a query that reads the empty view as FALSE would not agree.
    """
    return [name for name, present in con.execute("SELECT * FROM elig_tables ORDER BY 1").fetchall() if not present]


def _omop_views(con, folder: Path) -> None:
    for table in TABLES:
        path = find_table(folder, table)
        if path is None:
            if table in _REQUIRED:
                raise DataInputError(f"{folder}: OMOP CDM folder without {table.upper()}.csv",
                                     code="E-DATA-MISSING", file=str(folder))
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {_select(table, {}, '(SELECT 1) AS empty')} WHERE false")
            continue
        scan, cols = _scan(path, *(("person_id",) if table != "concept" else ("concept_id",)))
        exprs = {c: _typed(cols[c], kind) for c, kind in TABLES[table].items() if c in cols}
        if table == "death" and "death_date" not in cols and "death_datetime" in cols:
            exprs["death_date"] = _typed(cols["death_datetime"], "DATE")
        if table == "measurement":
            exprs["value_text"] = f"CAST({exprs.get('value_as_number', 'CAST(NULL AS DOUBLE)')} AS VARCHAR)"
        if table == "person" and "birth_datetime" in cols:
            exprs["birth_datetime"] = _typed(cols["birth_datetime"], "TIMESTAMP")
        extra = ", CAST(row_number() OVER () AS BIGINT) AS _row" if table == "person" else ""
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {_select(table, exprs, scan, extra)}")


def _mapping_tables(con, registry: Registry) -> None:
    loinc = [(code, c.omop[0]) for c in registry.concepts.values() if c.omop for code in c.loinc]
    snomed = [(code, cat.omop[0]) for cat in registry.categories.values() if cat.omop for code in cat.snomed]
    genders = [(sex, cid) for cid, sex in registry.omop_genders.items()]
    for name, rows, types in (("_elig_loinc", loinc, "VARCHAR, BIGINT"), ("_elig_snomed", snomed, "VARCHAR, BIGINT"),
                              ("_elig_gender", genders, "VARCHAR, BIGINT")):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (map_code {types.split(',')[0]}, concept_id BIGINT)")
        if rows:
            con.executemany(f"INSERT INTO {name} VALUES (?, ?)", rows)


def _need(folder: Path, name: str) -> Path:
    path = find_table(folder, name)
    if path is None:
        raise DataInputError(f"{folder}: Synthea export without {name}.csv", code="E-DATA-MISSING", file=str(folder))
    return path


def _col(cols: dict[str, str], name: str) -> str:
    return cols.get(name, "CAST(NULL AS VARCHAR)")


def _synthea_views(con, folder: Path, registry: Registry) -> None:
    _mapping_tables(con, registry)
    scan, c = _scan(_need(folder, "patients"), "id", "birthdate")
    birth = _typed(_col(c, "birthdate"), "DATE")
    sex = f"CASE LOWER(TRIM({_col(c, 'gender')})) WHEN 'f' THEN 'female' WHEN 'female' THEN 'female' " \
          f"WHEN 'm' THEN 'male' WHEN 'male' THEN 'male' END"
    con.execute(f"""CREATE OR REPLACE VIEW person AS
        SELECT {_typed(c['id'], 'VARCHAR')} AS person_id, g.concept_id AS gender_concept_id,
               year({birth}) AS year_of_birth, month({birth}) AS month_of_birth, day({birth}) AS day_of_birth,
               CAST({birth} AS TIMESTAMP) AS birth_datetime, {_typed(c['id'], 'VARCHAR')} AS person_source_value,
               {_typed(_col(c, 'gender'), 'VARCHAR')} AS gender_source_value, p._row
        FROM (SELECT *, CAST(row_number() OVER () AS BIGINT) AS _row FROM {scan}) AS p
        LEFT JOIN _elig_gender AS g ON g.map_code = {sex}""")
    con.execute(f"""CREATE OR REPLACE VIEW death AS
        SELECT {_typed(c['id'], 'VARCHAR')} AS person_id, {_typed(_col(c, 'deathdate'), 'DATE')} AS death_date
        FROM {scan} WHERE {_typed(_col(c, 'deathdate'), 'DATE')} IS NOT NULL""")

    scan, c = _scan(_need(folder, "observations"), "date", "patient", "code", "value")
    value = f"TRIM({_col(c, 'value')})"
    # a leading comparator ("<0.1") -> the registry's operator concept id, longest spelling first
    ops = sorted(((o, cid) for cid, o in registry.omop_operators.items() if o != "="), key=lambda x: -len(x[0]))
    op = "CASE " + " ".join(f"WHEN starts_with({value}, {_q(o)}) THEN {cid}" for o, cid in ops) + " ELSE 0 END" \
        if ops else "0"
    number = f"TRY_CAST(LTRIM({value}, '<>=') AS DOUBLE)"
    con.execute(f"""CREATE OR REPLACE VIEW measurement AS
        SELECT {_typed(c['patient'], 'VARCHAR')} AS person_id, COALESCE(l.concept_id, 0) AS measurement_concept_id,
               {_typed(c['date'], 'DATE')} AS measurement_date, {_typed(c['date'], 'TIMESTAMP')} AS measurement_datetime,
               CAST({op} AS BIGINT) AS operator_concept_id, {number} AS value_as_number,
               CAST(0 AS BIGINT) AS value_as_concept_id, CAST(0 AS BIGINT) AS unit_concept_id,
               CAST(NULL AS DOUBLE) AS range_low, CAST(NULL AS DOUBLE) AS range_high,
               {_typed(c['code'], 'VARCHAR')} AS measurement_source_value,
               {_typed(_col(c, 'units'), 'VARCHAR')} AS unit_source_value, NULLIF({value}, '') AS value_source_value,
               NULLIF({value}, '') AS value_text, 'LOINC ' || {_typed(c['code'], 'VARCHAR')} AS source_label
        FROM {scan} AS s
        LEFT JOIN _elig_loinc AS l ON l.map_code = TRIM(s.{c['code']})""")

    path = find_table(folder, "conditions")
    if path is None:
        con.execute(f"CREATE OR REPLACE VIEW condition_occurrence AS "
                    f"{_select('condition_occurrence', {}, '(SELECT 1) AS empty')} WHERE false")
    else:
        scan, c = _scan(path, "start", "patient", "code")
        con.execute(f"""CREATE OR REPLACE VIEW condition_occurrence AS
            SELECT {_typed(c['patient'], 'VARCHAR')} AS person_id, COALESCE(m.concept_id, 0) AS condition_concept_id,
                   {_typed(c['start'], 'DATE')} AS condition_start_date, {_typed(_col(c, 'stop'), 'DATE')} AS condition_end_date,
                   {_typed(c['code'], 'VARCHAR')} AS condition_source_value,
                   {_typed(_col(c, 'description'), 'VARCHAR')} AS condition_display
            FROM {scan} AS s LEFT JOIN _elig_snomed AS m ON m.map_code = TRIM(s.{c['code']})""")

    path = find_table(folder, "medications")
    if path is None:
        con.execute(f"CREATE OR REPLACE VIEW drug_exposure AS "
                    f"{_select('drug_exposure', {}, '(SELECT 1) AS empty')} WHERE false")
        con.execute(f"CREATE OR REPLACE VIEW concept AS {_select('concept', {}, '(SELECT 1) AS empty')} WHERE false")
        return
    scan, c = _scan(path, "start", "patient", "code")
    drug_id = f"-TRY_CAST(TRIM({c['code']}) AS BIGINT)"
    con.execute(f"""CREATE OR REPLACE VIEW drug_exposure AS
        SELECT {_typed(c['patient'], 'VARCHAR')} AS person_id, COALESCE({drug_id}, 0) AS drug_concept_id,
               {_typed(c['start'], 'DATE')} AS drug_exposure_start_date,
               {_typed(_col(c, 'stop'), 'DATE')} AS drug_exposure_end_date, CAST(NULL AS INTEGER) AS days_supply,
               {_typed(c['code'], 'VARCHAR')} AS drug_source_value
        FROM {scan}""")
    con.execute(f"""CREATE OR REPLACE VIEW concept AS
        SELECT DISTINCT ON ({drug_id}) {drug_id} AS concept_id, {_typed(_col(c, 'description'), 'VARCHAR')} AS concept_name,
               'Drug' AS domain_id, 'RxNorm' AS vocabulary_id, 'Clinical Drug' AS concept_class_id,
               {_typed(c['code'], 'VARCHAR')} AS concept_code
        FROM {scan} WHERE {drug_id} IS NOT NULL""")


# -- code and unit mappings, computed once per distinct code with the readers' own rules ----
class _ConceptView:
    """CONCEPT rows as the OMOP reader sees them: id -> (name, vocabulary, code)."""

    def __init__(self, con, ids: set[int]) -> None:
        self.rows: dict[int, tuple[str, str, str]] = {}
        wanted = sorted(i for i in ids if i)
        for start in range(0, len(wanted), 5000):
            chunk = wanted[start:start + 5000]
            marks = ", ".join("?" * len(chunk))
            for cid, name, vocab, code in con.execute(
                    f"SELECT concept_id, concept_name, vocabulary_id, concept_code FROM concept "
                    f"WHERE concept_id IN ({marks})", chunk).fetchall():
                self.rows[cid] = (name or "", vocab or "", code or "")

    def get(self, cid: int) -> tuple[str, str, str] | None:
        return self.rows.get(cid)


def register_mappings(con, registry: Registry | None = None) -> None:
    """Tables that resolve the views' codes exactly as the Python readers do.

    - elig_measurement_map(measurement_concept_id, measurement_source_value, concept, code)
    - elig_unit_conversion(concept, unit_concept_id, unit_source_value, unit, scale, "offset",
      plausible_low, plausible_high, problem): canonical = scale * value_as_number + offset;
      `problem` (unknown unit, wrong dimension) makes the row unusable
    - elig_condition_map(condition_concept_id, condition_source_value, category, code)
    - elig_drug_map(drug_concept_id, drug_source_value, token): the ATC codes and lower-case
      ingredient names the drug adds to a patient's medications (none for unknown drugs)

    They are small (one row per distinct code) and computed with eligibility.readers' code map
    and eligibility.registry.units.conversion, so the SQL engine can join them instead of re-deriving
    the mapping rules.  NULL keys are stored as '' / 0 (join with COALESCE).
    """
    from eligibility.readers.observations import code_map
    from eligibility.readers.omop import condition_ids, drug_identity, omop_unit
    from eligibility.core.errors import UnitError
    from eligibility.registry.units import conversion

    registry = registry or default_registry()
    codes = code_map(registry)
    m_pairs = con.execute("SELECT DISTINCT COALESCE(measurement_concept_id, 0), COALESCE(measurement_source_value, '')"
                          " FROM measurement").fetchall()
    c_pairs = con.execute("SELECT DISTINCT COALESCE(condition_concept_id, 0), COALESCE(condition_source_value, ''),"
                          " COALESCE(condition_display, '') FROM condition_occurrence").fetchall()
    d_pairs = con.execute("SELECT DISTINCT COALESCE(drug_concept_id, 0), COALESCE(drug_source_value, '')"
                          " FROM drug_exposure").fetchall()
    u_pairs = con.execute("SELECT DISTINCT COALESCE(unit_concept_id, 0), COALESCE(unit_source_value, '')"
                          " FROM measurement").fetchall()
    concepts = _ConceptView(con, {c for c, _, _ in c_pairs} | {d for d, _ in d_pairs} | {u for u, _ in u_pairs})

    measurements = []
    for cid, source in m_pairs:
        concept = codes.omop_measurement.get(cid)
        if concept is not None:
            measurements.append((cid, source, concept, f"OMOP {cid}"))
        elif (concept := codes.loinc.get(source)) is not None:
            measurements.append((cid, source, concept, f"LOINC {source}"))
    conversions = []
    for concept in sorted({m[2] for m in measurements}):
        low, high = registry.concepts[concept].plausible or (None, None)
        for unit_id, source in u_pairs:
            unit = omop_unit(unit_id, source, registry.omop_units, concepts).strip() or None
            try:
                conv, problem = conversion(concept, unit, registry), None
            except UnitError as exc:
                conv, problem = None, exc.message
            conversions.append((concept, unit_id, source, unit, conv.scale if conv else None,
                                conv.offset if conv else None, low, high, problem))
    conditions = []
    for cid, source, display in c_pairs:
        ids, label = condition_ids(codes, str(cid), source, concepts, display or None)
        conditions += [(cid, source, display, category, label) for category in ids]
    drugs = []
    for cid, source in d_pairs:
        _, rxnorm, text = drug_identity(str(cid), source, concepts)
        drugs += [(cid, source, token) for token in dict.fromkeys(codes.drug_tokens(rxnorm, text))]

    for name, columns, rows in (
        ("elig_measurement_map", "measurement_concept_id BIGINT, measurement_source_value VARCHAR, concept VARCHAR, "
         "code VARCHAR", measurements),
        ("elig_unit_conversion", 'concept VARCHAR, unit_concept_id BIGINT, unit_source_value VARCHAR, unit VARCHAR, '
         'scale DOUBLE, "offset" DOUBLE, plausible_low DOUBLE, plausible_high DOUBLE, problem VARCHAR', conversions),
        ("elig_condition_map", "condition_concept_id BIGINT, condition_source_value VARCHAR, "
         "condition_display VARCHAR, category VARCHAR, code VARCHAR", conditions),
        ("elig_drug_map", "drug_concept_id BIGINT, drug_source_value VARCHAR, token VARCHAR", drugs),
    ):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} ({columns})")
        if rows:
            con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})", rows)
