"""OMOP CDM 5.4 reader: concept ids, unit ids, source-value fallbacks, as-of flips, bad input.

Expected values come from the CSV rows themselves (plain csv + sorting) or from
the hand-written fixture in tests/cases/ehr/omop_variants.
"""
from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest

from eligibility.core.errors import DataInputError
from eligibility.core.ir import Trial
from eligibility.core.patient import Invalid, Measurement
from eligibility.readers import read_patients
from eligibility.registry.concepts import default_registry
from shared_paths import SHARED

OMOP = (SHARED / "data/omop_eunomia")
CASES = Path(__file__).parent / "cases" / "ehr"
needs_sample = pytest.mark.skipif(not OMOP.exists(), reason="shared OMOP sample not present")


def read(path, as_of, lookback=365):
    source = read_patients([path], as_of=as_of, lookback_days=lookback, registry=default_registry())
    return {p.id: p for p in source.patients}, source


def plain_latest(concept_id: str, as_of: date, lookback: int = 365):
    rows = [r for r in csv.DictReader(open(OMOP / "MEASUREMENT.csv", newline=""))
            if r["measurement_concept_id"] == concept_id and r["measurement_date"] <= as_of.isoformat()
            and r["value_as_number"]]
    rows.sort(key=lambda r: r["measurement_date"])
    latest = {r["person_id"]: r for r in rows}
    start = (as_of - timedelta(days=lookback)).isoformat()
    return {pid: (r["measurement_date"], float(r["value_as_number"]), r["unit_source_value"],
                  r["measurement_date"] >= start) for pid, r in latest.items()}


@needs_sample
def test_person_10_hba1c_depends_on_as_of():
    before, source = read(OMOP, date(2020, 12, 31))
    assert source.format == "omop"
    hba1c = before["10"].measurements["hba1c"]
    assert (hba1c.value, hba1c.when, hba1c.unit) == (7.0, date(2020, 10, 12), "%")
    after, _ = read(OMOP, date(2021, 12, 31))
    hba1c = after["10"].measurements["hba1c"]
    assert (hba1c.value, hba1c.when) == (3.9, date(2021, 10, 4))


@needs_sample
def test_person_10_criterion_flips_through_the_evaluator():
    from eligibility.evaluate.plan import compile_plan

    trial = Trial.from_json((CASES / "trial_long.json").read_text())
    outcomes = {}
    for as_of in (date(2020, 12, 31), date(2021, 12, 31)):
        patients, _ = read(OMOP, as_of)
        result = compile_plan(trial, default_registry(), as_of).evaluate(patients["10"])
        outcomes[as_of] = dict(zip([c.id for c in trial.criteria], result.outcomes))
    assert outcomes[date(2020, 12, 31)]["I1"] == "pass"        # HbA1c 7.0 % >= 7.0 %
    assert outcomes[date(2021, 12, 31)]["I1"] == "fail"        # HbA1c 3.9 %
    # T2D since 2011-02-13 (condition 201826): more than a year either way; no type 1 diabetes
    assert outcomes[date(2021, 12, 31)]["I3"] == "pass" and outcomes[date(2021, 12, 31)]["E3"] == "pass"


@needs_sample
@pytest.mark.parametrize("as_of", [date(2015, 1, 1), date(2019, 6, 30), date(2022, 6, 30)])
@pytest.mark.parametrize("concept,omop_id", [("hba1c", "3004410"), ("bmi", "3038553"), ("alt", "3006923")])
def test_every_person_latest_value_matches_plain_csv(as_of, concept, omop_id):
    patients, _ = read(OMOP, as_of)
    expected = plain_latest(omop_id, as_of)
    assert len(patients) == 28
    for pid, patient in patients.items():
        got = patient.measurements.get(concept)
        if pid not in expected:
            assert got is None
            continue
        day, value, unit, fresh = expected[pid]
        if fresh:
            assert isinstance(got, Measurement) and got.value == pytest.approx(value)
            assert got.when.isoformat() == day
            # ALT rows have unit_concept_id 0: the unit comes from unit_source_value
            assert got.unit == unit
        else:
            assert isinstance(got, Invalid) and day in got.reason


