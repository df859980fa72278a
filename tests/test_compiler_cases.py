"""Criterion -> expected tree, status, unparsed text and problems, as data (tests/cases/criteria_cases.jsonl).

Each case lists only the fields that matter (the rest are not compared); the
expected values were written from the criterion text and DESIGN §3/§4/§6, not
from program output.  `span_text` checks that a node's span points at that
text of the source; `unparsed_text` / problem `span_text` likewise.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from eligibility.compile.compiler import compile_criterion

CASES = [json.loads(line) for name in ("criteria_cases.jsonl", "criteria_phrasing_trees.jsonl", "criteria_context_trees.jsonl")
         for line in (Path(__file__).parent / "cases" / name).read_text("utf-8").splitlines() if line.strip()]


def assert_node(actual: dict, expected: dict, source: str, where: str) -> None:
    for key, value in expected.items():
        if key == "span_text":
            start, end = actual["span"]
            assert source[start:end] == value, f"{where}: span {actual['span']} is {source[start:end]!r}, not {value!r}"
        elif key == "children":
            assert len(actual["children"]) == len(value), f"{where}: {actual['children']!r}"
            for n, (a, e) in enumerate(zip(actual["children"], value)):
                assert_node(a, e, source, f"{where}.children[{n}]")
        elif key == "child":
            assert_node(actual["child"], value, source, f"{where}.child")
        elif isinstance(value, dict):
            assert isinstance(actual.get(key), dict), f"{where}.{key}: {actual.get(key)!r}"
            assert value or not actual[key], f"{where}.{key}: {actual[key]!r} is not empty"
            assert_node(actual[key], value, source, f"{where}.{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            assert actual[key] == pytest.approx(value, rel=1e-4), f"{where}.{key}: {actual[key]!r} != {value!r}"
        else:
            assert actual.get(key) == value, f"{where}.{key}: {actual.get(key)!r} != {value!r}"


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:40] for c in CASES])
def test_criterion_case(case):
    text = case["text"]
    result = compile_criterion(text, section=case.get("section", "inclusion"))
    tree = json.loads(result.tree.model_dump_json())
    assert_node(tree, case["tree"], text, "tree")
    if "status" in case:
        assert result.status == case["status"], (result.status, tree)
    if "unparsed_text" in case:
        assert [text[a:b] for a, b in result.unparsed] == case["unparsed_text"]
    expected_problems = case.get("problems", [])
    assert len(result.problems) == len(expected_problems), result.problems
    for problem, expected in zip(result.problems, expected_problems):
        assert problem.code == expected["code"]
        assert text[problem.span[0]:problem.span[1]] == expected["span_text"]
        for word in expected.get("message_contains", []):
            assert word in problem.message, problem.message


def test_spans_are_offsets_into_the_whole_source():
    """A criterion inside a longer text: spans are absolute, escapes included."""
    source = "Inclusion Criteria:\n3. HbA1c \\>= 7.0 % and BMI \\< 40 kg/m2;\n4. next"
    start = source.index("HbA1c")
    end = source.index(";") + 1
    result = compile_criterion(source, start, end)
    assert result.status == "compiled"
    first, second = result.tree.children
    assert source[first.span[0]:first.span[1]] == "HbA1c \\>= 7.0 %"
    assert source[second.span[0]:second.span[1]] == "BMI \\< 40 kg/m2"
    assert (first.op, first.canonical_value, second.op, second.canonical_value) == (">=", 7.0, "<", 40.0)


def test_unit_problem_points_at_the_unit_in_the_whole_source():
    source = "xx HbA1c ≥ 7 furlongs yy"
    result = compile_criterion(source, 3, 21)
    (problem,) = result.problems
    assert source[problem.span[0]:problem.span[1]] == "furlongs"
    assert problem.code == "E-UNIT"


def test_a_new_concept_is_a_data_change(tmp_path):
    """A user's registry file adds a concept: its synonyms become grammar terminals, no code changes."""
    from eligibility.registry.concepts import build_registry

    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[[concept]]\nid = "total_bilirubin"\nname = "Total bilirubin"\ncanonical_unit = "mg/dL"\n'
        'synonyms = ["total bilirubin", "bilirubin", "tbil"]\nplausible = [0, 50]\n', encoding="utf-8")
    registry = build_registry(extra)
    text = "Total bilirubin > 2 mg/dL or TBIL > 1.5 x ULN"
    assert compile_criterion(text, section="exclusion").status == "manual"      # not a packaged concept
    result = compile_criterion(text, section="exclusion", registry=registry)
    assert result.status == "compiled"
    first, second = result.tree.children
    assert (first.concept, first.op, first.canonical_value, first.canonical_unit) == ("total_bilirubin", ">", 2, "mg/dL")
    assert (second.concept, second.canonical_value, second.canonical_unit) == ("total_bilirubin", 1.5, "{ULN}")
