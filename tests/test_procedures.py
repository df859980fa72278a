"""Procedure records in every reader, and screening a trial of conditions, drug classes and procedures.

Expected values come from two independent places, never from the library's output:
- tests/cases/ehr/procedures/README.md: every patient's facts (parsed here from its tables);
- the sample files themselves, read with plain csv/json below, classified with the hand-written
  code tables in this file (what each SNOMED CT / RxNorm code in the samples is, written from the
  code systems, not from eligibility's vocabulary).
The screening test runs the public CLI on the Synthea, OMOP and FHIR samples with both engines and
compares every patient's outcome per criterion with the outcome worked out from those facts.
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from eligibility.cli import main
from eligibility.core.errors import DataInputError
from eligibility.readers import read_patients
from eligibility.registry.concepts import default_registry

ROOT = Path(__file__).resolve().parent
SAMPLES = ROOT / "cases" / "ehr" / "procedures"
TRIAL = ROOT / "cases" / "screen_procedures.txt"
AS_OF = date(2024, 7, 1)
FORMATS = ("synthea", "synthea_v2", "omop", "fhir")

# ---- what each code in the samples is (written from SNOMED CT / RxNorm, not from the registry) ------

# procedure SNOMED CT code -> registry ids its record must carry (the entry and the broader ones it
# is a kind of), and ids it must not carry (a PCI is not surgery; a colonoscopy is not major surgery)
PROCEDURE_MEANS = {
    "265764009": {"dialysis", "renal_replacement_therapy"},                           # Renal dialysis
    "302497006": {"hemodialysis", "dialysis", "renal_replacement_therapy"},           # Hemodialysis
    "70536003": {"kidney_transplant", "solid_organ_transplant", "transplant", "major_surgery", "surgery"},
    "232717009": {"cabg", "coronary_revascularization", "cardiac_surgery", "major_surgery", "surgery"},
    "415070008": {"pci", "coronary_revascularization"},
    "427074001": {"sleeve_gastrectomy", "bariatric_surgery", "abdominal_surgery", "major_surgery", "surgery"},
    "430715008": {"bariatric_surgery", "abdominal_surgery", "major_surgery", "surgery"},
    "73761001": {"colonoscopy"},
    "52734007": {"hip_replacement", "joint_replacement", "major_surgery", "surgery"},  # Total replacement of hip
}
PROCEDURE_NOT = {
    "265764009": {"hemodialysis", "kidney_transplant", "surgery"},
    "302497006": {"peritoneal_dialysis", "kidney_transplant", "surgery"},
    "70536003": {"dialysis", "liver_transplant", "hsct"},
    "232717009": {"pci"},
    "415070008": {"cabg", "surgery", "cardiac_surgery", "major_surgery"},
    "427074001": {"gastric_bypass"},
    "430715008": {"sleeve_gastrectomy", "gastric_bypass"},
    "73761001": {"surgery", "major_surgery", "colectomy"},
    "52734007": {"knee_replacement"},
}

# screening classes of the samples' codes
CONDITION_CLASSES = {
    "59621000": {"htn"},                 # Essential hypertension
    "431857002": {"ckd"},                # CKD stage 4
    "433144002": {"ckd"},                # CKD stage 3
    "46177005": {"ckd"},                 # End-stage renal disease: CKD stage 5 (N18.6 under N18)
    "271737000": {"anemia"},
    "44054006": {"t2d"},
    "55822004": set(),                   # Hyperlipidemia
    "22298006": {"mi"},
    "53741008": {"cad"},                 # Coronary heart disease (I25.10)
    "15777000": {"prediabetes"},
    "49436004": {"af"},
    "239872002": set(),                  # Osteoarthritis of hip
}
DRUG_CLASSES = {
    "314076": {"acei"},                  # lisinopril
    "308136": set(),                     # amlodipine: calcium channel blocker
    "205923": set(),                     # epoetin alfa
    "312617": {"steroid"},               # prednisone: systemic corticosteroid
    "860975": {"metformin"},
    "312961": {"statin"},                # simvastatin
    "259255": {"statin"},                # atorvastatin
    "309362": set(),                     # clopidogrel: antiplatelet, not an anticoagulant
    "243670": set(),                     # aspirin
    "855332": {"anticoagulant"},         # warfarin
    "856987": set(),                     # hydrocodone / acetaminophen
}
PROCEDURE_CLASSES = {
    "265764009": {"dialysis"},
    "302497006": {"hemodialysis", "dialysis"},
    "70536003": {"kidney_transplant", "major_surgery"},
    "232717009": {"cabg", "cardiac_surgery", "major_surgery"},
    "415070008": {"pci"},
    "427074001": {"bariatric", "major_surgery"},
    "430715008": {"bariatric", "major_surgery"},
    "73761001": {"colonoscopy"},
    "52734007": {"hip_replacement", "major_surgery"},
}

# tests/cases/screen_procedures.txt, criterion by criterion: (kind, classes, window in months)
CRITERIA = {
    "I1": ("condition", {"t2d"}, None), "I2": ("condition", {"cad"}, None), "I3": ("male", set(), None),
    "I4": ("drug", {"statin"}, None), "I5": ("drug", {"acei", "arb"}, None),
    "E1": ("procedure", {"kidney_transplant"}, None), "E2": ("procedure", {"hemodialysis"}, 6),
    "E3": ("procedure", {"cabg", "pci"}, None), "E4": ("procedure", {"bariatric"}, 12),
    "E5": ("procedure", {"pci"}, 6), "E6": ("procedure", {"dialysis"}, 12),
    "E7": ("procedure", {"bariatric"}, None), "E8": ("procedure", {"hip_replacement"}, None),
    "E9": ("procedure", {"major_surgery"}, None), "E10": ("procedure", {"cardiac_surgery"}, None),
    "E11": ("procedure", {"colonoscopy"}, None), "E12": ("drug", {"anticoagulant"}, None),
    "E13": ("drug", {"steroid"}, None), "E14": ("drug", {"metformin"}, None),
    "E15": ("condition", {"ckd"}, None), "E16": ("condition", {"anemia"}, None),
    "E17": ("condition", {"prediabetes"}, None), "E18": ("condition", {"af"}, None),
    "E19": ("condition", {"mi"}, None), "E20": ("condition", {"htn"}, None),
}
# what each line of the trial must compile to (registry ids), so a change in the compiler's reading
# shows here and not as a puzzling outcome
COMPILED = {
    "I1": ["type_2_diabetes"], "I2": ["coronary_artery_disease"], "I3": ["sex_male"], "I4": ["statin"],
    "I5": ["ace_inhibitor", "arb"], "E1": ["kidney_transplant"], "E2": ["hemodialysis"], "E3": ["cabg", "pci"],
    "E4": ["bariatric_surgery"], "E5": ["pci"], "E6": ["dialysis"], "E7": ["bariatric_surgery"],
    "E8": ["hip_replacement"], "E9": ["major_surgery"], "E10": ["cardiac_surgery"], "E11": ["colonoscopy"],
    "E12": ["anticoagulant"], "E13": ["systemic_corticosteroid"], "E14": ["metformin"],
    "E15": ["chronic_kidney_disease"], "E16": ["anemia"], "E17": ["prediabetes"], "E18": ["atrial_fibrillation"],
    "E19": ["myocardial_infarction"], "E20": ["hypertension"],
}


# ---- facts: the README's, and each format's files read plainly ---------------------------------------

@dataclass
class Facts:
    sex: str = ""
    died: date | None = None
    conditions: set = field(default_factory=set)     # (snomed, start)
    drugs: set = field(default_factory=set)          # (rxnorm, start, stop or None)
    procedures: set = field(default_factory=set)     # (snomed, date performed)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def _table_rows(lines: list[str], start: int) -> list[list[str]]:
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def readme() -> tuple[dict[str, dict], dict[str, Facts]]:
    """(patient key -> row of the patients table, patient key -> Facts) from the README."""
    lines = (SAMPLES / "README.md").read_text("utf-8").splitlines()
    people: dict[str, dict] = {}
    facts: dict[str, Facts] = {}
    current = None
    for i, line in enumerate(lines):
        if line.startswith("| key | Synthea Id"):
            for row in _table_rows(lines, i):
                people[row[0]] = {"synthea": row[1].strip("`"), "omop": row[2], "sex": row[3],
                                  "died": _day(row[7] if row[7] != "-" else None), "in": row[8].split(", ")}
        elif (m := re.match(r"### (P\d\d) ", line)):
            current = m.group(1)
            facts[current] = Facts(sex={"M": "male", "F": "female"}[people[current]["sex"]],
                                   died=people[current]["died"])
        elif current and line.startswith("| condition |"):
            facts[current].conditions = {(r[1], _day(r[3])) for r in _table_rows(lines, i)}
        elif current and line.startswith("| drug |"):
            facts[current].drugs = {(r[1], _day(r[2]), None if r[3] == "ongoing" else _day(r[3]))
                                    for r in _table_rows(lines, i)}
        elif current and line.startswith("| procedure |"):
            facts[current].procedures = {(r[1], _day(r[3])) for r in _table_rows(lines, i)}
    return people, facts


PEOPLE, README_FACTS = readme()


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def synthea_facts(folder: Path) -> dict[str, Facts]:
    """Synthea Id -> Facts, from the CSV files (3.x or 2.x columns)."""
    out: dict[str, Facts] = {}
    for r in _csv(folder / "patients.csv"):
        out[r["Id"]] = Facts(sex={"M": "male", "F": "female"}[r["GENDER"]], died=_day(r["DEATHDATE"]))
    for r in _csv(folder / "conditions.csv"):
        out[r["PATIENT"]].conditions.add((r["CODE"], _day(r["START"])))
    for r in _csv(folder / "medications.csv"):
        out[r["PATIENT"]].drugs.add((r["CODE"], _day(r["START"]), _day(r["STOP"])))
    for r in _csv(folder / "procedures.csv"):
        out[r["PATIENT"]].procedures.add((r["CODE"], _day(r.get("START") or r.get("DATE"))))
    return out


def omop_facts(folder: Path) -> dict[str, Facts]:
    """person_id -> Facts; a concept's code from CONCEPT.csv, the source value where the concept is 0."""
    code = {r["concept_id"]: r["concept_code"] for r in _csv(folder / "CONCEPT.csv")}
    out: dict[str, Facts] = {}
    for r in _csv(folder / "PERSON.csv"):
        out[r["person_id"]] = Facts(sex={"8507": "male", "8532": "female"}[r["gender_concept_id"]])
    for r in _csv(folder / "DEATH.csv"):
        out[r["person_id"]].died = _day(r["death_date"])
    for r in _csv(folder / "CONDITION_OCCURRENCE.csv"):
        snomed = code[r["condition_concept_id"]] if r["condition_concept_id"] != "0" else r["condition_source_value"]
        out[r["person_id"]].conditions.add((snomed, _day(r["condition_start_date"])))
    for r in _csv(folder / "DRUG_EXPOSURE.csv"):
        out[r["person_id"]].drugs.add((code[r["drug_concept_id"]], _day(r["drug_exposure_start_date"]),
                                       _day(r["verbatim_end_date"])))
    for r in _csv(folder / "PROCEDURE_OCCURRENCE.csv"):
        snomed = code[r["procedure_concept_id"]] if r["procedure_concept_id"] != "0" else r["procedure_source_value"]
        out[r["person_id"]].procedures.add((snomed, _day(r["procedure_date"])))
    return out


