"""Synthea CSV reader: latest value within the lookback window, codes, conditions, drugs, bad input.

Expected values are computed here independently from the CSV files (plain csv
and sorting) or by hand from the fixture rows, never copied from reader output.
"""
from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Invalid, Measurement
from eligibility.readers import detect_format, read_patients
from eligibility.registry.concepts import default_registry
from shared_paths import SHARED

SYNTHEA = (SHARED / "data/synthea")
CASES = Path(__file__).parent / "cases" / "ehr"
needs_sample = pytest.mark.skipif(not SYNTHEA.exists(), reason="shared Synthea sample not present")


def read(path, as_of, lookback=365, fmt="auto"):
    source = read_patients([path], input_format=fmt, as_of=as_of, lookback_days=lookback,
                           registry=default_registry())
    return {p.id: p for p in source.patients}, source


def expected_latest(loinc: str, as_of: date, lookback: int) -> dict[str, tuple[str, float, bool]]:
    """patient -> (date, value, within window) of the latest row on/before as_of, from plain csv."""
    rows = [r for r in csv.DictReader(open(SYNTHEA / "observations.csv", newline=""))
            if r["CODE"] == loinc and r["DATE"][:10] <= as_of.isoformat()]
    rows.sort(key=lambda r: r["DATE"])
    latest = {r["PATIENT"]: r for r in rows}          # last one per patient wins
    start = (as_of - timedelta(days=lookback)).isoformat()
    return {pid: (r["DATE"][:10], float(r["VALUE"]), r["DATE"][:10] >= start) for pid, r in latest.items()}


@needs_sample
@pytest.mark.parametrize("as_of", [date(2016, 6, 30), date(2019, 12, 31), date(2021, 3, 1), date(2022, 3, 4)])
@pytest.mark.parametrize("concept,loinc", [("hba1c", "4548-4"), ("bmi", "39156-5")])
def test_latest_value_within_window_matches_plain_csv(as_of, concept, loinc):
    patients, _ = read(SYNTHEA, as_of)
    expected = expected_latest(loinc, as_of, 365)
    assert len(patients) == 59
    checked_fresh = checked_stale = 0
    for pid, patient in patients.items():
        got = patient.measurements.get(concept)
        if pid not in expected:
            assert got is None, (pid, got)
            continue
        day, value, fresh = expected[pid]
        if fresh:
            assert isinstance(got, Measurement), (pid, got)
            assert got.value == pytest.approx(value) and got.when.isoformat() == day
            assert got.code == f"LOINC {loinc}"
            checked_fresh += 1
        else:
            assert isinstance(got, Invalid), (pid, got)
            assert day in got.reason and "lookback" in got.reason
            checked_stale += 1
    assert checked_fresh > 0 and checked_stale > 0


@needs_sample
def test_lookback_length_changes_which_values_count():
    as_of = date(2022, 3, 4)
    short, _ = read(SYNTHEA, as_of, lookback=90)
    long_, _ = read(SYNTHEA, as_of, lookback=3650)
    exp_short, exp_long = expected_latest("39156-5", as_of, 90), expected_latest("39156-5", as_of, 3650)
    for pid, (day, value, fresh) in exp_long.items():
        assert isinstance(long_[pid].measurements["bmi"], Measurement) == fresh
        if fresh and not exp_short[pid][2]:
            # same latest row: usable with ten years' lookback, stale with 90 days
            assert long_[pid].measurements["bmi"].when.isoformat() == day
            assert isinstance(short[pid].measurements["bmi"], Invalid)
            assert "90-day lookback" in short[pid].measurements["bmi"].reason


