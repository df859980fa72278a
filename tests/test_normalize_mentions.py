"""Normalisation: real-phrased mentions -> the code group a coder assigns (tests/cases/normalize_mentions.jsonl).

The cases were written from the code books (ICD-10-CM, WHO ATC, SNOMED CT) by
someone who did not see the vocabulary files.  A mention counts as right when
the compiled criterion's first `has` node of the expected kind carries codes
that name the expected group: the same code, or a code in the same ICD-10-CM
category / the same ATC group one level apart at most (a node may add codes,
such as I22 beside I21 for "myocardial infarction"); a single drug must be its
own ingredient code.  Procedures: the expected SNOMED id among the node's codes,
or the expected group naming the same vocabulary entry.
"""
from __future__ import annotations

import json
from pathlib import Path

from eligibility.compile.compiler import compile_criterion
from eligibility.core.ir import walk
from eligibility.registry.concepts import default_registry
from eligibility.registry.vocabulary import vocabulary

CASES = Path(__file__).parent / "cases" / "normalize_mentions.jsonl"
TARGET = 0.9


def _codes(expected) -> list[str]:
    return [expected] if isinstance(expected, str) else list(expected)


def _icd_related(e: str, n: str) -> bool:
    e, n = e.upper(), n.upper()
    return e[:3] == n[:3] and (e.startswith(n) or n.startswith(e))


def _atc_related(e: str, n: str) -> bool:
    e, n = e.upper(), n.upper()
    if len(e) == 7:
        return n == e
    return n.startswith(e) or (e.startswith(n) and len(n) >= len(e) - 1 and len(n) >= 4)


def _right(case: dict, node, vocab) -> bool:
    codes = node.codes
    if case["category"] == "condition":
        got = codes.get("icd10cm", ())
        return all(any(_icd_related(e, n) for n in got) for e in _codes(case["icd10cm"]))
    if case["category"] == "medication":
        got = codes.get("atc", ())
        return all(any(_atc_related(e, n) for n in got) for e in _codes(case["atc"]))
    if case.get("snomed") and case["snomed"] in codes.get("snomed", ()):
        return True
    return vocab.key_of(case["group"]) == node.code


def test_normalisation_accuracy():
    registry = default_registry()
    vocab = vocabulary(registry)
    cases = [json.loads(line) for line in CASES.read_text("utf-8").splitlines() if line.strip()]
    assert len(cases) >= 200
    misses = []
    for case in cases:
        result = compile_criterion(case["text"], registry=registry)
        nodes = sorted((n for n in walk(result.tree) if n.kind == "has" and n.category == case["category"]),
                       key=lambda n: n.span[0])
        if not nodes or not _right(case, nodes[0], vocab):
            got = (nodes[0].code, dict(nodes[0].codes)) if nodes else result.status
            misses.append(f"{case['text']!r}: {got}")
    accuracy = 1 - len(misses) / len(cases)
    print(f"normalisation accuracy {accuracy:.3f} ({len(cases) - len(misses)}/{len(cases)})")
    assert accuracy >= TARGET, f"accuracy {accuracy:.3f}; misses:\n" + "\n".join(misses)
