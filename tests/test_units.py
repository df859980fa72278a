"""Unit facts of DESIGN §6: each expected number is computed here from the stated fact.

These go through eligibility.registry.units.conversion (what the compiler uses to turn every
threshold into its concept's canonical unit once, at compile time) and through
compile_criterion itself.
"""
from __future__ import annotations

import pytest

from eligibility.compile.compiler import compile_criterion
from eligibility.registry.units import ULN, conversion, unit_fits


def canonical(concept: str, value: float, unit: str) -> float:
    return conversion(concept, unit).apply(value)


def test_hba1c_ifcc_to_ngsp_master_equation():
    # NGSP % = 0.09148 × IFCC mmol/mol + 2.152 (Hoelzel et al., Clin Chem 2004; ngsp.org/ifccngsp.asp)
    for ifcc in (48, 53, 58, 64, 75, 86, 97):
        assert canonical("hba1c", ifcc, "mmol/mol") == pytest.approx(0.09148 * ifcc + 2.152, rel=1e-9)
    assert canonical("hba1c", 53, "mmol/mol") == pytest.approx(7.0, abs=0.01)


def test_hba1c_seven_percent_is_never_seventy_mmol_per_mol():
    # pint's generic reading (mmol/mol = 1/1000) would make 7 % = 70 mmol/mol; the master equation gives ~53
    conv = conversion("hba1c", "mmol/mol")
    assert conv.invert(7.0) == pytest.approx((7.0 - 2.152) / 0.09148, rel=1e-9)
    assert abs(conv.invert(7.0) - 70) > 10
    assert canonical("hba1c", 70, "mmol/mol") != pytest.approx(7.0, abs=0.5)
    tree = compile_criterion("HbA1c ≥ 53 mmol/mol").tree
    assert tree.canonical_value == pytest.approx(0.09148 * 53 + 2.152)


def test_c_peptide_molar_mass():
    # human C-peptide 3020.3 g/mol: 1 nmol/L = 3020.3 ng/L = 3.0203 ng/mL; 1 ng/mL = 1e6/3020.3 pmol/L ≈ 331
    molar_mass = 3020.3
    assert canonical("c_peptide", 1, "nmol/L") == pytest.approx(molar_mass / 1000, rel=1e-6)
    assert conversion("c_peptide_fasting", "pmol/L").invert(1.0) == pytest.approx(1e6 / molar_mass, rel=1e-6)
    assert conversion("c_peptide_fasting", "pmol/L").invert(1.0) == pytest.approx(331, rel=1e-3)


def test_glucose_mg_per_dl():
    # glucose 180.16 g/mol: mmol/L = mg/dL ÷ 18.016
    for mg_dl in (100, 126, 180.16, 240, 270):
        assert canonical("fasting_plasma_glucose", mg_dl, "mg/dL") == pytest.approx(mg_dl / 18.016, rel=1e-6)


def test_creatinine_micromol():
    # µmol/L = mg/dL × 88.42
    for umol in (88.42, 133, 150, 177):
        assert canonical("serum_creatinine", umol, "µmol/L") == pytest.approx(umol / 88.42, rel=1e-3)


def test_triglycerides_and_ldl():
    # TG mmol/L = mg/dL ÷ 88.57; LDL mmol/L = mg/dL ÷ 38.67
    for mg_dl in (150, 500, 1000):
        assert canonical("triglycerides", mg_dl, "mg/dL") == pytest.approx(mg_dl / 88.57, rel=1e-6)
    for mg_dl in (70, 100, 190):
        assert canonical("ldl_cholesterol", mg_dl, "mg/dL") == pytest.approx(mg_dl / 38.67, rel=1e-6)


def test_hemoglobin_g_per_l():
    # g/dL = g/L ÷ 10
    assert canonical("hemoglobin", 120, "g/L") == pytest.approx(12.0)
    assert canonical("hemoglobin", 11, "g/dL") == pytest.approx(11.0)


def test_uacr_mg_per_mmol():
    # mg/g = mg/mmol × 8.84 (creatinine 113.12 g/mol)
    for value in (3, 30, 300):
        assert canonical("uacr", value, "mg/mmol") == pytest.approx(value * 8.84, rel=1e-9)


def test_platelets():
    # 10^9/L = 10^3/µL = (per mm³) ÷ 1000  (1 mm³ = 1 µL)
    assert canonical("platelets", 150_000, "/mm3") == pytest.approx(150_000 / 1000)
    assert canonical("platelets", 150_000, "/µL") == pytest.approx(150_000 / 1000)
    assert canonical("platelets", 150, "x 10^3/µL") == pytest.approx(150)
    assert canonical("platelets", 75, "x 10^9/L") == pytest.approx(75)
    assert compile_criterion("Platelets < 150,000/µL").tree.canonical_value == pytest.approx(150)


def test_insulin_units_and_enzyme_units_never_interconvert():
    assert canonical("insulin_dose_per_kg", 0.5, "U/kg/day") == pytest.approx(0.5)
    assert canonical("insulin_dose_daily", 40, "units/day") == pytest.approx(40)
    assert canonical("alt", 120, "U/L") == pytest.approx(120)
    assert canonical("alt", 120, "IU/L") == pytest.approx(120)
    assert not unit_fits("alt", "U/kg/day")
    assert not unit_fits("alt", "units/day")
    assert not unit_fits("insulin_dose_daily", "U/L")
    assert not unit_fits("insulin_dose_per_kg", "IU/L")
    # "units" in "21 units per week" is not insulin: no concept there, so nothing is compiled
    assert compile_criterion("Alcohol intake > 21 units per week").status == "manual"


def test_uln_multiples_stay_multiples():
    conv = conversion("alt", "x ULN")
    assert (conv.canonical_unit, conv.scale, conv.offset) == (ULN, 1.0, 0.0)
    tree = compile_criterion("ALT > 3 x ULN").tree
    assert (tree.canonical_value, tree.canonical_unit) == (3, ULN)


def test_ages_and_durations_in_years():
    # pint: year = 365.25 days, month = year / 12
    assert canonical("age", 6, "months") == pytest.approx(0.5)
    assert canonical("diabetes_duration", 180, "days") == pytest.approx(180 / 365.25)
    assert canonical("diabetes_duration", 12, "weeks") == pytest.approx(12 * 7 / 365.25)


def test_pounds_to_kilograms():
    # 1 lb = 0.45359237 kg exactly (international pound, 1959)
    assert canonical("body_weight", 220, "lb") == pytest.approx(220 * 0.45359237, rel=1e-9)
