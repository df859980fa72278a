"""Wide CSV reading: every input row becomes one patient, in order, whatever is wrong with the file.

Rules under test: docs/patient-data.md.  Bad files are written byte for byte
(BOM, CRLF, Latin-1) so the reader sees exactly what a user's export holds.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from eligibility.core.errors import DataInputError
from eligibility.core.patient import Invalid, Measurement
from eligibility.readers import ReadStats, read_patients
from eligibility.readers.wide_csv import read_wide_csv
from eligibility.registry.concepts import default_registry

AS_OF = date(2026, 1, 1)


def read(path: Path, stats: ReadStats | None = None):
    return list(read_wide_csv([path], as_of=AS_OF, registry=default_registry(), stats=stats or ReadStats()))


def write(tmp_path: Path, data: bytes, name: str = "p.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bom_and_crlf(tmp_path):
    path = write(tmp_path, "\ufeffpatient_id,BMI\r\nA,30\r\nB,22.5\r\n".encode("utf-8"))
    patients = read(path)
    assert [p.id for p in patients] == ["A", "B"]
    assert patients[1].measurements["bmi"] == Measurement(22.5, "22.5", None, code="column 'BMI'")


def test_bare_cr_line_endings(tmp_path):
    patients = read(write(tmp_path, b"id,bmi\rA,30\rB,31\r"))
    assert [p.id for p in patients] == ["A", "B"]


def test_latin1_bytes_are_read_and_noted(tmp_path):
    stats = ReadStats()
    path = write(tmp_path, "patient_id,sex,conditions\nJosé,F,hypertension\nZoë,M,none\n".encode("latin-1"))
    patients = read(path, stats)
    assert [p.id for p in patients] == ["José", "Zoë"]
    assert any("Latin-1" in note for note in stats.notes)


def test_short_and_long_rows_are_kept_with_a_note(tmp_path):
    path = write(tmp_path, b"patient_id,age,bmi,hba1c\nA,45\nB,45,30,8.0,extra,more\nC,45,30,8.0\n")
    patients = read(path)
    assert [p.id for p in patients] == ["A", "B", "C"]
    assert patients[0].problems == ["row has 2 of 4 cells"]
    assert "bmi" not in patients[0].measurements
    assert patients[1].problems == ["row has 6 cells, header has 4; extra cells ignored"]
    assert patients[1].measurements["hba1c"].value == 8.0
    assert patients[2].problems == []


def test_duplicate_ids_are_kept_and_reported(tmp_path):
    stats = ReadStats()
    patients = read(write(tmp_path, b"id,bmi\nA,30\nB,31\nA,32\n"), stats)
    assert [(p.id, p.row) for p in patients] == [("A", 1), ("B", 2), ("A", 3)]
    assert patients[2].problems == ["duplicate id A (first at row 1)"]
    assert "duplicate id A: rows 1 and 3" in stats.notes


def test_blank_lines_are_not_rows_and_quoted_cells_may_hold_newlines(tmp_path):
    path = write(tmp_path, b'id,medications\n\nA,"metformin;\nsitagliptin"\n\nB,none\n')
    patients = read(path)
    assert [p.id for p in patients] == ["A", "B"]
    assert "A10BH01" in patients[0].medications
    assert patients[1].medications == frozenset()


def test_semicolon_delimited_file(tmp_path):
    patients = read(write(tmp_path, b"patient_id;BMI;HbA1c\nA;30;7.5\n"))
    assert patients[0].measurements["hba1c"].value == 7.5


def test_empty_id_cell_keeps_the_row(tmp_path):
    patients = read(write(tmp_path, b"id,bmi\n,30\n"))
    assert patients[0].id == "" and patients[0].problems == ["no patient id"]


@pytest.mark.parametrize("data, code", [
    (b"name,bmi\nA,30\n", "E-DATA-NO-ID"),
    (b"", "E-DATA-EMPTY"),
    (b"\n\n", "E-DATA-EMPTY"),
])
def test_unusable_files_are_input_errors(tmp_path, data, code):
    path = write(tmp_path, data)
    with pytest.raises(DataInputError) as info:
        read(path)
    assert info.value.code == code
    assert str(path) in info.value.one_line()
    assert "\n" not in info.value.one_line()


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataInputError) as info:
        read(tmp_path / "nope.csv")
    assert info.value.code == "E-DATA-MISSING"
    with pytest.raises(DataInputError):
        read_patients([tmp_path / "nope.csv"], as_of=AS_OF, registry=default_registry())
    with pytest.raises(DataInputError):
        read(tmp_path)


def test_second_file_checked_before_any_patient(tmp_path):
    good = write(tmp_path, b"id,bmi\nA,30\n", "a.csv")
    bad = write(tmp_path, b"name,bmi\nB,30\n", "b.csv")
    with pytest.raises(DataInputError):
        read_wide_csv([good, bad], as_of=AS_OF, registry=default_registry(), stats=ReadStats())


def test_several_files_continue_row_numbers(tmp_path):
    a = write(tmp_path, b"id,bmi\nA,30\n", "a.csv")
    b = write(tmp_path, b"subject_id,bmi\nB,31\nA,29\n", "b.csv")
    stats = ReadStats()
    patients = list(read_wide_csv([a, b], as_of=AS_OF, registry=default_registry(), stats=stats))
    assert [(p.id, p.row) for p in patients] == [("A", 1), ("B", 2), ("A", 3)]
    assert stats.rows == 3


def test_unknown_and_ambiguous_columns_are_reported_once(tmp_path):
    stats = ReadStats()
    read(write(tmp_path, b"id,favourite colour,insulin dose,shoe size\nA,red,30,42\nB,blue,31,40\n"), stats)
    assert stats.notes.count("p.csv: unknown columns ignored: favourite colour, shoe size") == 1
    assert any("ambiguous column 'insulin dose'" in note for note in stats.notes)


# header -> (attribute, key, expected canonical value of the cell "X") read by hand
HEADERS = [
    ("Patient-ID", "id"),
    ("PATIENT ID", "id"),
    ("MRN", "id"),
    ("Participant_ID", "id"),
]


@pytest.mark.parametrize("header, _role", HEADERS)
def test_id_header_spellings(tmp_path, header, _role):
    patients = read(write(tmp_path, f"{header},bmi\nX1,30\n".encode()))
    assert patients[0].id == "X1"


@pytest.mark.parametrize("header, cell, concept, value", [
    ("HbA1c (%)", "7.5", "hba1c", 7.5),
    ("hba1c [mmol/mol]", "53", "hba1c", 0.09148 * 53 + 2.152),
    ("A1C", "58 mmol/mol", "hba1c", 0.09148 * 58 + 2.152),
    ("Glycated haemoglobin", "7.5%", "hba1c", 7.5),
    ("Body mass index (BMI)", "31.2", "bmi", 31.2),
    ("c_peptide_fasting", "0.5 nmol/L", "c_peptide_fasting", 0.5 * 3.0203),
    ("Fasting C-peptide (pmol/L)", "662", "c_peptide_fasting", 662 / 331.09),
    ("insulin dose (U/kg/d)", "0.7", "insulin_dose_per_kg", 0.7),
    ("insulin dose (U/day)", "50", "insulin_dose_daily", 50.0),
    ("Weight (lb)", "200", "body_weight", 200 * 0.45359237),
    ("diabetes duration (months)", "18", "diabetes_duration", 1.5),
    ("age", "45", "age", 45.0),
])
def test_concept_columns_and_units(tmp_path, header, cell, concept, value):
    patients = read(write(tmp_path, f'id,"{header}"\nA,{cell}\n'.encode()))
    measurement = patients[0].measurements[concept]
    assert isinstance(measurement, Measurement), measurement
    assert measurement.value == pytest.approx(value, rel=2e-4)


def test_birth_date_wins_over_age_and_counts_completed_years(tmp_path):
    patients = read(write(tmp_path, b"id,age,birth_date\nA,50,1980-01-02\nB,50,\nC,,1980-01-01\n"))
    assert [p.measurements["age"].value for p in patients] == [45.0, 50.0, 46.0]


def test_list_cells(tmp_path):
    data = b"id,conditions,medications\nA,T2DM; E10.9 ; frobnitis,Zorbalimab; A10BJ06|glyburide\nB,,\nC,none,nil\n"
    stats = ReadStats()
    a, b, c = read(write(tmp_path, data), stats)
    # E10.9 is type 1 diabetes (E10) and so a diabetes mellitus (E08-E13); ICD-10-CM keys carry its ancestors
    assert {c for c in a.conditions if ":" not in c} == {"type_2_diabetes", "type_1_diabetes", "diabetes_mellitus"}
    assert {"icd10cm:E10.9", "icd10cm:E10"} <= a.conditions
    assert {"A10BJ06", "glibenclamide", "A10BB01", "zorbalimab"} <= a.medications
    assert b.conditions is None and b.medications is None
    assert c.conditions == frozenset() and c.medications == frozenset()
    assert stats.unknown_codes["condition 'frobnitis'"] == 1
    assert stats.unknown_codes["medication 'zorbalimab'"] == 1


def test_yes_no_status_and_decisions(tmp_path):
    data = b"id,pregnant,Breast-feeding,I7,e2,deceased\nA,Yes,no,PASS,fail,no\nB,maybe,,later,,2025-01-01\n"
    a, b = read(write(tmp_path, data))
    assert a.statuses == {"pregnancy": True, "breastfeeding": False}
    assert a.decisions == {"I7": "pass", "E2": "fail"} and a.deceased is None
    assert isinstance(b.statuses["pregnancy"], Invalid)
    assert b.decisions == {} and b.problems == ["I7 'later' is not a reviewer decision (pass/fail)"]
    assert b.deceased == date(2025, 1, 1)


@pytest.mark.parametrize("cell, reason", [
    ("abc", "'abc' is not a number"),
    ("7,5", "'7,5' is not a number (decimal comma?)"),
    (">12", "'>12' is a bound, not a value"),
    ("≥7", "'≥7' is a bound, not a value"),
    ("8.0 mg/dL", "is not a unit of HbA1c"),
    ("25", "outside the plausible range 3–20 %"),
    ("300 mmol/mol", "300 mmol/mol = 29.596 % is outside the plausible range"),
])
def test_malformed_cells_become_invalid_with_a_reason(tmp_path, cell, reason):
    patients = read(write(tmp_path, f'id,hba1c\nA,"{cell}"\n'.encode()))
    value = patients[0].measurements["hba1c"]
    assert isinstance(value, Invalid) and reason in value.reason, value


def test_first_valid_value_wins_across_columns(tmp_path):
    patients = read(write(tmp_path, b"id,HbA1c (%),HbA1c (mmol/mol)\nA,abc,53\nB,7.2,80\nC,,\n"))
    assert patients[0].measurements["hba1c"].value == pytest.approx(7.00044)
    assert patients[1].measurements["hba1c"].value == 7.2
    assert "hba1c" not in patients[2].measurements


def test_patient_id_wins_over_id_wherever_it_stands(tmp_path):
    patients = read(write(tmp_path, b"id,bmi,patient_id\n7,30,P-7\n"))
    assert patients[0].id == "P-7"


def test_shared_synonym_decided_by_exact_id_or_header_unit(tmp_path):
    data = b"id,insulin_dose_daily,insulin dose (U/kg/day)\nA,40,0.6\n"
    patient = read(write(tmp_path, data))[0]
    assert patient.measurements["insulin_dose_daily"].value == 40.0
    assert patient.measurements["insulin_dose_per_kg"].value == 0.6


def test_a_multiple_of_the_uln_is_not_a_value(tmp_path):
    patients = read(write(tmp_path, b"id,ALT,ALT (x ULN)\nA,3 x ULN,\nB,,2\n"))
    for patient in patients:
        value = patient.measurements["alt"]
        assert isinstance(value, Invalid) and "multiple of the upper limit of normal" in value.reason


def test_unit_after_underscores_in_the_header(tmp_path):
    """`weight_kg`, `creatinine_umol_l`: data teams' headers; the unit is read only when the rest names a concept."""
    path = write(tmp_path, "patient_id,weight_lb,creatinine_umol_l,hba1c_mmol_mol,glucose_level_x\n"
                           "A,154,88.4,53,1\n".encode("utf-8"))
    stats = ReadStats()
    (patient,) = read(path, stats)
    assert patient.measurements["body_weight"].value == pytest.approx(154 * 0.45359237)     # 1 lb = 0.45359237 kg
    assert patient.measurements["serum_creatinine"].value == pytest.approx(1.0, rel=1e-3)   # 88.4 µmol/L = 1 mg/dL
    assert patient.measurements["hba1c"].value == pytest.approx(7.0, abs=0.01)             # 53 mmol/mol (IFCC)
    assert any("glucose_level_x" in note for note in stats.notes)      # not a unit: an unknown column, said so


