"""OMOP measurement operators (`<0.1`, issue 10): decided only where the bound direction makes it certain, the
same outcomes and reasons, byte for byte, from both engines and from the exported SQL.  (The samples' rows,
reasons included, are compared in tests/test_long_engine.py.)"""
from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
from eligibility.compile.trials import compile_trial_text
from eligibility.registry.concepts import default_registry
from eligibility.sql.query import trial_to_sql


# OMOP standard concepts of the "Meas Value Operator" domain (OMOP CDM 5.4 MEASUREMENT.operator_concept_id;
# the same ids in OHDSI ETLs: MIMIC-to-OMOP "SNOMED Meas Value Operator (<)" = 4171756, (<=) 4171754,
# (>=) 4171755, (>) 4172704; the CDM-to-PCORnet view's 4172703 E / 4171756 LT / 4172704 GT / 4171754 LE /
# 4171755 GE).
OMOP_OPERATORS = {4172703: "=", 4171756: "<", 4171754: "<=", 4171755: ">=", 4172704: ">"}

CENSOR_TRIAL = """Inclusion Criteria:
- HbA1c between 7.0% and 10.5%
- HbA1c >= 7.5%
Exclusion Criteria:
- HbA1c < 5%
"""
# person, operator_concept_id, value_as_number, value_source_value -> outcomes (I1, I2, E1) worked by hand:
# the true value lies in (-inf, v) for '<', (-inf, v] for '<=', ...; a comparison is decided only when the
# whole interval lies on one side of the bound
CENSORED = [
    (1, 4171756, "4.0", "<4.0", ("fail", "fail", "fail")),          # < 4: below 7, below 7.5, below 5
    (2, 4172704, "10.0", ">10.0", ("unknown", "pass", "pass")),     # > 10: maybe above 10.5; surely >= 7.5
    (3, 4171754, "7.0", "<=7.0", ("unknown", "fail", "unknown")),   # <= 7: 7 itself is in range; < 5 or not
    (4, 4172703, "7.0", "7.0", ("pass", "fail", "pass")),           # '=': an exact value
    (5, 0, "7.5", ">=7.5", ("unknown", "pass", "pass")),            # no operator id: the source text says >=
    (6, 4171755, "6.5", "6.5", ("unknown", "unknown", "pass")),     # >= 6.5
]


def _omop_folder(root: Path) -> Path:
    folder = root / "omop_censored"
    folder.mkdir()
    (folder / "PERSON.csv").write_text("person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,"
                                       "birth_datetime,gender_source_value\n" + "".join(
                                           f"{p},8532,1970,1,1,1970-01-01 00:00:00,F\n" for p, *_ in CENSORED))
    (folder / "MEASUREMENT.csv").write_text(
        "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,operator_concept_id,"
        "value_as_number,unit_concept_id,range_high,measurement_source_value,unit_source_value,value_source_value\n"
        + "".join(f"{p},{p},3004410,2024-03-01,2024-03-01 00:00:00,{op},{v},8554,,4548-4,%,{src}\n"
                  for p, op, v, src, _ in CENSORED))
    (folder / "CONDITION_OCCURRENCE.csv").write_text(
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_end_date,"
        "condition_source_value\n")
    (folder / "DRUG_EXPOSURE.csv").write_text(
        "drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_exposure_end_date,days_supply,"
        "drug_source_value\n")
    return folder