@needs_sample
def test_sample_patient_demographics_conditions_and_drugs():
    pid = "05ac6b28-140c-3bc0-2260-ad0e5a0e03cb"   # born 1949-06-11, T2D 1989-06-17, died 2000-09-19
    before, _ = read(SYNTHEA, date(1999, 1, 1))
    p = before[pid]
    assert p.sex == "female" and p.deceased is None
    assert p.measurements["age"].value == 49
    assert "type_2_diabetes" in p.conditions
    assert p.condition_onset["type_2_diabetes"] == date(1989, 6, 17)
    assert p.measurements["diabetes_duration"].value == pytest.approx((date(1999, 1, 1) - date(1989, 6, 17)).days / 365.25)
    # metformin 1998-08-08 .. 1999-08-14 is current: ATC A10BA02, in the registry's metformin and OAD classes
    assert {"A10BA02", "metformin"} <= p.medications
    reg = default_registry()
    assert reg.drug_class_contains("metformin", "A10BA02")
    assert reg.drug_class_contains("oral_hypoglycemic_agent", "A10BA02")
    assert not any(reg.drug_class_contains("insulin", code) for code in p.medications if code.isupper())
    after, _ = read(SYNTHEA, date(2001, 1, 1))
    assert after[pid].deceased == date(2000, 9, 19)
    alive = after["8a60afd2-aa03-d75c-c7f4-e01c3297825d"]
    assert alive.deceased is None


@needs_sample
def test_pregnancy_only_while_episode_is_open():
    pid = "2dd5eb3b-4de9-5693-0787-4bf2cfd63bca"   # Normal pregnancy 2019-07-29 .. 2020-02-10
    during, _ = read(SYNTHEA, date(2019, 12, 1))
    later, _ = read(SYNTHEA, date(2021, 1, 1))
    assert during[pid].statuses.get("pregnancy") is True
    assert "pregnancy" not in later[pid].statuses


@needs_sample
def test_random_glucose_is_not_fasting_glucose_and_unknown_codes_are_counted():
    patients, source = read(SYNTHEA, date(2022, 3, 4), lookback=36500)
    assert not any("fasting_plasma_glucose" in p.measurements for p in patients.values())
    rows = list(csv.DictReader(open(SYNTHEA / "observations.csv", newline="")))
    n_glucose = sum(r["CODE"] == "2339-0" and r["DATE"][:10] <= "2022-03-04" for r in rows)
    assert source.stats.unknown_codes["LOINC 2339-0"] == n_glucose
    assert source.stats.unknown_codes["LOINC 8302-2"] > 0          # body height: not a registry concept


def test_header_variants_and_bad_values():
    patients, source = read(CASES / "synthea_variants", date(2021, 8, 1))
    assert source.format == "synthea"
    assert list(patients) == ["p1", "p2", "p3"]
    p1 = patients["p1"]
    # 64 mmol/mol (IFCC) on 2021-06-01 is the latest usable HbA1c: 0.09148 * 64 + 2.152 = 8.00672 %
    hba1c = p1.measurements["hba1c"]
    assert hba1c.value == pytest.approx(8.00672) and hba1c.when == date(2021, 6, 1)
    assert hba1c.code == "LOINC 4548-4" and hba1c.raw == "64 mmol/mol"
    assert any("furlongs" in note for note in p1.problems)     # the later 8.1 furlongs is named, not used
    assert "'twenty' is not a number" in p1.measurements["bmi"].reason
    assert "no date" in p1.measurements["body_weight"].reason
    # only LOINC 1558-6 is fasting glucose: 126 mg/dL / 18.016 = 6.9938 mmol/L
    assert p1.measurements["fasting_plasma_glucose"].value == pytest.approx(126 / 18.016, rel=1e-4)
    creat = p1.measurements["serum_creatinine"]
    assert (creat.value, creat.comparator) == (0.1, "<")
    assert p1.measurements["age"].value == 51
    assert p1.sex == "female"
    assert p1.condition_onset["type_2_diabetes"] == date(2012, 2, 1)    # SNOMED row is earlier than the ICD-10 one
    assert p1.measurements["diabetes_duration"].value == pytest.approx(3469 / 365.25)
    assert p1.statuses["pregnancy"] is True
    # naproxen (M01AE02, WHO ATC) is known by its name; the made-up Zorbalimab is not
    assert p1.medications == {"A10BK02", "canagliflozin", "A10BH01", "sitagliptin", "A10BA02", "metformin",
                              "M01AE02", "naproxen"}
    counts = source.stats.unknown_codes
    assert counts["LOINC 99999-9"] == 2 and counts["LOINC 2339-0"] == 1 and counts["LOINC 2345-7"] == 1
    assert counts["SNOMED 999999999"] == 1 and counts["RxNorm 999001"] == 1 and counts["RxNorm 849574"] == 0
    assert any("p9" in note for note in source.stats.notes)

    p2 = patients["p2"]
    assert p2.deceased == date(2020, 5, 1) and p2.sex == "male"
    # registry ids: MI and the entries the code book puts it under (I21 within I20-I25, I00-I99)
    assert {c for c in p2.conditions if ":" not in c} == {"myocardial_infarction", *default_registry().broader["myocardial_infarction"]}
    assert "snomed:22298006" in p2.conditions
    # prednisone tablets are a systemic corticosteroid (H02AB07); a hydrocortisone cream is not (D07, not H02)
    assert p2.medications == {"H02AB07", "prednisone", "hydrocortisone"}
    assert not default_registry().drug_class_contains("systemic_corticosteroid", "hydrocortisone")
    bmi = p2.measurements["bmi"]
    assert isinstance(bmi, Invalid) and "implausible" in bmi.reason and "lookback" in bmi.reason
    p3 = patients["p3"]
    assert isinstance(p3.measurements["age"], Invalid) and "not-a-date" in p3.measurements["age"].reason
    assert p3.sex is None