SNOMED = "http://snomed.info/sct"


def fhir_facts(folder: Path) -> dict[str, Facts]:
    """Patient id -> Facts, from the Bundles (local dates: the README keeps them on the UTC day)."""
    out: dict[str, Facts] = {}
    for path in sorted(folder.glob("*.json")):
        resources = [e["resource"] for e in json.loads(path.read_text("utf-8"))["entry"]]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        facts = out[patient["id"]] = Facts(sex=patient["gender"], died=_day(patient.get("deceasedDateTime")))
        for r in resources:
            kind = r["resourceType"]
            snomed = next((c["code"] for c in r.get("code", {}).get("coding", ()) if c["system"] == SNOMED), None)
            if kind == "Condition":
                facts.conditions.add((snomed, _day(r["onsetDateTime"])))
            elif kind == "MedicationRequest":
                period = r["dispenseRequest"]["validityPeriod"]
                rxnorm = r["medicationCodeableConcept"]["coding"][0]["code"]
                facts.drugs.add((rxnorm, _day(period["start"]), _day(period.get("end"))))
            elif kind == "Procedure":
                when = r.get("performedDateTime") or r["performedPeriod"]["start"]
                facts.procedures.add((snomed, _day(when)))
    return out


def format_facts(fmt: str) -> dict[str, Facts]:
    folder = SAMPLES / fmt
    return {"synthea": synthea_facts, "synthea_v2": synthea_facts, "omop": omop_facts,
            "fhir": fhir_facts}[fmt](folder)