def test_unit_after_underscores_both_engines_agree(tmp_path):
    from eligibility.screening import screen

    data = write(tmp_path, "patient_id,weight_kg,bmi_kg_m2\nA,80,31\nB,200 lb,23\nC,,\n".encode("utf-8"))
    trial = tmp_path / "t.txt"
    trial.write_text("Inclusion Criteria:\n- Body weight ≥ 70 kg\n- BMI 25-35 kg/m2\n", "utf-8")
    outputs = []
    for engine in ("python", "duckdb"):
        out = tmp_path / f"{engine}.csv"
        screen(trial, [str(data)], output=str(out), engine=engine, as_of=AS_OF)
        outputs.append(out.read_text("utf-8"))
    assert outputs[0] == outputs[1]
    assert '"A","eligible"' in outputs[0]


def test_three_digit_exponents_are_not_read(tmp_path):
    """'1e400' is inf and '1e-400' is 0 as a double; warehouses refuse the cast: no engine reads them."""
    (patient,) = read(write(tmp_path, b"patient_id,bmi,alt\nA,1e400,1e-400\n"))
    assert isinstance(patient.measurements["bmi"], Invalid) and "exponent out of range" in patient.measurements["bmi"].reason
    assert isinstance(patient.measurements["alt"], Invalid)
    (patient,) = read(write(tmp_path, b"patient_id,bmi\nA,2.5e1\n", "b.csv"))
    assert patient.measurements["bmi"].value == 25.0