def test_longer_lookback_uses_older_valid_value_over_implausible_one():
    patients, _ = read(CASES / "synthea_variants", date(2021, 8, 1), lookback=3650)
    p2 = patients["p2"]
    assert p2.measurements["bmi"].value == 31.0 and p2.measurements["bmi"].when == date(2015, 6, 1)
    assert any("400" in note and "implausible" in note for note in p2.problems)


def test_pregnancy_ended_is_not_current():
    patients, _ = read(CASES / "synthea_variants", date(2021, 10, 1))
    assert "pregnancy" not in patients["p1"].statuses


def test_bogus_folder_and_missing_columns(tmp_path):
    with pytest.raises(DataInputError) as err:
        detect_format(CASES / "not_an_export")
    assert "Synthea" in str(err.value) and "OMOP" in str(err.value)
    (tmp_path / "patients.csv").write_text("Id,GENDER\np1,F\n")
    (tmp_path / "observations.csv").write_text("DATE,PATIENT,CODE,VALUE\n")
    with pytest.raises(DataInputError) as err:
        read(tmp_path, date(2021, 1, 1))
    assert "birthdate" in str(err.value) and "patients.csv" in str(err.value)


@needs_sample
@pytest.mark.parametrize("as_of", [date(2019, 12, 31), date(2022, 3, 4)])
def test_duckdb_views_latest_value_agrees_with_reader(as_of):
    """The OMOP-shaped DuckDB views over the Synthea folder give the same latest HbA1c/BMI per patient."""
    duckdb = pytest.importorskip("duckdb")
    from eligibility.engines.long_views import register_long_views

    con = duckdb.connect()
    assert register_long_views(con, SYNTHEA) == "synthea"
    assert con.execute("SELECT count(*) FROM person").fetchone()[0] == 59
    rows = con.execute("""
        SELECT person_id, measurement_concept_id, value_as_number, measurement_date FROM (
          SELECT *, row_number() OVER (PARTITION BY person_id, measurement_concept_id
                                       ORDER BY measurement_date DESC, measurement_datetime DESC) AS k
          FROM measurement
          WHERE measurement_concept_id IN (3004410, 3038553) AND value_as_number IS NOT NULL
            AND measurement_date <= ? AND measurement_date >= ? - INTERVAL 365 DAY) WHERE k = 1
    """, [as_of, as_of]).fetchall()
    sql = {(pid, {3004410: "hba1c", 3038553: "bmi"}[cid]): (value, day) for pid, cid, value, day in rows}
    patients, _ = read(SYNTHEA, as_of)
    python = {(pid, c): (m.value, m.when) for pid, p in patients.items() for c in ("hba1c", "bmi")
              if isinstance(m := p.measurements.get(c), Measurement)}
    assert sql == python and len(sql) > 10
    deaths = dict(con.execute("SELECT person_id, death_date FROM death").fetchall())
    assert deaths["05ac6b28-140c-3bc0-2260-ad0e5a0e03cb"] == date(2000, 9, 19)