def key_of(fmt: str) -> dict[str, str]:
    """The format's patient id -> README key."""
    return {(p["omop"] if fmt == "omop" else p["synthea"]): k for k, p in PEOPLE.items() if fmt in p["in"]}


# ---- the readers against the README ------------------------------------------------------------------

def read(path: Path, as_of: date = AS_OF, fmt: str = "auto"):
    source = read_patients([path], input_format=fmt, as_of=as_of, registry=default_registry())
    return {p.id: p for p in source.patients}, source.stats


@pytest.mark.parametrize("fmt", FORMATS)
def test_sample_files_hold_the_readme_facts(fmt):
    """The plain readings used as the screening reference agree with the README (and cover every code)."""
    got = format_facts(fmt)
    keys = key_of(fmt)
    assert set(got) == set(keys) and len(got) == {"synthea": 12, "synthea_v2": 3, "omop": 12, "fhir": 3}[fmt]
    for pid, facts in got.items():
        want = README_FACTS[keys[pid]]
        assert (facts.sex, facts.died, facts.conditions, facts.drugs, facts.procedures) == (
            want.sex, want.died, want.conditions, want.drugs, want.procedures), (fmt, keys[pid])
        assert {c for c, _ in facts.conditions} <= CONDITION_CLASSES.keys()
        assert {c for c, _, _ in facts.drugs} <= DRUG_CLASSES.keys()
        assert {c for c, _ in facts.procedures} <= PROCEDURE_CLASSES.keys() == PROCEDURE_MEANS.keys()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("as_of", [date(2018, 5, 21), date(2018, 5, 22), date(2019, 1, 1), date(2024, 6, 1),
                                   AS_OF])
