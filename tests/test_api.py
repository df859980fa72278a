"""The public Python API (DESIGN §10, docs/api.md): what a screening tool imports.

Expected outcomes come from the seed trial's text (trials/ucmsc_t2dm.txt:
BMI 24.0-40.0 kg/m2, HbA1c 7.0-12.0 %, fasting C-peptide >= 1 ng/mL, ...) and
from the clinical facts (HbA1c 58 mmol/mol IFCC = 0.09148 x 58 + 2.152 =
7.46 % NGSP), not from the program's output.
"""
from __future__ import annotations

import csv
import datetime as dt
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import eligibility
from eligibility.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "trials" / "ucmsc_t2dm.txt"
SEED_CTGOV = ROOT / "trials" / "ucmsc_t2dm.ctgov.json"
DEMO = ROOT / "patients" / "demo_ucmsc.csv"
AS_OF = dt.date(2026, 1, 1)

# D02 of the demo file: every computable criterion passes, a reviewer passed the rest
GOOD = {"patient_id": "P1", "age": 45, "sex": "F", "diabetes_duration (years)": 8, "BMI": 30,
        "HbA1c [mmol/mol]": "58", "Fasting C-peptide (ng/mL)": 1.5, "insulin dose (U/kg/d)": 0.7,
        "medications": ["metformin", "insulin glargine"], "conditions": "type 2 diabetes", "pregnant": False,
        "I4": "pass", "I7": "pass", "E2": "pass"}


@pytest.fixture(scope="module")
def seed():
    return eligibility.compile_trial(SEED)


def _demo_rows() -> list[dict[str, str]]:
    with DEMO.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _without(value, keys=("span", "unparsed")):
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


# -- the public face ----------------------------------------------------------------------------

def test_every_public_name_resolves_and_is_typed():
    for name in eligibility.__all__:
        value = getattr(eligibility, name)
        if inspect.isfunction(value):
            hints = inspect.signature(value)
            assert hints.return_annotation is not inspect.Signature.empty, name
            assert all(p.annotation is not inspect.Parameter.empty for p in hints.parameters.values()), name
    assert issubclass(eligibility.TrialInputError, eligibility.EligibilityError)
    assert (ROOT / "eligibility" / "py.typed").exists()


def test_import_loads_nothing_heavy():
    code = ("import sys, eligibility; "
            "print([m for m in ('pydantic', 'lark', 'pint', 'duckdb', 'pyarrow', 'eligibility.api') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# -- compile_trial / load_trial ----------------------------------------------------------------

def test_path_text_and_ctgov_dict_give_the_same_criteria(seed):
    text = SEED.read_text("utf-8")
    from_text = eligibility.compile_trial(text)
    from_str_path = eligibility.compile_trial(str(SEED))
    record = json.loads(SEED_CTGOV.read_text("utf-8"))
    from_dict = eligibility.compile_trial(record)
    assert from_text.criteria == seed.criteria == from_str_path.criteria
    assert [c.id for c in from_dict.criteria] == ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]
    dump = lambda t: [_without(c.model_dump(mode="json"), ("span", "unparsed", "text")) for c in t.criteria]
    assert dump(from_dict) == dump(seed)
    assert from_dict.trial.ids == seed.trial.ids == {"org_study_id": "CHIN-PLAGH-ST-003"}


def test_bad_trials_raise_with_their_code(tmp_path):
    cases = [("", "E-TRIAL-EMPTY"), ("  \n\n", "E-TRIAL-EMPTY"), ("Inclusion Criteria:\n", "E-TRIAL-NO-CRITERIA"),
             (Path(tmp_path / "missing.txt"), "E-TRIAL-READ"), ("missing-trial.txt", "E-TRIAL-READ"),
             ({"protocolSection": {"eligibilityModule": {}}}, "E-TRIAL-NO-CRITERIA"), ({"x": 1}, "E-TRIAL-JSON-SHAPE")]
    for source, code in cases:
        with pytest.raises(eligibility.EligibilityError) as info:
            eligibility.compile_trial(source)
        assert info.value.code == code, source
    with pytest.raises(eligibility.TrialInputError) as info:
        eligibility.evaluate(eligibility.Trial(trial={}, criteria=()), GOOD, as_of=AS_OF)
    assert info.value.code == "E-TRIAL-EMPTY"


