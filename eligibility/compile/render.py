"""Readable canonical text for compiled trials and trees (`eligibility compile --format text`).

`render_tree` is shared: explanations reuse it to name what a criterion asks.
Values are shown in the concept's canonical unit; when the text wrote another
unit, the value as written follows in parentheses, so a reader can check the
conversion (`Fasting plasma glucose > 14.99 mmol/L (270 mg/dL)`).
"""
from __future__ import annotations

import math
import re

from eligibility.core.ir import All, AnyOf, Compare, Criterion, Duration, Has, Manual, Not, Range, Trial
from eligibility.registry.concepts import Registry, default_registry
from eligibility.registry.units import display_unit

_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
_DURATION_UNITS = {"a": ("year", "years"), "mo": ("month", "months"), "wk": ("week", "weeks"),
                   "d": ("day", "days"), "h": ("hour", "hours")}
_QUALIFIERS = {"duration_at_least": "for ≥", "duration_at_most": "for ≤", "within": "within"}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def format_number(value: float, source: str | None = None, span: tuple[int, int] | None = None) -> str:
    """A value as the text wrote it when the text holds it (keeps `7.0`), else its shortest form."""
    if source is not None and span is not None:
        for m in _NUMBER.finditer(source, span[0], span[1]):
            literal = m.group().replace(",", ".")
            if float(literal) == value:
                return literal
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def format_duration(duration: Duration) -> str:
    one, many = _DURATION_UNITS.get(duration.unit, (duration.unit, duration.unit))
    return f"{format_number(duration.value)} {one if duration.value == 1 else many}"


def _unit(unit: str | None) -> str:
    shown = display_unit(unit) if unit else ""
    return f" {shown}" if shown else ""      # scores and ratios (ECOG, INR) show no unit


def _name(concept: str, registry: Registry) -> str:
    found = registry.concepts.get(concept)
    return found.name if found is not None else concept


def _same_unit(node: Compare | Range) -> bool:
    """Did the text's numbers need no conversion?  (Then they are shown as written.)"""
    if isinstance(node, Compare):
        pairs = [(node.value, node.canonical_value)]
    else:
        pairs = [(node.low, node.canonical_low), (node.high, node.canonical_high)]
    return all(written == canonical for written, canonical in pairs)


def _quantity(value: float, canonical: float, node, source) -> str:
    if _same_unit(node):
        return format_number(canonical, source, node.span) + _unit(node.canonical_unit)
    return format_number(canonical) + _unit(node.canonical_unit)


def _as_written(values: list[float], node, source) -> str:
    if _same_unit(node) or node.unit is None:
        return ""
    shown = "–".join(format_number(v, source, node.span) for v in values)
    return f" ({shown}{_unit(node.unit)})"


def _qualifiers(node) -> str:
    parts = []
    for key, duration in node.qualifiers.items():
        parts.append(f"[{_QUALIFIERS.get(key, key.replace('_', ' '))} {format_duration(duration)}]")
    return (" " + " ".join(parts)) if parts else ""


def render_tree(node, registry: Registry | None = None, source: str | None = None) -> str:
    """One line for a tree: `BMI 24.0–40.0 kg/m²`, `not any(DPP-4 inhibitor, ...)`.

    `source` (the criteria text) lets numbers keep their written precision.
    """
    registry = registry or default_registry()
    return _render(node, registry, source)


def _render(node, registry: Registry, source: str | None) -> str:
    if isinstance(node, Compare):
        text = (f"{_name(node.concept, registry)} {_OPS[node.op]} "
                f"{_quantity(node.value, node.canonical_value, node, source)}"
                f"{_as_written([node.value], node, source)}")
    elif isinstance(node, Range):
        text = _render_range(node, registry, source)
    elif isinstance(node, Has):
        text = node.label + (f" within {format_duration(node.within)}" if node.within else "")
    elif isinstance(node, Manual):
        text = f"manual “{' '.join(node.text.split())}”"
    elif isinstance(node, Not):
        text = f"not {_render(node.child, registry, source)}"
    elif isinstance(node, (All, AnyOf)):
        if not node.children:
            text = "true (no restriction)" if isinstance(node, All) else "false (no option)"
        else:
            inner = ", ".join(_render(c, registry, source) for c in node.children)
            text = f"{node.kind}({inner})"
    else:   # pragma: no cover - the IR union is closed
        raise TypeError(f"not an IR node: {node!r}")
    return text + _qualifiers(node)


def _render_range(node: Range, registry: Registry, source: str | None) -> str:
    name = _name(node.concept, registry)
    lo, hi = node.canonical_low, node.canonical_high
    written = [v for v in (node.low, node.high) if v is not None]
    tail = _as_written(written, node, source)
    fmt = (lambda v: format_number(v, source, node.span)) if _same_unit(node) else format_number
    unit = _unit(node.canonical_unit)
    if lo is not None and hi is not None:
        if node.low_inclusive and node.high_inclusive:
            return f"{name} {fmt(lo)}–{fmt(hi)}{unit}{tail}"
        low_op = "≤" if node.low_inclusive else "<"
        high_op = "≤" if node.high_inclusive else "<"
        return f"{fmt(lo)} {low_op} {name} {high_op} {fmt(hi)}{unit}{tail}"
    if lo is not None:
        return f"{name} {'≥' if node.low_inclusive else '>'} {fmt(lo)}{unit}{tail}"
    if hi is not None:
        return f"{name} {'≤' if node.high_inclusive else '<'} {fmt(hi)}{unit}{tail}"
    return f"{name}: any value"


def render_criterion(criterion: Criterion, registry: Registry | None = None, source: str = "") -> str:
    registry = registry or default_registry()
    lines = [f"{criterion.id}  {criterion.section}  {criterion.status}",
             f"    text: {' '.join(criterion.text.split())}",
             f"    tree: {render_tree(criterion.tree, registry, source or None)}"]
    for start, end in criterion.unparsed:
        lines.append(f"    unparsed: «{' '.join(source[start:end].split())}»")
    for problem in criterion.problems:
        lines.append(f"    problem {problem.code}: {problem.message}")
    return "\n".join(lines)


def render_trial_text(trial: Trial, registry: Registry | None = None) -> str:
    registry = registry or default_registry()
    info = trial.trial
    head = [info.title or "(untitled trial)"]
    ids = " · ".join(f"{key} {value}" for key, value in info.ids.items())
    if ids:
        head.append(ids)
    counts = {s: sum(c.status == s for c in trial.criteria) for s in ("compiled", "partial", "manual")}
    head.append(f"{len(trial.criteria)} criteria: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    body = [render_criterion(c, registry, trial.criteria_text) for c in trial.criteria]
    return "\n".join(head) + "\n\n" + "\n\n".join(body)