def test_procedure_keys_and_latest_dates_follow_the_readme(fmt, as_of):
    patients, stats = read(SAMPLES / fmt, as_of)
    keys = key_of(fmt)
    assert set(patients) == set(keys)
    assert not [k for k in stats.unknown_codes if k.startswith("procedure")]
    for pid, patient in patients.items():
        done = [(code, day) for code, day in README_FACTS[keys[pid]].procedures if day <= as_of]
        assert patient.procedures is not None, (fmt, keys[pid])
        # everything a record means, with the date it was last done (README dates, latest per id)
        latest: dict[str, date] = {}
        for code, day in done:
            for rid in PROCEDURE_MEANS[code] | {f"snomed:{code}"}:
                latest[rid] = max(latest.get(rid, day), day)
        for rid, day in latest.items():
            assert rid in patient.procedures, (fmt, keys[pid], rid)
            assert patient.procedure_dates.get(rid) == day, (fmt, keys[pid], rid)
        meant = set().union(*(PROCEDURE_MEANS[c] for c, _ in done))
        wrong = set().union(*(PROCEDURE_NOT[c] for c, _ in done)) - meant
        assert not wrong & patient.procedures, (fmt, keys[pid], wrong & patient.procedures)
        # nothing performed (yet): a known, empty list of registry ids
        if not done:
            assert not {k for k in patient.procedures if ":" not in k}, (fmt, keys[pid])
        assert all(d <= as_of for d in patient.procedure_dates.values())