def _screen(trial: Path, folder: Path, engine: str, as_of: str, out: Path) -> bytes:
    run = subprocess.run([sys.executable, "-m", "eligibility", "screen", str(trial), str(folder), "--as-of", as_of,
                          "--engine", engine, "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert engine == "python" or "(duckdb engine" in run.stderr, run.stderr     # no fallback
    return out.read_bytes()


def _exported(folder: Path, trial_text: str) -> dict[int, tuple]:
    """Outcomes of `eligibility sql --schema omop` on the folder's CSVs loaded with DuckDB's own types."""
    con = duckdb.connect()
    for path in folder.glob("*.csv"):
        con.execute(f"CREATE TABLE {path.stem.lower()} AS SELECT * FROM read_csv_auto('{path}')")
    con.execute("CREATE TABLE death (person_id BIGINT, death_date DATE)")
    con.execute("CREATE TABLE concept (concept_id BIGINT, concept_name VARCHAR, vocabulary_id VARCHAR, "
                "concept_code VARCHAR)")
    compiled, problems = compile_trial_text(trial_text, "text", "trial.txt")
    assert problems == []
    sql = trial_to_sql(compiled, schema="omop", as_of=date(2024, 6, 1))
    return {int(r[0]): tuple(r[3:]) for r in con.execute(sql).fetchall()}


def test_registry_operator_ids_are_the_omop_concepts():
    assert default_registry().omop_operators == OMOP_OPERATORS


def test_censored_values_on_both_engines_and_the_exported_sql(tmp_path):
    folder = _omop_folder(tmp_path)
    trial = tmp_path / "censor.txt"
    trial.write_text(CENSOR_TRIAL)
    python = _screen(trial, folder, "python", "2024-06-01", tmp_path / "p.csv")
    duck = _screen(trial, folder, "duckdb", "2024-06-01", tmp_path / "d.csv")
    assert duck == python
    rows = list(csv.reader(io.StringIO(python.decode())))[1:]
    assert [(int(r[0]), tuple(r[3:])) for r in rows] == [(p, want) for p, *_, want in CENSORED]
    reasons = {r[0]: r[2] for r in rows}
    assert "HbA1c reported as < 4.0 % on 2024-03-01 < 7.0 %" in reasons["1"]
    assert "HbA1c reported as <= 7.0 % on 2024-03-01 cannot be compared with < 5.0" in reasons["3"]
    assert "reported as" not in reasons["4"]                   # '=' is no bound direction
    # the warehouse SQL on CDM tables loaded with DuckDB's own type detection agrees
    assert _exported(folder, CENSOR_TRIAL) == {p: want for p, *_, want in CENSORED}



WINDOW_TRIAL = """Inclusion Criteria:
- Age >= 18 years
- History of myocardial infarction for at least 1 year
Exclusion Criteria:
- Myocardial infarction within the last 6 months
"""
# person: condition records (OMOP concept 4329847 myocardial infarction, or ICD-10-CM I21.x as source value
# with concept 0), as of 2024-06-01 -> outcomes (I1, I2, E1) worked by hand.  A window sees any occurrence in
# it (person 1: an old MI and a recent one); a duration counts from the earliest; a record after as-of is
# not there yet; a record without a start date cannot be dated (review).
WINDOWS = [
    (1, [(4329847, "2015-02-01", "2015-03-01", "22298006"), (4329847, "2024-03-01", "2024-03-20", "22298006")],
     ("pass", "pass", "fail")),
    (2, [(4329847, "2015-02-01", "2015-03-01", "22298006")], ("pass", "pass", "pass")),
    (3, [(0, "", "", "I21.4")], ("pass", "review", "review")),
    (4, [(4329847, "2024-08-01", "", "22298006")], ("pass", "fail", "pass")),
    (5, [(0, "2023-12-20", "", "I21.9")], ("pass", "fail", "fail")),       # 164 days: recent, not a year
    (6, [(0, "2023-11-30", "", "I21.9")], ("pass", "fail", "pass")),       # 184 days: 6 months are 182.6 (6 x 30.4375)
    (7, [(0, "2023-12-02", "", "I21.9")], ("pass", "fail", "fail")),       # 182 days: within them
]


def test_condition_windows_see_every_occurrence_on_both_engines_and_the_exported_sql(tmp_path):
    folder = tmp_path / "omop_windows"
    folder.mkdir()
    (folder / "PERSON.csv").write_text("person_id,gender_concept_id,year_of_birth,month_of_birth,day_of_birth,"
                                       "birth_datetime,gender_source_value\n"
                                       + "".join(f"{p},8507,1960,1,1,1960-01-01 00:00:00,M\n" for p, *_ in WINDOWS))
    (folder / "MEASUREMENT.csv").write_text(
        "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_datetime,operator_concept_id,"
        "value_as_number,unit_concept_id,range_high,measurement_source_value,unit_source_value,value_source_value\n"
        "1,1,3004410,2024-03-01,2024-03-01 00:00:00,0,7.0,8554,,4548-4,%,7.0\n")
    (folder / "CONDITION_OCCURRENCE.csv").write_text(
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_end_date,"
        "condition_source_value\n" + "".join(f"{n},{p},{cid},{start},{end},{src}\n" for n, (p, (cid, start, end, src))
                                             in enumerate(((p, r) for p, rows, _ in WINDOWS for r in rows), 1)))
    (folder / "DRUG_EXPOSURE.csv").write_text(
        "drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_exposure_end_date,days_supply,"
        "drug_source_value\n")
    trial = tmp_path / "windows.txt"
    trial.write_text(WINDOW_TRIAL)
    python = _screen(trial, folder, "python", "2024-06-01", tmp_path / "p.csv")
    assert _screen(trial, folder, "duckdb", "2024-06-01", tmp_path / "d.csv") == python
    rows = list(csv.reader(io.StringIO(python.decode())))[1:]
    assert [(int(r[0]), tuple(r[3:])) for r in rows] == [(p, want) for p, _, want in WINDOWS]
    reasons = {r[0]: r[2] for r in rows}
    assert "myocardial infarction last recorded 2024-03-01 (92 days; needed: within 6 months)" in reasons["1"]
    assert "myocardial infarction: onset date not recorded (needed: within 6 months)" in reasons["3"]
    # the warehouse SQL (codes matched by concept id and ICD-10-CM prefix) decides the same
    assert _exported(folder, WINDOW_TRIAL) == {p: want for p, _, want in WINDOWS}