@needs_sample
def test_conditions_drugs_and_pregnancy_from_the_sample():
    patients, source = read(OMOP, date(2021, 6, 1))
    p10 = patients["10"]
    assert p10.sex == "male" and p10.measurements["age"].value == 49     # born 1971-08-22
    assert "type_2_diabetes" in p10.conditions and p10.condition_onset["type_2_diabetes"] == date(2011, 2, 13)
    # insulin isophane/regular human (concept 19009384), exposure 2021-04-19 .. 2021-07-05
    assert "A10AB01" in p10.medications
    assert default_registry().drug_class_contains("insulin", "A10AB01")
    p8, _ = read(OMOP, date(2002, 6, 1))
    assert p8["8"].statuses.get("pregnancy") is True                    # 4217975 from 2002-03-19 to 2002-10-22
    assert "pregnancy" not in patients["8"].statuses
    # glucose 2339-0 (concept 3000483) is not fasting glucose; it is counted as unknown
    assert source.stats.unknown_codes["OMOP 3000483"] > 0
    assert not any("fasting_plasma_glucose" in p.measurements for p in patients.values())


def test_fixture_variants_and_bad_values():
    patients, source = read(CASES / "omop_variants", date(2021, 8, 1))
    p1 = patients["1"]
    assert p1.sex == "female" and p1.measurements["age"].value == 61
    # row 2: concept id 0, LOINC 4548-4 in measurement_source_value, unit 8554 (%): latest HbA1c
    assert p1.measurements["hba1c"].value == 7.2 and p1.measurements["hba1c"].code == "LOINC 4548-4"
    assert p1.measurements["alt"].value == 88 and p1.uln["alt"] == 44              # range_high is the ULN
    creat = p1.measurements["serum_creatinine"]
    assert (creat.value, creat.comparator) == (0.3, "<")                         # operator 4171756
    assert "4181412" in p1.measurements["bmi"].reason                            # coded value, no number
    assert "99999" in p1.measurements["body_weight"].reason                      # unit id nobody knows
    assert p1.condition_onset["type_2_diabetes"] == date(2018, 4, 1)             # ICD-10 E11.65 source value
    assert p1.statuses["pregnancy"] is True
    assert p1.medications == {"A10BA02", "metformin"}    # 90 days from 2021-06-01; canagliflozin ended 2020
    p2 = patients["2"]
    assert p2.sex == "male" and p2.deceased == date(2021, 7, 1)
    assert isinstance(p2.measurements["age"], Invalid) and "1955" in p2.measurements["age"].reason
    assert p2.medications == {"A10BJ02", "liraglutide"}
    assert p2.measurements["bmi"].value == 27.5
    assert "no date" in patients["3"].measurements["body_weight"].reason
    creat3 = patients["3"].measurements["serum_creatinine"]                     # operator 0, source "<0.2"
    assert (creat3.value, creat3.comparator) == (0.2, "<")
    counts = source.stats.unknown_codes
    assert counts["OMOP 3036277"] == 1 and counts["OMOP 3000483"] == 1 and counts["OMOP 999"] == 1


def test_metformin_supply_runs_out():
    patients, _ = read(CASES / "omop_variants", date(2021, 9, 1))      # 2021-06-01 + 90 days = 2021-08-29
    assert patients["1"].medications == frozenset()


def test_missing_tables_and_columns(tmp_path):
    (tmp_path / "PERSON.csv").write_text("person_id,gender_concept_id\n1,8507\n")
    (tmp_path / "MEASUREMENT.csv").write_text("person_id,measurement_concept_id\n")
    with pytest.raises(DataInputError) as err:
        read(tmp_path, date(2021, 1, 1))
    assert "measurement_date" in str(err.value)


@pytest.mark.parametrize("folder", [OMOP, OMOP.parent / "synthea", CASES / "omop_variants", CASES / "synthea_variants"],
                         ids=["omop", "synthea", "omop-fixture", "synthea-fixture"])