def test_single_facts_by_hand():
    """A few facts read off the README by hand, each in every format that has the patient."""
    for fmt in FORMATS:
        patients, _ = read(SAMPLES / fmt)
        by_key = {k: patients[pid] for pid, k in key_of(fmt).items()}
        if "P02" in by_key:     # hemodialysis sessions up to 2024-06-24
            assert by_key["P02"].procedure_dates["hemodialysis"] == date(2024, 6, 24)
            assert by_key["P02"].procedure_dates["dialysis"] == date(2024, 6, 24)
        if "P01" in by_key:     # dialysis 2016-2018, then the kidney transplant on 2018-05-22
            p01 = by_key["P01"]
            assert p01.procedure_dates["dialysis"] == date(2018, 5, 1)
            assert p01.procedure_dates["kidney_transplant"] == p01.procedure_dates["transplant"] == date(2018, 5, 22)
            assert "hemodialysis" not in p01.procedures
        if "P06" in by_key:     # sleeve gastrectomy (OMOP: concept 0, SNOMED in the source value)
            assert by_key["P06"].procedure_dates["bariatric_surgery"] == date(2019, 6, 12)
        if "P11" in by_key:     # a child: no procedures at all, known
            assert by_key["P11"].procedures == frozenset()
        if "P12" in by_key:     # died 2023-09-14; PCI 2018; last dialysis 2023-08-28
            assert by_key["P12"].procedure_dates["pci"] == date(2018, 3, 3)
            assert by_key["P12"].procedure_dates["dialysis"] == date(2023, 8, 28)


def test_omop_keys_carry_the_concept_id():
    patients, _ = read(SAMPLES / "omop")
    assert "omop:4120120" in patients["2"].procedures            # Hemodialysis concept
    assert "omop:4336464" in patients["3"].procedures            # CABG concept
    assert "snomed:70536003" in patients["1"].procedures         # concept 0: the source value


# ---- missing files, unknown codes, bad dates ---------------------------------------------------------

def _copy(tmp_path: Path, fmt: str) -> Path:
    target = tmp_path / fmt
    shutil.copytree(SAMPLES / fmt, target)
    return target


@pytest.mark.parametrize("fmt,table", [("synthea", "procedures.csv"), ("synthea_v2", "procedures.csv"),
                                       ("omop", "PROCEDURE_OCCURRENCE.csv")])
def test_no_procedure_file_means_unknown_with_a_note(tmp_path, fmt, table):
    folder = _copy(tmp_path, fmt)
    (folder / table).unlink()
    patients, stats = read(folder)
    assert all(p.procedures is None and p.procedure_dates == {} for p in patients.values())
    assert any("procedures are unknown" in note for note in stats.notes)
    assert all(p.conditions is not None for p in patients.values())     # the rest is still read