def test_problems_are_located_in_the_text():
    trial, problems = eligibility.compile_trial_with_problems("Inclusion Criteria:\n1. BMI ≥ 25 kg/m2\n2. HbA1c ≥ 7 furlongs\n")
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(3, "I2")]
    assert [c.id for c in trial.criteria if c.problems] == ["I2"]


def test_load_trial_reads_back_text_dict_and_path(seed, tmp_path):
    text = seed.model_dump_json(by_alias=True)
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    for document in (text, json.loads(text), path, str(path), text.encode("utf-8")):
        assert eligibility.load_trial(document) == seed
    assert eligibility.compile_trial(path) == seed          # a compiled file is read back, not recompiled


def test_load_trial_refuses_a_newer_schema_version(seed):
    doc = json.loads(seed.to_json())
    doc["schema"] = "eligibility.trial/2"
    with pytest.raises(eligibility.TrialInputError) as info:
        eligibility.load_trial(doc)
    assert info.value.code == "E-TRIAL-SCHEMA-VERSION"
    assert "eligibility.trial/2" in info.value.message and "eligibility.trial/1" in info.value.message
    with pytest.raises(eligibility.TrialInputError) as info:
        eligibility.load_trial({"criteria": []})
    assert info.value.code == "E-TRIAL-JSON-SHAPE"


# -- evaluate ---------------------------------------------------------------------------------

def test_evaluate_a_dict_pass_fail_unknown(seed):
    good = eligibility.evaluate(seed, GOOD, as_of=AS_OF)
    assert good.verdict == "eligible" and good.reasons == ()
    assert good.outcomes["I5"].outcome == "pass"
    assert "58 mmol/mol = 7.5 %" in good.outcomes["I5"].explanation   # 7.46 %, shown to one decimal
    assert good.outcomes["I7"].reviewer_decision

    thin = eligibility.evaluate(seed, {**GOOD, "BMI": 22.1}, as_of=AS_OF)
    assert thin.verdict == "ineligible" and thin.outcomes["I3"].outcome == "fail"
    assert "22.1" in thin.outcomes["I3"].explanation and "24.0" in thin.outcomes["I3"].explanation
    assert [r.split(":")[0] for r in thin.reasons] == ["I3 fail"]

    missing = {k: v for k, v in GOOD.items() if k != "Fasting C-peptide (ng/mL)"}
    unknown = eligibility.evaluate(seed, missing, as_of="2026-01-01")
    assert unknown.verdict == "needs_review" and unknown.outcomes["I6"].outcome == "unknown"
    assert "missing" in unknown.outcomes["I6"].explanation
    assert list(unknown.outcomes) == ["age", "sex", "I2", "I3", "I4", "I5", "I6", "I7", "E2"]


def test_a_dict_reads_exactly_like_a_wide_csv_row(seed):
    by_file = list(eligibility.screen(seed, DEMO, as_of=AS_OF))
    rows = _demo_rows()
    assert len(by_file) == len(rows) == 57
    for row, expected in zip(rows, by_file):
        got = eligibility.evaluate(seed, row, as_of=AS_OF)
        assert got.patient_id == expected.patient_id and got.verdict == expected.verdict
        assert {k: (v.outcome, v.explanation) for k, v in got.outcomes.items()} == \
               {k: (v.outcome, v.explanation) for k, v in expected.outcomes.items()}
        # a dict alone has no width to fall short of and no earlier row to duplicate
        file_only = ("data: row has", "data: duplicate id")
        assert got.reasons == tuple(r for r in expected.reasons if not r.startswith(file_only))
        assert any(n.startswith("data: patient dict: unknown columns ignored: notes") for n in got.notes)


def test_unknown_keys_and_entries_are_noted_not_dropped(seed):
    result = eligibility.evaluate(seed, {**GOOD, "favourite colour": "blue", "conditions": "type 2 diabetes; zorblax"},
                                  as_of=AS_OF)
    assert any("favourite colour" in note for note in result.notes)
    assert any("zorblax" in note for note in result.notes)
    with pytest.raises(eligibility.DataInputError) as info:
        eligibility.evaluate(seed, {"age": 54}, as_of=AS_OF)
    assert info.value.code == "E-DATA-NO-ID" and "age" in info.value.message


