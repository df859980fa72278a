"""Ages against bounds written in months, weeks or days (docs/patient-data.md "Age in months").

An age is compared in completed units of the unit its bound was written in: completed years
for years (measurements["age"], unchanged), completed months (Patient.age_months, from a birth
date) for months, days lived (Patient.age_days) for bounds in days or weeks.  With completed years only, the bound is decided when the
months 12Y .. 12Y+11 are all inside it or all on one side.  The SQL engine (sqlgen) follows the same rule.
"""
from __future__ import annotations

import copy
from collections.abc import Callable

from eligibility.evaluate import explain as words
from eligibility.evaluate.logic import holds
from eligibility.core.errors import EligibilityError
from eligibility.core.ir import Compare, Range
from eligibility.core.patient import Measurement, Patient
from eligibility.registry.units import conversion

F, T, U = 0, 1, 2          # eligibility.evaluate.plan's codes
_INF = float("inf")
Fn = Callable[[Patient], int]
Ex = Callable[[Patient, bool], tuple[int, list[str]]]


def age_in_months(node: Compare | Range) -> bool:
    """An age bound finer than whole years (months, weeks, days, or a range mixing them): compared in
    completed months or days, not completed years (docs/patient-data.md "Age")."""
    return node.concept == "age" and (_finer_than_years(node.unit) or not _whole(_bounds(node), 1.0))


def age_in_days(node: Compare | Range) -> bool:
    """A bound that is not a whole number of months (`28 days`, `6 weeks`): compared in days lived."""
    return age_in_months(node) and not _whole(_bounds(node), 12.0)


def _bounds(node: Compare | Range) -> list[float]:
    if isinstance(node, Compare):
        return [node.canonical_value]
    return [b for b in (node.canonical_low, node.canonical_high) if b is not None]


def _whole(bounds: list[float], per_year: float) -> bool:
    """Every bound (in years) a whole number of the unit that fits `per_year` times in a year."""
    return all(abs(b * per_year - round(b * per_year)) < 1e-6 for b in bounds)


def _finer_than_years(unit: str | None) -> bool:
    if not unit:
        return False
    try:
        return conversion("age", unit).scale < 1.0 - 1e-9
    except EligibilityError:
        return False


def _month_view(p: Patient) -> Measurement | None:
    """Completed months as years (months / 12) when the birth date gave them."""
    m = p.measurements.get("age")
    if p.age_months is None or type(m) is not Measurement:
        return None
    return Measurement(p.age_months / 12, f"{m.raw}, {p.age_months} completed months", None, m.when, m.code)


def _day_view(p: Patient) -> Measurement | None:
    """Days lived as years (days / 365.25, the registry's day) when the birth date gave them."""
    m = p.measurements.get("age")
    if p.age_days is None or type(m) is not Measurement:
        return None
    return Measurement(p.age_days / 365.25, f"{m.raw}, {p.age_days} days", None, m.when, m.code)


def _year_span(m: Measurement) -> tuple[float, float] | None:
    """A whole number of completed years Y is somewhere in months 12Y .. 12Y+11, as years (None: not whole years)."""
    if m.comparator is not None or m.value != int(m.value) or m.value < 0:
        return None
    base = int(m.value) * 12
    return base / 12, (base + 11) / 12


def _span_code(span: tuple[float, float], sides: tuple[float, bool, float, bool, bool]) -> int:
    """T if the whole span is inside the bound's region, F if it lies wholly on one side, else U
    (the SQL engine's rule: two ends, few column references)."""
    lo, lo_open, hi, hi_open, negate = sides
    first, last = span

    def low_ok(x: float) -> bool:
        return lo == -_INF or holds(">" if lo_open else ">=", x, lo)

    def high_ok(x: float) -> bool:
        return hi == _INF or holds("<" if hi_open else "<=", x, hi)
    if low_ok(first) and high_ok(last):
        return F if negate else T
    if not low_ok(last) or not high_ok(first):
        return T if negate else F
    return U


def _written(node: Compare | Range) -> str:
    unit = node.unit or ""
    if isinstance(node, Compare):
        return f"{words.SYMBOL[node.op]} {node.value:g} {unit}"
    if node.low is None:
        return f"{'≤' if node.high_inclusive else '<'} {node.high:g} {unit}"
    if node.high is None:
        return f"{'≥' if node.low_inclusive else '>'} {node.low:g} {unit}"
    return f"{node.low:g} to {node.high:g} {unit}"


def by_months(node: Compare | Range, name: str, fn: Fn, ex: Ex, code_of: Callable[[Measurement], int],
              sides: tuple[float, bool, float, bool, bool]) -> tuple[Fn, Ex]:
    """A month/week/day age bound: completed months when known, else by completed years only when
    the months of that year are all inside the bound or all on one side.  sides: (low, low open, high, high open, negate)."""
    fine_view = _day_view if age_in_days(node) else _month_view

    def months_code(p: Patient) -> tuple[int, Measurement | None]:
        view = fine_view(p)
        if view is not None:
            return code_of(view), view
        m = p.measurements.get("age")
        span = _year_span(m) if type(m) is Measurement else None
        return (-1, None) if span is None else (_span_code(span, sides), None)

    def fn2(p: Patient) -> int:
        code, _ = months_code(p)
        return fn(p) if code == -1 else code

    def ex2(p: Patient, detail: bool) -> tuple[int, list[str]]:
        code, view = months_code(p)
        if code == -1:
            return ex(p, detail)
        if view is not None:
            return ex(_with_age(p, view), detail)
        if code == U:
            m = p.measurements["age"]
            return U, [f"{name} {int(m.value)} years: months needed for {_written(node).strip()}"]
        return code, ex(p, detail)[1]
    return fn2, ex2


def _with_age(p: Patient, view: Measurement) -> Patient:
    """A shallow copy whose age is the month view, for the explanation only."""
    q = copy.copy(p)
    q.measurements = {**p.measurements, "age": view}
    return q
