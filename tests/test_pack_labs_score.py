"""Score the compiler with the opt-in registry pack "labs" (issue 9, the long tail).

tests/cases/criteria_pack_labs.jsonl: 180 criteria in the phrasing real ClinicalTrials.gov oncology,
cardiology and infectious-disease trials use (ANC, WBC, bilirubin, INR, K, Na, albumin, CrCl, LVEF,
QTc, SpO2, CRP, ECOG, Karnofsky, Lansky, mixed with DESIGN §4 concepts, and sentences with no registry
comparison), gold written blind from the text before looking at the compiler's output.
First run, before any fix: see FIRST_RUN below.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from eligibility.compile.scoring import score_file
from eligibility.registry.concepts import build_registry
from eligibility.registry.files import registry_path

HERE = Path(__file__).parent
PACK_LABS = HERE / "cases" / "criteria_pack_labs.jsonl"
# first run, before any fix: P 1.0000 R 0.9186 F1 0.9575 (tp=203 fp=0 fn=18, 180 criteria): missed ECOG lists
# ("0 or 1", "0, 1 or 2", "1 or 2"), "LSN" (French ULN), "QTc (Bazett)", "INR and aPTT ≤ 1.5 × ULN",
# "direct bilirubin ≤ ULN", "within normal limits (3.5–5.0 mmol/L)", "Lansky play-performance score",
# "C-reactive protein (> 1.0 mg/dL)"
FIRST_RUN = (1.0, 0.9186, 0.9575)
# written after the fixes, scored once without tuning: P 1.0000 R 0.9808 F1 0.9903 (tp=51 fp=0 fn=1,
# 42 criteria); missed "QTc interval prolongation (> 500 ms)" (the bound in parentheses after a finding)
PACK_LABS_HELDOUT = HERE / "cases" / "criteria_pack_labs_heldout.jsonl"


@pytest.fixture(scope="module")
def labs_registry():
    return build_registry(registry_path("labs"))


def _report(name: str, score) -> None:
    print(f"\n{name}: {score.summary()}")
    for case in score.errors():
        print(f"  {case.id} {case.text!r}\n    fp={case.fp}\n    fn={case.fn}")


@pytest.mark.parametrize("path", [PACK_LABS, PACK_LABS_HELDOUT], ids=lambda p: p.stem)
def test_pack_labs_score(path, labs_registry):
    score = score_file(path, registry=labs_registry)
    _report(path.stem, score)
    assert len(score.cases) >= 40
    assert score.precision >= 0.99
    assert score.f1 >= 0.97


def test_pack_concepts_never_without_the_pack(labs_registry):
    """The default registry is unchanged: without the pack no criterion of the file names a pack concept."""
    from eligibility.registry.concepts import default_registry
    pack_ids = set(labs_registry.concepts) - set(default_registry().concepts)
    assert {"ecog", "lvef", "absolute_neutrophil_count"} <= pack_ids
    score = score_file(PACK_LABS)
    assert not [(c.id, a) for c in score.cases for a in c.predicted if a.concept in pack_ids]
    # the DESIGN §4 atoms of the file are still found without it
    assert score.precision >= 0.99


@pytest.mark.parametrize("text, low, high", [
    ("ECOG performance status of 0 or 1", 0, 1), ("ECOG performance status 0, 1, or 2", 0, 2),
    ("WHO performance status 1 or 2", 1, 2), ("Karnofsky performance status 70, 80, 90 or 100", 70, 100)])
def test_score_grades_listed_are_a_range(text, low, high, labs_registry):
    from eligibility.compile.compiler import compile_criterion
    result = compile_criterion(text, registry=labs_registry)
    assert result.status == "compiled"
    assert (result.tree.kind, result.tree.canonical_low, result.tree.canonical_high) == ("range", low, high)


@pytest.mark.parametrize("text", ["ECOG 0 or 2", "ECOG 0.5 or 1"])
def test_grades_not_one_step_apart_are_no_range(text, labs_registry):
    from eligibility.compile.compiler import compile_criterion
    assert compile_criterion(text, registry=labs_registry).tree.kind != "range"


@pytest.mark.parametrize("text, concept", [
    ("LVEF ≥ 50% by ECHO or MUGA", "lvef"),
    ("Left ventricular ejection fraction ≥ 50% by echocardiogram", "lvef"),
    ("LVEF ≥ 45% as determined by echocardiogram or multigated acquisition (MUGA) scan", "lvef"),
    ("Ejection fraction < 50% on echocardiography", "lvef"),
    ("Calculated creatinine clearance ≥ 50 mL/min (Cockcroft-Gault)", "creatinine_clearance"),
    ("Creatinine clearance ≥ 60 mL/min as calculated by the Cockcroft-Gault formula", "creatinine_clearance"),
    ("QTcF > 470 ms by Fridericia's formula", "qtc"),
    ("QTc (Bazett) > 450 msec", "qtc"),
    ("SpO2 ≥ 92% on room air", "spo2"),
    ("SaO2 ≤ 93% while breathing ambient air", "spo2"),
])
def test_a_method_of_measuring_is_no_requirement(text, concept, labs_registry):
    from eligibility.compile.compiler import compile_criterion
    result = compile_criterion(text, registry=labs_registry)
    assert result.status == "compiled", result.unparsed
    assert result.tree.kind == "compare" and result.tree.concept == concept
    assert result.tree.span == (0, len(text))