def test_evaluate_a_patient_object(seed):
    from eligibility.core.patient import Measurement

    person = eligibility.Patient(id="X", row=1, measurements={"bmi": Measurement(41.0, "41")})
    result = eligibility.evaluate(seed, person, as_of=AS_OF)
    assert result.outcomes["I3"].outcome == "fail" and "40.0" in result.outcomes["I3"].explanation


# -- screen -----------------------------------------------------------------------------------

def test_screen_dicts_and_arrow_like_the_csv_file(seed):
    import pyarrow as pa

    def same(result) -> dict:   # a dict has no width: the file's short and long rows are noted only there
        record = result.to_dict()
        for key in ("reasons", "notes"):
            record[key] = [r for r in record[key] if not r.startswith("data: row has")]
        return record

    expected = [same(r) for r in eligibility.screen(seed, [DEMO], as_of=AS_OF)]
    rows = _demo_rows()
    from_dicts = eligibility.screen(seed, rows, as_of=AS_OF)
    assert [same(r) for r in from_dicts] == expected            # rows, order, duplicate-id notes alike
    assert from_dicts.notes == ["patient dict: unknown columns ignored: notes, None",   # None: DictReader's extras
                                "duplicate id D01: rows 1 and 53"]
    rows = [{k: v for k, v in row.items() if k is not None} for row in rows]
    from_arrow = [same(r) for r in eligibility.screen(seed, pa.Table.from_pylist(rows), as_of=AS_OF)]
    assert from_arrow == expected
    dup = next(r for r in expected if r["row"] == 53)
    assert dup["patient_id"] == "D01" and any("duplicate id D01" in n for n in dup["notes"])


def test_screen_a_typed_arrow_table(seed):
    import pyarrow as pa

    table = pa.table({"patient_id": ["A", "B", "C"], "age": [54, None, 70], "BMI": [22.1, 30.0, None]})
    results = list(eligibility.screen(seed, table, as_of=AS_OF))
    assert [r.patient_id for r in results] == ["A", "B", "C"]
    assert [(r.outcomes["age"].outcome, r.outcomes["I3"].outcome) for r in results] == [
        ("pass", "fail"), ("unknown", "pass"), ("fail", "unknown")]      # 70 > 65; BMI 30 within 24-40
    assert all(r.verdict == v for r, v in zip(results, ["ineligible", "needs_review", "ineligible"]))


def test_screen_other_formats_by_path(seed):
    synthea = ROOT / "tests" / "shared" / "data" / "synthea"
    if not synthea.exists():
        pytest.skip("shared Synthea sample not present")
    results = list(eligibility.screen(seed, synthea, as_of=AS_OF))
    assert results and all(r.verdict in ("eligible", "needs_review", "ineligible") for r in results)
    assert [r.row for r in results] == list(range(1, len(results) + 1))


# -- the CLI over the same API, and the schema ---------------------------------------------------

