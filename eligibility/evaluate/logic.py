"""Comparisons of a value against a bound, shared by the plan and the age rules."""
from __future__ import annotations

from eligibility.evaluate.explain import EPS


def eps(bound: float) -> float:
    return EPS * max(1.0, abs(bound))


def holds(op: str, x: float, b: float) -> bool:
    """`x op b` allowing for float rounding (docs/patient-data.md §4)."""
    e = eps(b)
    if op == ">=":
        return x >= b - e
    if op == ">":
        return x > b + e
    if op == "<=":
        return x <= b + e
    if op == "<":
        return x < b - e
    if op == "==":
        return abs(x - b) <= e
    return abs(x - b) > e