def test_unknown_codes_are_data_problems_not_crashes(tmp_path):
    synthea = _copy(tmp_path, "synthea")
    p08 = PEOPLE["P08"]["synthea"]
    with (synthea / "procedures.csv").open("a", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["2022-01-01T17:00:00Z", "", p08, "e", "SNOMED-CT", "1234567", "Unlisted thing (procedure)", "", "", ""])
        w.writerow(["2022-02-01T17:00:00Z", "", p08, "e", "SNOMED-CT", "1234567", "Unlisted thing (procedure)", "", "", ""])
        # a later record of a known procedure with a date that is not one: kept, date unknown
        w.writerow(["not a date", "", p08, "e", "SNOMED-CT", "73761001", "Colonoscopy (procedure)", "", "", ""])
        # after the as-of date: not yet done
        w.writerow(["2025-01-01T17:00:00Z", "", p08, "e", "SNOMED-CT", "70536003", "Transplant of kidney (procedure)",
                    "", "", ""])
    patients, stats = read(synthea)
    assert stats.unknown_codes["procedure SNOMED 1234567"] == 2
    p = patients[p08]
    assert "colonoscopy" in p.procedures and "colonoscopy" not in p.procedure_dates
    assert any("Colonoscopy" in problem and "not a date" in problem for problem in p.problems)
    assert "kidney_transplant" not in p.procedures

    omop = _copy(tmp_path, "omop")
    with (omop / "PROCEDURE_OCCURRENCE.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow([99, 8, 987654321, "2022-01-01", "", "", "", 32817, 0, 1, "", "", "", "ZZZ", 0, ""])
    _, stats = read(omop)
    assert stats.unknown_codes["procedure OMOP 987654321"] == 1

    out = tmp_path / "r.csv"
    result = CliRunner().invoke(main, ["screen", str(TRIAL), str(synthea), "--as-of", AS_OF.isoformat(),
                                       "-o", str(out), "--engine", "python"])
    assert result.exit_code == 0, result.output
    assert "procedure SNOMED 1234567 (2)" in result.stderr


def _bundle(*procedures: dict) -> dict:
    patient = {"resourceType": "Patient", "id": "x1", "gender": "male", "birthDate": "1960-01-01"}
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"resource": r} for r in (patient, *procedures)]}


def _procedure(status: str, when: str, *codings: dict, text: str | None = None) -> dict:
    code: dict = {"coding": list(codings)}
    if text:
        code["text"] = text
    return {"resourceType": "Procedure", "status": status, "subject": {"reference": "urn:uuid:x1"},
            "code": code, "performedDateTime": when}


def test_fhir_status_pcs_coding_and_text(tmp_path):
    pcs = "http://www.cms.gov/Medicare/Coding/ICD10"
    bundle = _bundle(
        _procedure("completed", "2020-03-04T10:00:00-08:00", {"system": pcs, "code": "0TY00Z0"}),   # kidney transplant
        _procedure("not-done", "2021-01-01", {"system": SNOMED, "code": "232717009"}),             # CABG not done
        _procedure("entered-in-error", "2021-01-01", {"system": SNOMED, "code": "415070008"}),     # PCI in error
        _procedure("completed", "2022-05-06", text="Laparoscopic sleeve gastrectomy"),            # text only
        _procedure("completed", "2022-05-07", {"system": SNOMED, "code": "1234567"}),             # unknown
    )
    (tmp_path / "b.json").write_text(json.dumps(bundle), "utf-8")
    patients, stats = read(tmp_path)
    p = patients["x1"]
    assert p.procedure_dates["kidney_transplant"] == date(2020, 3, 4)
    assert "icd10pcs:0TY0" in p.procedures
    assert p.procedure_dates["sleeve_gastrectomy"] == date(2022, 5, 6)
    assert not {"cabg", "pci", "coronary_revascularization"} & p.procedures
    assert stats.unknown_codes["procedure SNOMED 1234567"] == 1


def test_fhir_ndjson_without_procedures_leaves_them_unknown(tmp_path):
    patient = {"resourceType": "Patient", "id": "x2", "gender": "female", "birthDate": "1970-01-01"}
    (tmp_path / "Patient.ndjson").write_text(json.dumps(patient) + "\n", "utf-8")
    patients, stats = read(tmp_path, fmt="fhir")
    assert patients["x2"].procedures is None
    assert any("procedures are unknown" in n for n in stats.notes)