def test_cli_compile_and_schema_print_what_the_api_gives(seed):
    out = CliRunner().invoke(main, ["compile", str(SEED), "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.stdout) == json.loads(seed.to_json())
    out = CliRunner().invoke(main, ["schema"])
    assert out.exit_code == 0 and json.loads(out.stdout) == eligibility.trial_schema()


def _documents():
    yield "seed.txt", eligibility.compile_trial(SEED)
    yield "seed.ctgov.json", eligibility.compile_trial(SEED_CTGOV)
    yield "example_t2dm_addon.txt", eligibility.compile_trial(ROOT / "trials" / "example_t2dm_addon.txt")
    yield "no headings", eligibility.compile_trial("Age 18 to 65 years\nINCLUSION OF CHILDREN\nNone.\n")
    real = ROOT / "tests" / "shared" / "corpus" / "real_trials_sample.csv"
    with real.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["#nct_id"].startswith("NCT"):
                yield row["#nct_id"], eligibility.compile_trial(row["eligibility_criteria"])


def test_compiled_documents_validate_against_the_schema():
    from jsonschema import Draft202012Validator

    schema = eligibility.trial_schema()
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    names = []
    for name, trial in _documents():
        doc = json.loads(trial.to_json())
        assert not list(validator.iter_errors(doc)), name
        names.append(name)
    assert len([n for n in names if n.startswith("NCT")]) == 20
    # DESIGN §3's document as a coordinator might write it (no criteria_text) is valid too
    design = json.loads((Path(__file__).parent / "cases" / "design_example_trial.json").read_text("utf-8"))
    assert not list(validator.iter_errors(design))
    # and it is no rubber stamp: a wrong status, a missing tree, another version are refused
    for broken in ({**design, "schema": "eligibility.trial/2"},
                   {**design, "criteria": [{**design["criteria"][0], "status": "done"}]},
                   {**design, "criteria": [{k: v for k, v in design["criteria"][0].items() if k != "tree"}]}):
        assert list(validator.iter_errors(broken))


# -- threads ----------------------------------------------------------------------------------

THREADS = r'''
import datetime as dt, json, sys, threading
from concurrent.futures import ThreadPoolExecutor
import lark
import eligibility.registry.concepts as concepts

count_lock, counts = threading.Lock(), {"lark": 0, "registry": 0}
lark_init, build = lark.Lark.__init__, concepts.build_registry
def counting_init(self, *a, **k):
    with count_lock:
        counts["lark"] += 1
    return lark_init(self, *a, **k)
def counting_build(*a):
    with count_lock:
        counts["registry"] += 1
    return build(*a)
lark.Lark.__init__, concepts.build_registry = counting_init, counting_build

import eligibility
sources, patients = json.loads(open(sys.argv[1], encoding="utf-8").read())
def job(k):
    trial = eligibility.compile_trial(sources[k % len(sources)])
    return [trial.to_json()] + [eligibility.evaluate(trial, p, as_of=dt.date(2026, 1, 1)).to_dict() for p in patients]
start = threading.Barrier(8)
def together(k):
    start.wait()          # every thread makes its first call at once, with nothing built yet
    return job(k)
with ThreadPoolExecutor(8) as pool:
    concurrent = list(pool.map(together, range(8))) + list(pool.map(job, range(8, 24)))
serial = [job(k) for k in range(24)]
print(json.dumps({"same": concurrent == serial, "lark": counts["lark"], "registry": counts["registry"]}))
'''


def test_threads_compile_and_evaluate_like_one(tmp_path):
    rows = _demo_rows()[:12]
    real = ROOT / "tests" / "shared" / "corpus" / "real_trials_sample.csv"
    with real.open(newline="", encoding="utf-8") as handle:
        texts = [r["eligibility_criteria"] for r in csv.DictReader(handle) if r["#nct_id"].startswith("NCT")][:3]
    sources = [SEED.read_text("utf-8"), json.loads(SEED_CTGOV.read_text("utf-8")),
               (ROOT / "trials" / "example_t2dm_addon.txt").read_text("utf-8"), *texts]
    data = tmp_path / "inputs.json"
    data.write_text(json.dumps([sources, rows]), encoding="utf-8")
    env = {**os.environ, "ELIGIBILITY_CACHE_DIR": str(tmp_path / "cache")}   # cold: nothing cached on disk
    env.pop("ELIGIBILITY_NO_CACHE", None)
    out = subprocess.run([sys.executable, "-c", THREADS, str(data)], capture_output=True, text=True, cwd=ROOT,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"same": True, "lark": 1, "registry": 1}      # built once, however many threads asked


# -- the documentation's examples run ----------------------------------------------------------

def _python_blocks(path: Path, section: str | None = None) -> list[str]:
    text = path.read_text("utf-8")
    if section is not None:
        start = text.index(section)
        nxt = re.search(r"^## ", text[start + len(section):], re.M)
        text = text[start:start + len(section) + (nxt.start() if nxt else len(text))]
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("path, section", [(ROOT / "docs" / "api.md", None), (ROOT / "README.md", "## Use from Python")])
def test_documentation_examples_run(path, section, monkeypatch):
    blocks = _python_blocks(path, section)
    assert blocks, f"no python examples in {path.name}"
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):      # one namespace per page: later examples use earlier names
        exec(compile(block, f"{path.name} example {number}", "exec"), namespace)