@needs_sample
@pytest.mark.parametrize("as_of", [date(2019, 12, 31), date(2022, 3, 4)])
def test_hba1c_and_bmi_outcomes_follow_latest_values(as_of):
    """I1 HbA1c >= 7.0 %, I2 24 <= BMI <= 40: outcomes from plain-csv latest values vs screening."""
    from eligibility.evaluate.plan import compile_plan
    from eligibility.core.ir import Trial

    trial = Trial.from_json((CASES / "trial_long.json").read_text())
    plan = compile_plan(trial, default_registry(), as_of)
    patients, _ = read(SYNTHEA, as_of)
    hba1c, bmi = expected_latest("4548-4", as_of, 365), expected_latest("39156-5", as_of, 365)

    def outcome(latest, test):
        if latest is None or not latest[2]:
            return "unknown"
        return "pass" if test(latest[1]) else "fail"

    seen = set()
    for pid, patient in patients.items():
        got = dict(zip([c.id for c in trial.criteria], plan.evaluate(patient).outcomes))
        want_i1 = outcome(hba1c.get(pid), lambda v: v >= 7.0)
        want_i2 = outcome(bmi.get(pid), lambda v: 24.0 <= v <= 40.0)
        assert (got["I1"], got["I2"]) == (want_i1, want_i2), pid
        seen |= {want_i1, want_i2}
    assert {"pass", "fail", "unknown"} <= seen


def test_cli_rejects_a_folder_that_is_no_export():
    from click.testing import CliRunner

    from eligibility.cli import main

    result = CliRunner().invoke(main, ["screen", str(CASES / "trial_long.json"), str(CASES / "not_an_export"),
                                       "--as-of", "2021-01-01"])
    assert result.exit_code == 1
    assert "E-DATA-FOLDER" in result.output and "Synthea" in result.output and "OMOP" in result.output


def test_views_list_missing_files_and_readers_call_them_unknown(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    import shutil

    from eligibility.engines.long_views import missing_tables, register_long_views

    for name in ("patients.csv", "observations.csv"):
        shutil.copy(CASES / "synthea_variants" / name, tmp_path / name)
    con = duckdb.connect()
    register_long_views(con, tmp_path)
    assert missing_tables(con) == ["condition_occurrence", "drug_exposure"]
    assert con.execute("SELECT count(*) FROM condition_occurrence").fetchone()[0] == 0
    patients, source = read(tmp_path, date(2021, 8, 1))
    assert patients["p1"].conditions is None and patients["p1"].medications is None
    assert "pregnancy" not in patients["p1"].statuses and "diabetes_duration" not in patients["p1"].measurements
    assert any("no conditions.csv" in note for note in source.stats.notes)
    con = duckdb.connect()
    register_long_views(con, CASES / "synthea_variants")
    assert missing_tables(con) == []
    # "<0.1" becomes value 0.1 with the registry's "<" operator concept; 4548-4 the HbA1c concept id
    assert con.execute("SELECT value_as_number, operator_concept_id FROM measurement "
                       "WHERE value_source_value = '<0.1'").fetchall() == [(0.1, 4171756)]
    assert con.execute("SELECT DISTINCT measurement_concept_id FROM measurement "
                       "WHERE measurement_source_value = '4548-4'").fetchall() == [(3004410,)]
    assert con.execute("SELECT gender_concept_id FROM person ORDER BY _row").fetchall() == [(8532,), (8507,), (None,)]
