"""The opt-in registry pack `labs` (eligibility/data/packs/labs.toml): resolution by name, the
default registry untouched, unit facts, the Cockcroft-Gault estimate, and reading the pack's
concepts from the Synthea, OMOP and FHIR samples.

Expected values come from the sources named in labs.toml or from the raw sample files read
here with plain csv/json, never from the readers' output.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from eligibility import compile_trial
from eligibility.core.errors import RegistryError, UnitError
from eligibility.core.patient import Measurement, Patient
from eligibility.evaluate.estimates import cockcroft_gault, estimator
from eligibility.readers import read_patients
from eligibility.registry.concepts import build_registry, default_registry
from eligibility.registry.files import pack_names, registry_path
from eligibility.registry.units import to_canonical
from shared_paths import SHARED

LABS = build_registry(Path("labs"))
SYNTHEA = SHARED / "data" / "synthea"
OMOP = SHARED / "data" / "omop_eunomia"
BUNDLE = SYNTHEA / "fhir_bundle_8a60afd2.json"
PACK_IDS = {"absolute_neutrophil_count", "white_blood_cells", "total_bilirubin", "direct_bilirubin", "inr",
            "potassium", "sodium", "serum_albumin", "creatinine_clearance", "lvef", "qtc", "spo2", "crp",
            "ecog", "karnofsky", "lansky"}


def test_pack_is_found_by_name_and_adds_only_its_concepts():
    assert "labs" in pack_names()
    assert registry_path("labs").name == "labs.toml" and registry_path("labs").is_file()
    assert registry_path("my.toml") == Path("my.toml")            # a file name is a file
    assert set(LABS.concepts) - set(default_registry().concepts) == PACK_IDS
    assert not PACK_IDS & set(default_registry().concepts)        # DESIGN §4's set stays as it is


def test_unknown_pack_is_one_line_naming_the_packs(tmp_path):
    with pytest.raises(RegistryError) as err:
        build_registry(Path("labz"))
    assert "labz" in str(err.value) and "packaged packs: labs" in str(err.value)
    trial = tmp_path / "t.txt"
    trial.write_text("Inclusion Criteria:\n- INR ≤ 1.5\n", "utf-8")
    run = subprocess.run([sys.executable, "-m", "eligibility", "compile", str(trial), "--registry", "labz"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "packaged packs: labs" in run.stderr


def _atoms(text: str, registry_files=()) -> list[tuple]:
    trial = compile_trial(f"Inclusion Criteria:\n- {text}\n", registry_files=registry_files)
    from eligibility.compile.scoring import extract_atoms
    return [(a.concept, a.op, round(a.value, 4), a.uln) for c in trial.criteria for a in extract_atoms(c.tree)]


@pytest.mark.parametrize("text,atom", [
    ("Total bilirubin > 2 mg/dL", ("total_bilirubin", ">", 2.0, False)),
    ("ANC ≥ 1500/mm3", ("absolute_neutrophil_count", ">=", 1.5, False)),
    ("ECOG performance status ≤ 2", ("ecog", "<=", 2.0, False)),
    ("Creatinine clearance ≥ 60 mL/min", ("creatinine_clearance", ">=", 60.0, False)),
])
def test_without_the_pack_nothing_is_invented(text, atom):
    assert _atoms(text) == []                       # the default registry: no comparison (shared corpus D095)
    assert _atoms(text, ["labs"]) == [atom]


@pytest.mark.parametrize("concept,value,unit,expected", [
    # bilirubin 584.66 g/mol (PubChem CID 5280352): 17.1 µmol/L = 1.0 mg/dL
    ("total_bilirubin", 17.1, "µmol/L", 1.0),
    ("total_bilirubin", 34.2, "umol/l", 2.0),
    ("crp", 1.0, "mg/dL", 10.0),                         # 1 dL = 100 mL
    ("potassium", 4.1, "mEq/L", 4.1),                    # monovalent: 1 mEq = 1 mmol
    ("sodium", 135, "meq/l", 135.0),
    ("serum_albumin", 35, "g/L", 3.5),
    ("absolute_neutrophil_count", 1500, "/mm3", 1.5),    # 1 mm³ = 1 µL; 1500/µL = 1.5 × 10⁹/L
    ("white_blood_cells", 4.2, "x 10^3/µL", 4.2),
    ("qtc", 450, "msec", 450.0),
])
def test_unit_facts(concept, value, unit, expected):
    assert to_canonical(concept, value, unit, LABS) == pytest.approx(expected, rel=2e-3)


@pytest.mark.parametrize("concept,unit", [("ecog", "%"), ("fasting_plasma_glucose", "mEq/L"), ("inr", "mg/dL")])
def test_units_that_do_not_fit_are_refused(concept, unit):
    with pytest.raises(UnitError):
        to_canonical(concept, 1.0, unit, LABS)


def test_cockcroft_gault_worked_by_hand():
    # Cockcroft & Gault, Nephron 1976;16:31-41: (140 - age) × kg / (72 × mg/dL), × 0.85 for women
    assert cockcroft_gault(70, 72, 1.0, female=False) == pytest.approx(70.0)
    assert cockcroft_gault(60, 60, 1.2, female=True) == pytest.approx(80 * 60 / 86.4 * 0.85)
    assert cockcroft_gault(40, 72, 2.0, female=False) == pytest.approx(50.0)


def _patient(**values) -> Patient:
    sex = values.pop("sex", None)
    return Patient(id="P", row=1, sex=sex, measurements={k: Measurement(float(v), str(v)) for k, v in values.items()})


def test_estimate_needs_every_input_and_never_replaces_a_report():
    estimate = estimator(LABS.concepts["creatinine_clearance"], LABS)
    m = estimate(_patient(age=70, body_weight=72, serum_creatinine=1.0, sex="male"))
    assert m.value == pytest.approx(70.0) and "Cockcroft-Gault" in m.raw
    assert estimate(_patient(age=70, body_weight=72, serum_creatinine=1.0)) is None          # sex unknown
    assert estimate(_patient(age=70, serum_creatinine=1.0, sex="male")) is None              # weight unknown
    assert estimator(LABS.concepts["inr"], LABS) is None


def test_unknown_estimate_method_is_a_registry_error(tmp_path):
    extra = tmp_path / "bad.toml"
    extra.write_text('[[concept]]\nid = "crcl2"\nname = "CrCl 2"\ncanonical_unit = "mL/min"\n'
                     'estimate = { method = "mdrd" }\n', "utf-8")
    registry = build_registry(Path("labs"), extra)
    with pytest.raises(RegistryError, match="unknown estimate method 'mdrd'"):
        estimator(registry.concepts["crcl2"], registry)


def _latest_from_csv(codes: set[str], as_of: date, lookback: int = 365) -> dict[str, float]:
    """patient -> latest value on/before as_of within the lookback, from the raw observations.csv."""
    rows = [r for r in csv.DictReader(open(SYNTHEA / "observations.csv", newline=""))
            if r["CODE"] in codes and r["DATE"][:10] <= as_of.isoformat()]
    rows.sort(key=lambda r: r["DATE"])
    latest = {r["PATIENT"]: r for r in rows}
    start = (as_of - timedelta(days=lookback)).isoformat()
    return {pid: float(r["VALUE"]) for pid, r in latest.items() if r["DATE"][:10] >= start}


SAMPLE_CONCEPTS = ["serum_albumin", "total_bilirubin", "crp", "potassium", "sodium", "spo2", "lvef",
                   "white_blood_cells", "absolute_neutrophil_count", "inr"]


@pytest.mark.skipif(not SYNTHEA.exists(), reason="shared Synthea sample not present")
@pytest.mark.parametrize("as_of", [date(2020, 3, 1), date(2022, 3, 4)])
def test_synthea_sample_values_of_the_pack_concepts(as_of):
    source = read_patients([SYNTHEA], as_of=as_of, lookback_days=365, registry=LABS)
    patients = {p.id: p for p in source.patients}
    checked = 0
    for concept in SAMPLE_CONCEPTS:
        # every unit in the sample is already the canonical one (g/dL, mg/dL, mg/L, mmol/L, %, 10*3/uL, {INR})
        expected = _latest_from_csv(set(LABS.concepts[concept].loinc), as_of)
        for pid, patient in patients.items():
            got = patient.measurements.get(concept)
            if pid in expected:
                assert isinstance(got, Measurement) and got.value == pytest.approx(expected[pid]), (concept, pid, got)
                checked += 1
            else:
                assert not isinstance(got, Measurement), (concept, pid, got)
    assert checked > 20


@pytest.mark.skipif(not OMOP.exists(), reason="shared OMOP sample not present")
def test_omop_ids_of_the_pack_name_their_loinc_in_the_concept_table():
    concepts = {r["concept_id"]: r for r in csv.DictReader(open(OMOP / "CONCEPT.csv", newline=""))}
    seen = 0
    for cid in PACK_IDS:
        concept = LABS.concepts[cid]
        for omop_id in concept.omop:
            row = concepts.get(str(omop_id))
            if row is not None:
                assert row["vocabulary_id"] == "LOINC" and row["concept_code"] in concept.loinc, (cid, omop_id)
                seen += 1
    assert seen >= 12


@pytest.mark.skipif(not OMOP.exists(), reason="shared OMOP sample not present")
def test_omop_sample_values_of_the_pack_concepts():
    as_of = date(2021, 8, 1)
    source = read_patients([OMOP], as_of=as_of, lookback_days=36500, registry=LABS)
    patients = {p.id: p for p in source.patients}
    rows = [r for r in csv.DictReader(open(OMOP / "MEASUREMENT.csv", newline=""))
            if r["measurement_date"] <= as_of.isoformat() and r["value_as_number"]]
    rows.sort(key=lambda r: (r["measurement_date"], r["measurement_datetime"]))
    checked = 0
    for concept in ("potassium", "sodium", "total_bilirubin", "serum_albumin", "white_blood_cells", "lvef", "spo2"):
        ids = {str(i) for i in LABS.concepts[concept].omop}
        latest = {r["person_id"]: float(r["value_as_number"]) for r in rows if r["measurement_concept_id"] in ids}
        for pid, value in latest.items():
            got = patients[pid].measurements.get(concept)
            assert isinstance(got, Measurement) and got.value == pytest.approx(value), (concept, pid, got)
            checked += 1
    assert checked > 10


@pytest.mark.skipif(not BUNDLE.exists(), reason="shared FHIR sample not present")
def test_fhir_bundle_values_of_the_pack_concepts():
    as_of = date(2022, 3, 4)
    bundle = json.loads(BUNDLE.read_text("utf-8"))
    expected: dict[str, tuple[str, float]] = {}
    for entry in bundle["entry"]:
        r = entry["resource"]
        if r["resourceType"] != "Observation" or "valueQuantity" not in r:
            continue
        day = r["effectiveDateTime"][:10]
        for concept in ("white_blood_cells", "potassium", "sodium"):
            if day <= as_of.isoformat() and any(c["code"] in LABS.concepts[concept].loinc for c in r["code"]["coding"]):
                if concept not in expected or day >= expected[concept][0]:
                    expected[concept] = (day, r["valueQuantity"]["value"])
    assert expected, "the bundle has WBC, potassium and sodium observations"
    source = read_patients([BUNDLE], as_of=as_of, lookback_days=3650, registry=LABS)
    (patient,) = source.patients
    for concept, (day, value) in expected.items():
        got = patient.measurements[concept]
        assert isinstance(got, Measurement) and got.value == pytest.approx(value) and got.when.isoformat() == day


ENGINE_TRIAL = """Inclusion Criteria:
- ECOG performance status 0-1
- Absolute neutrophil count ≥ 1,500/mm3 and platelets ≥ 100,000/mm3
- Total bilirubin ≤ 1.5 × ULN; AST and ALT ≤ 2.5 × ULN (≤ 5 × ULN for patients with liver metastases)
- Serum albumin ≥ 3.0 g/dL
- LVEF ≥ 50%
Exclusion Criteria:
- QTcF > 470 msec
- Serum potassium < 3.5 mEq/L or sodium < 130 mmol/L
- INR > 1.5
"""
ENGINE_ROWS = """patient_id,ecog,anc,platelets,total bilirubin,ast,alt,conditions,albumin,lvef,qtc,potassium,sodium,inr
P1,0,1800 /µL,150,1.0,30,35,hypertension,3.5,60,420 ms,4.0,140,1.0
P2,2,1.2,150,30 µmol/L,130,35,liver metastases,28 g/L,45%,480,3.2 mEq/L,128,1.8
P3,1,,90,2.5,130,35,hypertension,n/a,55,450,4.4,,1.1
P4,x,1.5,100,1.8,100,100,,4.1 g/dL,50 %,471,3.5,130,1.5
P5,1,2.0 x 10^9/L,250,0.4,41,20,liver metastases,3.0,70,,3.49 mmol/L,131,
"""


def test_both_engines_agree_on_pack_concepts(tmp_path):
    from eligibility.screening import screen

    trial, data = tmp_path / "trial.txt", tmp_path / "patients.csv"
    trial.write_text(ENGINE_TRIAL, "utf-8")
    data.write_text(ENGINE_ROWS, "utf-8")
    outputs = {}
    for engine in ("python", "duckdb"):
        out = tmp_path / f"{engine}.csv"
        summary = screen(trial, [str(data)], output=str(out), engine=engine, as_of=date(2026, 1, 1),
                         registry_files=["labs"])
        assert summary.engine == engine
        outputs[engine] = list(csv.DictReader(open(out, newline="", encoding="utf-8")))
    decided = [{k: v for k, v in row.items() if k != "reasons"} for row in outputs["python"]]
    assert decided == [{k: v for k, v in row.items() if k != "reasons"} for row in outputs["duckdb"]]
    verdicts = {row["patient_id"]: row["verdict"] for row in outputs["python"]}
    # P1 passes everything; P2 fails ECOG 2 > 1 (and more)
    assert verdicts["P1"] == "eligible" and verdicts["P2"] == "ineligible"
