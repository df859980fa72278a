"""The seed trial, as plain text and as CT.gov JSON, compiles to the trees the issue names.

Expectations live in tests/cases/seed_trial_expected.json (essential fields
only: kind, concept, operator, canonical values and units, codes, structure).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from eligibility.core.ir import Trial, walk
from eligibility.compile.trials import compile_trial_file

ROOT = Path(__file__).resolve().parents[1]
SEED_FILES = [ROOT / "trials" / "ucmsc_t2dm.ctgov.json", ROOT / "trials" / "ucmsc_t2dm.txt"]
EXPECTED = json.loads((Path(__file__).parent / "cases" / "seed_trial_expected.json").read_text("utf-8"))


def assert_matches(actual, expected, where: str) -> None:
    """Every key of `expected` holds in `actual` (numbers to 1e-6 relative); lists match in length and order."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            if key == "text_contains":
                assert value.lower() in actual["text"].lower(), f"{where}: {value!r} not in {actual['text']!r}"
                continue
            assert key in actual, f"{where}: missing {key!r} in {actual!r}"
            assert_matches(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for n, (a, e) in enumerate(zip(actual, expected)):
            assert_matches(a, e, f"{where}[{n}]")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-6), f"{where}: {actual!r} != {expected!r}"
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.fixture(scope="module", params=SEED_FILES, ids=lambda p: p.name)
def compiled(request):
    return compile_trial_file(request.param)


def test_seed_trial_compiles_to_expected_trees(compiled):
    trial, problems = compiled
    assert problems == []
    doc = json.loads(trial.to_json())
    assert doc["schema"] == "eligibility.trial/1"
    assert doc["trial"]["title"] == EXPECTED["title"]
    assert doc["trial"]["ids"] == EXPECTED["ids"]
    assert [c["id"] for c in doc["criteria"]] == EXPECTED["order"]
    by_id = {c["id"]: c for c in doc["criteria"]}
    for ident, expected in EXPECTED["criteria"].items():
        assert_matches(by_id[ident], expected, ident)
    for ident in ("I2", "I3", "I4", "I5", "I6", "E2"):
        assert by_id[ident]["status"] != "manual", ident


def test_seed_spans_point_into_criteria_text(compiled):
    trial, _ = compiled
    text = trial.criteria_text
    assert text.startswith("Inclusion Criteria:")
    for crit in trial.criteria:
        start, end = crit.span
        if crit.id in ("age", "sex"):
            assert (start, end) == (0, 0)
            continue
        assert text[start:end] == crit.text
        for node in walk(crit.tree):
            assert start <= node.span[0] <= node.span[1] <= end, f"{crit.id}: node span {node.span} outside {crit.span}"
        for a, b in crit.unparsed:
            assert start <= a < b <= end


def test_seed_json_round_trip_is_identity(compiled, tmp_path):
    trial, _ = compiled
    again = Trial.from_json(trial.to_json())
    assert again == trial
    assert again.to_json() == trial.to_json()
    # a compiled file loads back as is (a coordinator may have edited it): no recompilation
    path = tmp_path / "seed.compiled.json"
    path.write_text(trial.to_json(indent=1), "utf-8")
    loaded, problems = compile_trial_file(path)
    assert loaded == trial and problems == []


def test_text_and_ctgov_forms_agree():
    a, _ = compile_trial_file(SEED_FILES[0])
    b, _ = compile_trial_file(SEED_FILES[1])
    # the same criteria text gives the same criteria; only the structured fields' wording differs ("ALL" / "All")
    assert [c for c in a.criteria if c.span != (0, 0)] == [c for c in b.criteria if c.span != (0, 0)]
    assert [(c.id, c.tree) for c in a.criteria] == [(c.id, c.tree) for c in b.criteria]
    assert a.criteria_text.strip() == b.criteria_text.strip()
