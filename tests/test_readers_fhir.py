"""FHIR R4 reader: the sample Bundle agrees with the Synthea CSV rows of the same patient;
components, comparators, coded values, conditions and medication requests from a fixture Bundle.

Documented differences between the two exports of one Synthea patient:
- FHIR values carry more decimals (HbA1c 6.02 vs 6.0 in the CSV): compared to 0.05;
- FHIR timestamps are local (-08:00) and taken as written, the CSV's observation
  times are UTC, so a CSV observation date may be one day later;
- FHIR MedicationRequests have no stop date: a stopped request is not current.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from eligibility.core.errors import DataInputError
from eligibility.core.ir import Trial
from eligibility.core.patient import Invalid, Measurement
from eligibility.readers import read_patients
from eligibility.registry.concepts import default_registry
from shared_paths import SHARED

SYNTHEA = (SHARED / "data/synthea")
BUNDLE = SYNTHEA / "fhir_bundle_8a60afd2.json"
PID = "8a60afd2-aa03-d75c-c7f4-e01c3297825d"
CASES = Path(__file__).parent / "cases" / "ehr"
needs_sample = pytest.mark.skipif(not BUNDLE.exists(), reason="shared FHIR sample not present")


def read(paths, as_of, lookback=365, fmt="auto"):
    source = read_patients(paths, input_format=fmt, as_of=as_of, lookback_days=lookback, registry=default_registry())
    return {p.id: p for p in source.patients}, source


AS_OF_DATES = [date(2014, 6, 1), date(2017, 1, 1), date(2019, 6, 30), date(2020, 3, 1), date(2022, 3, 4)]


@needs_sample
@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_bundle_matches_synthea_csv_rows_of_the_same_patient(as_of):
    fhir, source = read([BUNDLE], as_of)
    assert source.format == "fhir" and list(fhir) == [PID]
    csv_patients, _ = read([SYNTHEA], as_of, fmt="synthea")
    a, b = fhir[PID], csv_patients[PID]
    assert (a.sex, a.deceased, a.conditions, a.condition_onset, a.medications, a.statuses) == (
        b.sex, b.deceased, b.conditions, b.condition_onset, b.medications, b.statuses)
    assert a.measurements.keys() == b.measurements.keys()
    assert a.measurements  # BMI, BP, weight ... in every chosen year
    for concept, x in a.measurements.items():
        y = b.measurements[concept]
        assert type(x) is type(y), (concept, x, y)
        if isinstance(x, Measurement):
            assert x.value == pytest.approx(y.value, abs=0.05), concept
            assert x.code == y.code and x.unit == y.unit
            assert 0 <= (y.when - x.when).days <= 1, (concept, x.when, y.when)
        else:
            assert ("lookback" in x.reason) == ("lookback" in y.reason)


@needs_sample
@pytest.mark.parametrize("as_of", AS_OF_DATES)
def test_bundle_and_csv_give_the_same_outcomes(as_of):
    from eligibility.evaluate.plan import compile_plan

    trial = Trial.from_json((CASES / "trial_long.json").read_text())
    plan = compile_plan(trial, default_registry(), as_of)
    fhir, _ = read([BUNDLE], as_of)
    csv_patients, _ = read([SYNTHEA], as_of, fmt="synthea")
    a, b = plan.evaluate(fhir[PID]), plan.evaluate(csv_patients[PID])
    assert (a.verdict, a.outcomes) == (b.verdict, b.outcomes)


@needs_sample
def test_bundle_hba1c_is_latest_within_window():
    fhir, _ = read([BUNDLE], date(2022, 3, 4))
    hba1c = fhir[PID].measurements["hba1c"]
    # HbA1c 6.02 % on 2021-12-18 (local time -08:00; 2021-12-19 06:21 UTC in observations.csv)
    assert (hba1c.value, hba1c.when, hba1c.unit) == (6.02, date(2021, 12, 18), "%")
    stale, _ = read([BUNDLE], date(2022, 3, 4), lookback=30)
    assert isinstance(stale[PID].measurements["hba1c"], Invalid)
    assert "2021-12-18" in stale[PID].measurements["hba1c"].reason


def test_fixture_bundle():
    patients, source = read([CASES / "fhir_cases.json"], date(2021, 8, 1))
    f1, f2 = patients["f1"], patients["f2"]
    assert f1.sex == "female" and f1.measurements["age"].value == 41          # born 1980-02-29
    m = f1.measurements
    assert (m["systolic_bp"].value, m["diastolic_bp"].value) == (142, 91)      # panel 85354-9 components
    assert m["systolic_bp"].code == "LOINC 8480-6" and m["systolic_bp"].when == date(2021, 5, 1)
    # <0.1 nmol/L C-peptide: 0.1 × 3.0203 ng/mL, comparator kept
    assert m["c_peptide"].value == pytest.approx(0.30203, rel=1e-4) and m["c_peptide"].comparator == "<"
    assert (m["hba1c"].value, m["hba1c"].comparator) == (5.0, "<")             # valueString "<5.0" is the latest
    assert "'obese' is not a number" in m["bmi"].reason
    assert "no date" in m["body_weight"].reason
    assert m["alt"].value == 120 and f1.uln["alt"] == 35
    assert m["serum_creatinine"].value == pytest.approx(97 / 88.42, rel=1e-4)
    assert "hemoglobin" not in m                                                 # entered-in-error
    # refuted T1D is not a condition; the code book puts each under broader entries (E11 in E08-E13 diabetes
    # mellitus, I10 in I00-I99 cardiovascular disease), which tests/test_vocabulary.py checks
    broader = default_registry().broader
    assert {c for c in f1.conditions if ":" not in c} == {
        "type_2_diabetes", "hypertension", *broader["type_2_diabetes"], *broader["hypertension"]}
    assert "icd10cm:E10" not in f1.conditions and "icd10cm:E11" in f1.conditions
    assert m["diabetes_duration"].value == pytest.approx(884 / 365.25)
    assert "pregnancy" not in f1.statuses                                        # abated 2020-09-01
    assert f1.medications == {"A10BJ06", "semaglutide", "A10BA02", "metformin"}
    assert f2.deceased == date(2021, 2, 1) and f2.sex == "male"
    assert source.stats.unknown_codes["LOINC 8302-2"] == 1
    assert "LOINC 85354-9" not in source.stats.unknown_codes
    later, _ = read([CASES / "fhir_cases.json"], date(2021, 10, 1))
    assert {"A10BH01", "sitagliptin"} <= later["f1"].medications              # authored 2021-09-01, by name


def test_pregnancy_during_episode():
    patients, _ = read([CASES / "fhir_cases.json"], date(2020, 5, 1))
    assert patients["f1"].statuses["pregnancy"] is True


def test_ndjson_and_broken_json(tmp_path):
    lines = ['{"resourceType": "Patient", "id": "n1", "gender": "male", "birthDate": "2000-01-01"}',
             '{"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/n1"},'
             ' "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]},'
             ' "effectiveDateTime": "2021-01-01", "valueQuantity": {"value": 22.5, "code": "kg/m2",'
             ' "system": "http://unitsofmeasure.org"}}']
    (tmp_path / "export.ndjson").write_text("\n".join(lines) + "\n")
    patients, _ = read([tmp_path / "export.ndjson"], date(2021, 6, 1))
    assert patients["n1"].measurements["bmi"].value == 22.5
    with pytest.raises(DataInputError) as err:
        read([CASES / "fhir_broken.json"], date(2021, 6, 1))
    assert err.value.line == 2 and "fhir_broken.json" in str(err.value)


def test_malformed_resources_never_crash(tmp_path):
    """Odd shapes (wrong JSON types where FHIR expects objects, lists or strings) are skipped or unknown."""
    import json

    odd = [
        {"resourceType": "Patient", "id": "m1", "birthDate": 19800101, "gender": ["female"]},
        {"resourceType": "Observation", "subject": "m1", "code": "4548-4", "valueQuantity": 7},
        {"resourceType": "Observation", "subject": {"reference": "Patient/m1"}, "effectiveDateTime": "2021-01-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": ["4548-4"]}]}},
        {"resourceType": "Observation", "subject": {"reference": "Patient/m1"}, "effectiveDateTime": "2021-01-01",
         "code": {"coding": "4548-4"}, "component": "none"},
        {"resourceType": "Observation", "subject": {"reference": "Patient/m1"}, "effectiveDateTime": "2021-01-01",
         "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
         "valueQuantity": {"value": "7.1", "comparator": 5, "code": 3, "unit": "%"}, "referenceRange": ["x"]},
        {"resourceType": "Observation", "subject": {"reference": "Patient/m1"}, "effectiveDateTime": 20210101,
         "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]}, "valueQuantity": {"value": True}},
        {"resourceType": "Condition", "subject": {"reference": "Patient/m1"}, "code": {"coding": [{"code": 44054006}]},
         "onsetDateTime": ["2020"]},
        {"resourceType": "MedicationRequest", "status": "active", "subject": {"reference": "Patient/m1"},
         "authoredOn": 2020, "medicationCodeableConcept": {"coding": [{"system": "x", "code": {}}], "text": 5},
         "dispenseRequest": "soon", "dosageInstruction": [None, "daily"]},
    ]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in odd] + ["junk", {}]}))
    patients, source = read([path], date(2021, 6, 1))
    m1 = patients["m1"]
    assert m1.measurements["hba1c"].value == 7.1              # the one well-formed HbA1c
    assert isinstance(m1.measurements["bmi"], Invalid)        # value true, date a number: not a value
    assert m1.sex is None and "age" not in m1.measurements
    assert sum(source.stats.unknown_codes.values()) >= 2
