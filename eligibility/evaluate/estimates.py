"""Values estimated from others when the data reports none (a concept's `estimate` entry).

Creatinine clearance is the case trials ask for: "CrCl ≥ 60 mL/min (Cockcroft-Gault)".  When
the patient's data has a reported clearance, that value is used; otherwise, when age, body
weight, sex and serum creatinine are all known and usable, the Cockcroft-Gault estimate is,
and the explanation says so and from what.  Anything missing leaves the value unknown:
an estimate is never made from a guessed input.

The registry names the inputs (`estimate = { method = "cockcroft_gault", age = "age", ... }`);
the formula is here, with its source.
"""
from __future__ import annotations

from typing import Callable

from eligibility.core.errors import RegistryError
from eligibility.core.patient import Measurement, Patient
from eligibility.registry.concepts import Concept, Registry

Estimator = Callable[[Patient], Measurement | None]


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def cockcroft_gault(age: float, weight_kg: float, creatinine_mg_dl: float, female: bool) -> float:
    """Creatinine clearance in mL/min.

    Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine.
    Nephron 1976;16(1):31-41: CrCl = (140 - age) × weight (kg) / (72 × serum creatinine (mg/dL)),
    × 0.85 for women.
    """
    clearance = (140.0 - age) * weight_kg / (72.0 * creatinine_mg_dl)
    return clearance * 0.85 if female else clearance


def _cockcroft_gault(spec: dict[str, str]) -> Estimator:
    age_id, weight_id, creatinine_id = spec["age"], spec["weight"], spec["creatinine"]

    def estimate(p: Patient) -> Measurement | None:
        age, weight, creatinine = (p.measurements.get(age_id), p.measurements.get(weight_id),
                                   p.measurements.get(creatinine_id))
        if p.sex not in ("female", "male") or not all(
                type(m) is Measurement and m.comparator is None for m in (age, weight, creatinine)):
            return None
        if creatinine.value <= 0:
            return None
        value = cockcroft_gault(age.value, weight.value, creatinine.value, p.sex == "female")
        raw = (f"estimated by Cockcroft-Gault from age {_fmt(age.value)}, "
               f"weight {_fmt(weight.value)} kg, {p.sex}, creatinine {_fmt(creatinine.value)} mg/dL")
        dates = [m.when for m in (weight, creatinine) if m.when is not None]
        return Measurement(value, raw, "mL/min", min(dates) if dates else None, "Cockcroft-Gault estimate")

    estimate.needs = "age, body weight, sex and serum creatinine"    # type: ignore[attr-defined]
    return estimate


# method -> (the inputs the registry entry must name, the estimator's factory)
METHODS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, str]], Estimator]]] = {
    "cockcroft_gault": (("age", "weight", "creatinine"), _cockcroft_gault),
}


def estimator(concept: Concept | None, registry: Registry) -> Estimator | None:
    """How to estimate this concept for a patient, or None when it is only ever reported."""
    if concept is None or not concept.estimate:
        return None
    spec = dict(concept.estimate)
    if spec.get("method") not in METHODS:
        raise RegistryError(f"concept {concept.id!r}: unknown estimate method {spec.get('method')!r} "
                            f"(known: {', '.join(sorted(METHODS))})", code="E-REGISTRY-ENTRY")
    roles, factory = METHODS[spec["method"]]
    missing = [role for role in roles if spec.get(role) not in registry.concepts]
    if missing:
        raise RegistryError(f"concept {concept.id!r}: estimate inputs {', '.join(missing)} name no concept",
                            code="E-REGISTRY-ENTRY")
    return factory(spec)