def test_procedure_file_without_a_date_column_is_an_error(tmp_path):
    folder = _copy(tmp_path, "synthea_v2")
    (folder / "procedures.csv").write_text("PATIENT,CODE,DESCRIPTION\nx,302497006,Hemodialysis\n", "utf-8")
    with pytest.raises(DataInputError) as err:
        list(read_patients([folder], as_of=AS_OF, registry=default_registry()).patients)
    assert err.value.code == "E-DATA-COLUMNS" and "START" in err.value.message


# ---- the wide CSV `procedures` list -----------------------------------------------------------------

WIDE = """patient_id,sex,procedures
w1,M,kidney transplant; hemodialysis
w2,F,70536003
w3,M,Laparoscopic sleeve gastrectomy | 02100Z9
w4,F,none
w5,M,
w6,M,colonoscopy; frobnication
"""


def test_wide_csv_procedures_list(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text(WIDE, "utf-8")
    patients, stats = read(path)
    assert {"kidney_transplant", "solid_organ_transplant", "hemodialysis", "dialysis"} <= patients["w1"].procedures
    assert {"kidney_transplant", "snomed:70536003"} <= patients["w2"].procedures                 # SNOMED code
    assert {"sleeve_gastrectomy", "bariatric_surgery", "cabg"} <= patients["w3"].procedures      # name, ICD-10-PCS
    assert patients["w4"].procedures == frozenset()                                             # known: none
    assert patients["w5"].procedures is None                                                    # empty: unknown
    assert "colonoscopy" in patients["w6"].procedures
    assert stats.unknown_codes["procedure 'frobnication'"] == 1
    assert all(p.procedure_dates == {} for p in patients.values())


def test_wide_csv_screening_with_procedures(tmp_path):
    """No dates in a list: a window goes to review; the DuckDB engine hands the trial to Python and says so."""
    path = tmp_path / "w.csv"
    path.write_text(WIDE, "utf-8")
    trial = tmp_path / "t.txt"
    trial.write_text("Exclusion Criteria:\n- Prior kidney transplantation\n- Hemodialysis within the past 6 months\n",
                     "utf-8")
    rows = {}
    for engine in ("python", "duckdb"):
        out = tmp_path / f"{engine}.csv"
        result = CliRunner().invoke(main, ["screen", str(trial), str(path), "--as-of", AS_OF.isoformat(),
                                           "-o", str(out), "--engine", engine])
        assert result.exit_code == 0, result.output
        rows[engine] = out.read_text("utf-8")
        if engine == "duckdb":
            assert "python engine used: the trial asks for procedures" in result.stderr
    assert rows["python"] == rows["duckdb"]
    got = {r["patient_id"]: (r["E1"], r["E2"]) for r in csv.DictReader(io.StringIO(rows["python"]))}
    assert got == {"w1": ("fail", "review"), "w2": ("fail", "pass"), "w3": ("pass", "pass"),
                   "w4": ("pass", "pass"), "w5": ("unknown", "unknown"), "w6": ("pass", "pass")}


# ---- the screening test ("Must show") --------------------------------------------------------------

def reference(facts: Facts, as_of: date) -> tuple[str, dict[str, str]]:
    """(verdict, criterion -> outcome) worked out from one patient's facts and the tables above."""
    def classes(table: dict, codes) -> set[str]:
        return set().union(*(table[c] for c in codes)) if codes else set()

    outcomes = {}
    for cid, (kind, wanted, months) in CRITERIA.items():
        if kind == "male":
            truth = facts.sex == "male"
        elif kind == "condition":
            truth = bool(wanted & classes(CONDITION_CLASSES, [c for c, start in facts.conditions if start <= as_of]))
        elif kind == "drug":
            current = [c for c, start, stop in facts.drugs if start <= as_of and (stop is None or stop >= as_of)]
            truth = bool(wanted & classes(DRUG_CLASSES, current))
        else:
            days = [d for c, d in facts.procedures if d <= as_of and wanted & PROCEDURE_CLASSES[c]]
            truth = bool(days) and (months is None or (as_of - max(days)).days <= months * 365.25 / 12)
        inclusion = cid.startswith("I")
        outcomes[cid] = "pass" if truth == inclusion else "fail"
    dead = facts.died is not None and facts.died <= as_of
    verdict = "ineligible" if dead or "fail" in outcomes.values() else "eligible"
    return verdict, outcomes


def test_trial_compiles_as_it_says():
    result = CliRunner().invoke(main, ["compile", str(TRIAL), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    got = {}
    for c in doc["criteria"]:
        assert c["status"] == "compiled", c
        tree = c["tree"]
        leaves = tree["children"] if tree["kind"] == "any" else [tree]
        assert all(leaf["kind"] == "has" for leaf in leaves), c
        got[c["id"]] = [leaf["code"] for leaf in leaves]
        windows = {leaf["within"]["value"] if leaf["within"] else None for leaf in leaves}
        assert windows == {CRITERIA[c["id"]][2]}, c
    assert got == COMPILED


@pytest.mark.parametrize("fmt", ["synthea", "synthea_v2", "omop", "fhir"])
def test_screening_matches_the_reference_on_both_engines(tmp_path, fmt):
    folder = SAMPLES / fmt
    outputs = {}
    for engine in ("python", "duckdb", "auto"):
        out = tmp_path / f"{engine}.csv"
        result = CliRunner().invoke(main, ["screen", str(TRIAL), str(folder), "--as-of", AS_OF.isoformat(),
                                           "-o", str(out), "--engine", engine])
        assert result.exit_code == 0, result.output
        assert "python engine" in result.stderr            # procedures: the Python engine runs, and says so
        outputs[engine] = out.read_text("utf-8")
    assert outputs["python"] == outputs["duckdb"] == outputs["auto"]
    rows = list(csv.DictReader(io.StringIO(outputs["python"])))
    facts = format_facts(fmt)
    assert [r["patient_id"] for r in rows] == list(facts)          # one row per patient, input order
    checked = 0
    for row in rows:
        verdict, outcomes = reference(facts[row["patient_id"]], AS_OF)
        got = {cid: row[cid] for cid in CRITERIA}
        assert got == outcomes, (fmt, key_of(fmt)[row["patient_id"]],
                                 {c: (got[c], outcomes[c]) for c in CRITERIA if got[c] != outcomes[c]})
        assert row["verdict"] == verdict
        checked += len(outcomes)
    assert checked == len(rows) * 25


def test_reference_outcomes_by_hand():
    """The reference itself, on facts checked by hand from the README (so a wrong table shows)."""
    _, p02 = reference(README_FACTS["P02"], AS_OF)
    assert (p02["E2"], p02["E6"], p02["E1"], p02["E15"]) == ("fail", "fail", "pass", "fail")   # HD 2024-06-24, ESRD
    _, p04 = reference(README_FACTS["P04"], AS_OF)
    assert (p04["E5"], p04["E3"], p04["E9"], p04["I4"]) == ("fail", "fail", "pass", "pass")    # PCI 2024-03-02
    _, p05 = reference(README_FACTS["P05"], AS_OF)
    assert (p05["E5"], p05["E10"], p05["E12"]) == ("pass", "fail", "fail")                     # PCI 2010, CABG
    _, p06 = reference(README_FACTS["P06"], AS_OF)
    assert (p06["E4"], p06["E7"], p06["E17"]) == ("pass", "fail", "fail")                     # sleeve 2019
    _, p07 = reference(README_FACTS["P07"], AS_OF)
    assert (p07["E4"], p07["I1"], p07["E14"]) == ("fail", "pass", "fail")                     # bariatric 2024-02-20
    verdict, p12 = reference(README_FACTS["P12"], AS_OF)
    assert (verdict, p12["E6"], p12["E2"]) == ("ineligible", "fail", "pass")                   # dialysis 2023-08-28
