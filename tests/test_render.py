"""Readable canonical text for hand-built trees (render_tree) and whole trials (render_trial_text)."""
from __future__ import annotations

import pytest

from eligibility.core.ir import All, AnyOf, Compare, Criterion, Duration, Has, Manual, Not, Range, Trial, TrialInfo
from eligibility.compile.render import format_number, render_trial_text, render_tree

S = (0, 0)


def rng(concept, low, high, unit, clow, chigh, cunit, **kw):
    return Range(span=S, concept=concept, low=low, high=high, unit=unit, canonical_low=clow,
                 canonical_high=chigh, canonical_unit=cunit, **kw)


def cmp(concept, op, value, unit, cvalue, cunit, **kw):
    return Compare(span=S, concept=concept, op=op, value=value, unit=unit, canonical_value=cvalue,
                   canonical_unit=cunit, **kw)


def has(code, label, category="medication", **kw):
    return Has(span=S, category=category, code=code, label=label, **kw)


CASES = [
    (rng("bmi", 24.0, 40.0, "kg/m2", 24.0, 40.0, "kg/m2"), "BMI 24–40 kg/m²"),
    (cmp("hba1c", ">=", 7.0, "%", 7.0, "%"), "HbA1c ≥ 7 %"),
    (cmp("alt", ">", 3.0, "x ULN", 3.0, "{ULN}"), "ALT > 3 × ULN"),
    # 53 mmol/mol is 7.0004 % by the NGSP/IFCC master equation: shown in % with what the text wrote
    (cmp("hba1c", "<", 53.0, "mmol/mol", 0.09148 * 53 + 2.152, "%"), "HbA1c < 7 % (53 mmol/mol)"),
    (cmp("hba1c", "<", 58.0, "mmol/mol", 0.09148 * 58 + 2.152, "%"), "HbA1c < 7.458 % (58 mmol/mol)"),
    (cmp("fasting_plasma_glucose", ">", 270.0, "mg/dL", 270 / 18.016, "mmol/L"),
     "Fasting plasma glucose > 14.99 mmol/L (270 mg/dL)"),
    (rng("bmi", 25.0, 40.0, "kg/m2", 25.0, 40.0, "kg/m2", low_inclusive=False), "25 < BMI ≤ 40 kg/m²"),
    (rng("age", None, 65.0, "a", None, 65.0, "a"), "Age ≤ 65 years"),
    (rng("egfr", 45.0, None, None, 45.0, None, "mL/min/{1.73_m2}", low_inclusive=False), "eGFR > 45 mL/min/1.73 m²"),
    (rng("platelets", 100_000.0, None, "/mm3", 100.0, None, "10*9/L"), "Platelets ≥ 100 ×10⁹/L (100000 /mm3)"),
    (Not(span=S, child=AnyOf(span=S, children=(has("dpp4_inhibitor", "DPP-4 inhibitor"),
                                                has("glp1_receptor_agonist", "GLP-1 receptor agonist"),
                                                has("sglt2_inhibitor", "SGLT2 inhibitor")))),
     "not any(DPP-4 inhibitor, GLP-1 receptor agonist, SGLT2 inhibitor)"),
    (rng("insulin_dose_per_kg", 0.5, 1.0, "U/kg/d", 0.5, 1.0, "U/kg/d",
         qualifiers={"duration_at_least": Duration(value=3, unit="mo")}), "Insulin dose per kg 0.5–1 U/kg/d [for ≥ 3 months]"),
    (has("systemic_corticosteroid", "systemic corticosteroid", within=Duration(value=1, unit="mo")),
     "systemic corticosteroid within 1 month"),
    (Manual(span=S, text="Willingness to\n   participate.", reason="no concept"), "manual “Willingness to participate.”"),
    (All(span=S, children=()), "true (no restriction)"),
    (All(span=S, children=(has("pregnancy", "pregnancy", "status"), has("x", "unknown-code", "condition"))),
     "all(pregnancy, unknown-code)"),
    (cmp("not_in_registry", "==", 1.0, None, 1.0, "1"), "not_in_registry = 1 1"),
]


@pytest.mark.parametrize("node,text", CASES, ids=[c[1] for c in CASES])
def test_render_tree(node, text):
    assert render_tree(node) == text


def test_numbers_keep_the_precision_the_text_wrote():
    source = "24.0 kg/m2 ≤ BMI ≤40.0 kg/m2; HbA1c ≥ 7,5 %"
    node = Range(span=(0, 29), concept="bmi", low=24.0, high=40.0, unit="kg/m2", canonical_low=24.0,
                 canonical_high=40.0, canonical_unit="kg/m2")
    assert render_tree(node, source=source) == "BMI 24.0–40.0 kg/m²"
    hba1c = Compare(span=(30, len(source)), concept="hba1c", op=">=", value=7.5, unit="%", canonical_value=7.5,
                    canonical_unit="%")
    assert render_tree(hba1c, source=source) == "HbA1c ≥ 7.5 %"
    assert format_number(1234567.0) == "1234567" and format_number(0.25) == "0.25" and format_number(2 / 3) == "0.6667"
    assert format_number(float("inf")) == "inf" and format_number(-2.5) == "-2.5"   # hand-edited files


def test_render_trial_text_marks_unparsed_fragments():
    text = "Inclusion Criteria:\n1. BMI ≥ 25 kg/m2 measured twice\n"
    start = text.index("BMI")
    end = len(text) - 1
    tree = Compare(span=(start, start + 14), concept="bmi", op=">=", value=25.0, unit="kg/m2", canonical_value=25.0,
                   canonical_unit="kg/m2")
    crit = Criterion(id="I1", section="inclusion", text=text[start:end], span=(start, end), status="partial",
                     unparsed=((start + 15, end),), tree=tree)
    trial = Trial(trial=TrialInfo(title="T", ids={"nct_id": "NCT01"}), criteria_text=text, criteria=(crit,))
    assert render_trial_text(trial).splitlines() == [
        "T",
        "nct_id NCT01",
        "1 criteria: 0 compiled, 1 partial, 0 manual",
        "",
        "I1  inclusion  partial",
        "    text: BMI ≥ 25 kg/m2 measured twice",
        "    tree: BMI ≥ 25 kg/m²",
        "    unparsed: «measured twice»",
    ]
