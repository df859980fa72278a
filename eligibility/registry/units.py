"""Clinical units: spellings -> pint, and each unit's conversion into a concept's canonical unit.

Conversions are resolved once per (concept, unit spelling) and cached as an
affine map `canonical = scale * value + offset`, so evaluators apply plain
arithmetic per row and never build a pint object per patient.

Facts (DESIGN §6) live in the registry data with their sources:
- HbA1c mmol/mol -> % uses the NGSP/IFCC master equation (an `affine` entry),
  not pint's generic mmol/mol = 1/1000.
- mass <-> substance conversions go through the analyte's molar mass with
  pint's `chemistry` context.
- `U` is an insulin unit for insulin concepts and an enzyme unit (µmol/min)
  for ALT/AST; the two are different dimensions here so they never mix.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from eligibility.core.errors import UnitError
from eligibility.registry.concepts import Concept, Registry, default_registry
from eligibility.registry.conversion import Conversion

ULN = "{ULN}"

_UREG: pint.UnitRegistry | None = None


def ureg() -> pint.UnitRegistry:
    """One pint registry per process (pint's own advice), with our clinical additions."""
    global _UREG
    if _UREG is None:
        import pint  # imported on first use: pint costs ~0.15 s to import and ~0.5 s to build a registry
        reg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
        # Insulin activity is its own dimension: 1 U of insulin is a biological
        # potency (WHO International Standard), not 1 µmol/min of enzyme.
        reg.define("insulin_unit = [insulin_activity]")
        # Multiples of the upper limit of normal are resolved per patient.
        reg.define("uln = [upper_limit_of_normal]")
        # Equivalents count charge, not substance: mEq/L equals mmol/L only for a monovalent ion, so
        # a concept accepts mEq/L through its own `affine` entry (potassium, sodium), never implicitly.
        reg.define("equivalent = [charge_equivalent] = Eq")
        # Points of an ordinal clinical scale (ECOG grade): not a fraction, so 70 % is no grade.
        reg.define("score_point = [clinical_score]")
        _UREG = reg
    return _UREG


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def normalize_unit(text: str) -> str:
    """Lower-case, NFKC (full-width ％ -> %), one micro sign, no spaces around `/`."""
    text = unicodedata.normalize("NFKC", text).replace("μ", "µ").strip().lower()
    text = text.replace("×", "x").replace("²", "2").replace("³", "3").translate(_SUPERSCRIPTS)
    text = re.sub(r"\s*/\s*", "/", text)
    text = re.sub(r"\s+", " ", text)
    return text


@lru_cache(maxsize=8)
def _table(registry: Registry) -> dict[str, str]:
    return {normalize_unit(k): v for k, v in registry.units.items()}


def pint_expression(unit: str, registry: Registry | None = None) -> str | None:
    """The pint expression for a unit spelling, or None if the spelling is not known."""
    registry = registry or default_registry()
    key = normalize_unit(unit)
    table = _table(registry)
    if key in table:
        return table[key]
    compact = key.replace(" ", "")
    for spelling, expr in table.items():
        if spelling.replace(" ", "") == compact:
            return expr
    return None


def is_known_unit(unit: str, registry: Registry | None = None) -> bool:
    return pint_expression(unit, registry) is not None


def _contextual(expr: str, concept: Concept) -> str:
    if concept.unit_context == "enzyme":
        return expr.replace("insulin_unit", "enzyme_unit")
    if concept.unit_context == "insulin":
        return expr.replace("enzyme_unit", "insulin_unit")
    return expr


def _is_per_kg(expr: str) -> bool:
    return "/kg" in expr.replace(" ", "")


def conversion(concept_id: str, unit: str | None, registry: Registry | None = None) -> Conversion:
    """How to bring a value written in `unit` into `concept_id`'s canonical unit.

    `unit=None` means the text gave no unit: the value is already canonical.
    Raises UnitError for a spelling nobody knows or a unit of the wrong dimension.
    """
    from eligibility.registry.convcache import cached_conversion

    registry = registry or default_registry()
    key = None if unit is None else normalize_unit(unit)
    # persisted across processes (eligibility/convcache.py): compiling need not start pint
    return cached_conversion(registry, concept_id, key, lambda: _conversion(registry, concept_id, key))


@lru_cache(maxsize=4096)
def _conversion(registry: Registry, concept_id: str, unit: str | None) -> Conversion:
    concept = registry.concept(concept_id)
    canonical = concept.canonical_unit
    if unit is None or unit == normalize_unit(canonical):
        return Conversion(unit or canonical, canonical, 1.0)
    for affine in concept.affine:
        if normalize_unit(affine.unit) == unit:
            return Conversion(unit, canonical, affine.scale, affine.offset, affine.source)
    expr = pint_expression(unit, registry)
    if expr is None:
        raise UnitError(f"unknown unit {unit!r} for {concept.name} (expected {canonical})", code="E-UNIT-UNKNOWN")
    target = registry.canonical_units.get(canonical)
    if target is None:
        raise UnitError(f"canonical unit {canonical!r} of {concept.id} has no pint meaning", code="E-UNIT-CANONICAL")
    expr, target = _contextual(expr, concept), _contextual(target, concept)
    if expr == "uln":
        # Multiples of the upper limit of normal stay multiples (DESIGN §3);
        # the evaluator resolves them against the patient's reference range.
        return Conversion(unit, ULN, 1.0)
    import pint

    reg = ureg()
    try:
        # parse_expression, not Unit(): spellings such as `1e9/L` carry a factor
        quantity, goal = reg.parse_expression(expr), reg.parse_expression(target)
        if concept.molar_mass is not None:
            converted = quantity.to(goal.units, "chemistry", mw=concept.molar_mass * reg("g/mol"))
        else:
            converted = quantity.to(goal.units)
        factor = converted.magnitude / goal.magnitude
    except (pint.DimensionalityError, ZeroDivisionError):   # the chemistry context divides by 0 for mass/ratio units
        raise UnitError(f"{unit!r} is not a unit of {concept.name} (expected {canonical})", code="E-UNIT-DIMENSION") from None
    except (pint.UndefinedUnitError, AttributeError, TypeError, ValueError) as exc:
        raise UnitError(f"unknown unit {unit!r} for {concept.name}: {exc}", code="E-UNIT-UNKNOWN") from None
    return Conversion(unit, canonical, float(factor))


def unit_fits(concept_id: str, unit: str, registry: Registry | None = None) -> bool:
    """Can a value in `unit` describe this concept?  (Used to choose between concepts sharing a synonym.)"""
    try:
        conversion(concept_id, unit, registry)
    except UnitError:
        return False
    return True


def to_canonical(concept_id: str, value: float, unit: str | None, registry: Registry | None = None) -> float:
    return conversion(concept_id, unit, registry).apply(value)


_PRETTY = {"kg/m2": "kg/m²", "mm[Hg]": "mmHg", "10*9/L": "×10⁹/L", "a": "years", "mL/min/{1.73_m2}": "mL/min/1.73 m²", ULN: "× ULN",
           "{INR}": "", "{score}": ""}


def unit_suffix(shown: str) -> str:
    """' kg/m²' after a number, or nothing for a unit that displays as nothing (ECOG grades, INR)."""
    return f" {shown}" if shown else ""


def display_unit(unit: str) -> str:
    """How a unit reads to people (canonical spellings are UCUM-like, not pretty)."""
    return _PRETTY.get(unit, unit)


def is_per_kg(unit: str, registry: Registry | None = None) -> bool:
    expr = pint_expression(unit, registry)
    return expr is not None and _is_per_kg(expr)