@pytest.mark.parametrize("as_of", [date(2020, 12, 31), date(2021, 8, 1), date(2021, 12, 31)])
@pytest.mark.parametrize("trial_file", ["trial_long.json", "trial_long2.json"])
@pytest.mark.parametrize("route", ["mapped", "warehouse"])
def test_duckdb_outcomes_equal_python_evaluator(folder, as_of, trial_file, route):
    """Differential: trial_to_sql(schema='omop') on the long views == reader + Python evaluator, per criterion.

    `mapped` is the DuckDB engine's route (each distinct condition record's keys computed by the
    readers' own rules, joined); `warehouse` is the exported SQL, which matches codes only: on a
    Synthea export the readers also read the display names (DESCRIPTION), which it cannot.
    """
    import duckdb

    from eligibility.engines.long_views import register_long_views, register_mappings
    from eligibility.evaluate.plan import compile_plan
    from eligibility.sql.query import trial_to_sql

    if not folder.exists():
        pytest.skip("shared sample not present")
    trial = Trial.from_json((CASES / trial_file).read_text())
    ids = [c.id for c in trial.criteria]
    plan = compile_plan(trial, default_registry(), as_of)
    patients, _ = read(folder, as_of)
    python = {pid: (r.verdict, *r.outcomes) for pid, p in patients.items() if (r := plan.evaluate(p))}
    con = duckdb.connect()
    fmt = register_long_views(con, folder)
    if route == "warehouse" and fmt == "synthea":
        pytest.skip("display names of a Synthea export are matched by the mapped route only")
    if route == "mapped":
        register_mappings(con)
    query = trial_to_sql(trial, schema="omop", as_of=as_of, lookback_days=365, condition_map=route == "mapped")
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    sql = {str(row[names.index("patient_id")]): (row[names.index("verdict")], *(row[names.index(i)] for i in ids))
           for row in cursor.fetchall()}
    assert sql.keys() == python.keys()
    differ = {pid: (python[pid], sql[pid]) for pid in python if python[pid] != sql[pid]}
    assert not differ


@needs_sample
def test_registry_omop_ids_match_the_concept_table():
    """Every OMOP unit id in the registry names that unit in CONCEPT.csv; the codes added for this reader too."""
    from eligibility.registry.units import normalize_unit

    concepts = {r["concept_id"]: r for r in csv.DictReader(open(OMOP / "CONCEPT.csv", newline=""))}
    reg = default_registry()
    ucum_spelled = {"[U]/L": "U/L", "mL/min/(173.10*-2.m2)": "mL/min/{1.73_m2}"}   # UCUM codes vs our spellings
    for unit_id, spelling in reg.omop_units.items():
        row = concepts[str(unit_id)]
        assert row["domain_id"] == "Unit" and row["vocabulary_id"] == "UCUM"
        assert normalize_unit(ucum_spelled.get(row["concept_code"], row["concept_code"])) == normalize_unit(spelling)
    assert concepts["4217975"]["concept_code"] == "72892002" and 4217975 in reg.categories["pregnancy"].omop
    assert concepts["443614"]["concept_code"] in reg.categories["chronic_kidney_disease"].snomed
    assert concepts["3001802"]["concept_code"] in reg.concepts["uacr"].loinc and 3001802 in reg.concepts["uacr"].omop
    for concept in reg.concepts.values():          # measurement ids present in the sample map to their LOINC
        for cid in concept.omop:
            if str(cid) in concepts and concepts[str(cid)]["vocabulary_id"] == "LOINC":
                assert concepts[str(cid)]["concept_code"] in concept.loinc, (concept.id, cid)


LATEST_USABLE = """
    WITH usable AS (
      SELECT m.person_id, mm.concept, m.measurement_date AS day, m.measurement_datetime AS ts,
             uc.scale * m.value_as_number + uc."offset" AS value
      FROM measurement m
      JOIN elig_measurement_map mm ON mm.measurement_concept_id = COALESCE(m.measurement_concept_id, 0)
                                  AND mm.measurement_source_value = COALESCE(m.measurement_source_value, '')
      JOIN elig_unit_conversion uc ON uc.concept = mm.concept AND uc.unit_concept_id = COALESCE(m.unit_concept_id, 0)
                                  AND uc.unit_source_value = COALESCE(m.unit_source_value, '')
      WHERE uc.problem IS NULL AND m.value_as_number IS NOT NULL AND m.measurement_date <= $as_of
        AND uc.scale * m.value_as_number + uc."offset" BETWEEN uc.plausible_low AND uc.plausible_high)
    SELECT person_id, concept, value, day FROM (
      SELECT *, row_number() OVER (PARTITION BY person_id, concept ORDER BY day DESC, ts DESC NULLS LAST) AS k
      FROM usable) WHERE k = 1 AND day >= $as_of - INTERVAL 365 DAY
"""


@pytest.mark.parametrize("folder", [OMOP, OMOP.parent / "synthea", CASES / "omop_variants"],
                         ids=["omop", "synthea", "fixture"])
@pytest.mark.parametrize("as_of", [date(2016, 6, 30), date(2021, 8, 1)])
def test_mapping_tables_reproduce_the_readers(folder, as_of):
    """Views + elig_* mapping tables in SQL give every usable value, condition and current drug the reader gives."""
    duckdb = pytest.importorskip("duckdb")
    from eligibility.engines.long_views import register_long_views, register_mappings

    if not folder.exists():
        pytest.skip("shared sample not present")
    con = duckdb.connect()
    register_long_views(con, folder)
    register_mappings(con)
    sql = {(pid, c): (pytest.approx(v), d) for pid, c, v, d in con.execute(LATEST_USABLE, {"as_of": as_of}).fetchall()}
    patients, _ = read(folder, as_of)
    python = {(pid, c): (m.value, m.when) for pid, p in patients.items() for c, m in p.measurements.items()
              if isinstance(m, Measurement) and m.code != "birth date" and c != "diabetes_duration"}
    assert sql == python
    conditions = con.execute("""SELECT c.person_id, list(DISTINCT cm.category) FROM condition_occurrence c
        JOIN elig_condition_map cm ON cm.condition_concept_id = COALESCE(c.condition_concept_id, 0)
         AND cm.condition_source_value = COALESCE(c.condition_source_value, '')
         AND cm.condition_display = COALESCE(c.condition_display, '')
        JOIN registry_status s ON s.id = cm.category
        WHERE c.condition_start_date <= $as_of AND (NOT s.status OR c.condition_end_date IS NULL
              OR c.condition_end_date >= $as_of) GROUP BY 1""".replace(
        "registry_status", "(SELECT * FROM (VALUES " + ", ".join(
            f"('{k}', {str(v.category == 'status').lower()})" for k, v in default_registry().categories.items())
        + ") t(id, status))"), {"as_of": as_of}).fetchall()
    sql_conditions = {pid: set(ids) for pid, ids in conditions}
    # registry ids only: the code keys (icd10cm:..., snomed:...) are not registry entries
    py_conditions = {pid: {c for c in p.conditions if ":" not in c} | set(p.statuses) for pid, p in patients.items()
                     if p.conditions or p.statuses}
    py_conditions = {pid: ids for pid, ids in py_conditions.items() if ids}
    assert sql_conditions == py_conditions
    drugs = con.execute("""SELECT d.person_id, list(DISTINCT dm.token) FROM drug_exposure d
        JOIN elig_drug_map dm ON dm.drug_concept_id = COALESCE(d.drug_concept_id, 0)
         AND dm.drug_source_value = COALESCE(d.drug_source_value, '')
        WHERE d.drug_exposure_start_date <= $as_of AND COALESCE(d.drug_exposure_end_date,
              CASE WHEN d.days_supply > 0 THEN d.drug_exposure_start_date + CAST(d.days_supply - 1 AS INTEGER) END,
              DATE '9999-12-31') >= $as_of
        GROUP BY 1""", {"as_of": as_of}).fetchall()
    assert {pid: set(t) for pid, t in drugs} == {pid: set(p.medications) for pid, p in patients.items() if p.medications}
