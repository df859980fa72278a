"""Explanation texts: what was observed, against which bound, with what result.

The evaluator (eligibility/evaluate.py) decides; this module only words its
findings.  Short texts go into the `reasons` column (`I3 fail: BMI 22.1 kg/m²
< 24.0 kg/m²`); `detail=True` adds the value's date and code for the JSONL
output and `eligibility explain`.
"""
from __future__ import annotations

import math
import re

from eligibility.core.ir import Compare, Duration, Range
from eligibility.core.patient import Measurement
from eligibility.registry.units import ULN, display_unit, unit_suffix

SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
NEGATED = {"<": "≥", "<=": ">", ">": "≤", ">=": "<", "==": "≠", "!=": "="}
_DURATION_UNITS = {"a": "years", "mo": "months", "wk": "weeks", "d": "days", "h": "hours"}
_LEADING_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\d.,/-])")
EPS = 1e-9


def fmt_bound(value: float, unit: str) -> str:
    """A threshold as a person wrote it: 24.0 stays `24.0`, ages read `20`."""
    if value == int(value):
        return str(int(value)) if unit == "a" else f"{value:.1f}"
    return f"{value:.6g}"


def fmt_near(value: float, bound: float | None) -> str:
    """A value rounded to two significant digits (one decimal at least), or more when rounding
    would put it on the other side of the bound: 58 mmol/mol = 7.5 %, 53 mmol/mol = 7.0004 %."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    start = max(1, 1 - magnitude)
    for decimals in range(start, start + 7):
        shown = round(value, decimals)
        if bound is None or (shown == bound) == (abs(value - bound) <= EPS * max(1.0, abs(bound))):
            return f"{shown:.{decimals}f}"
    return f"{value:.8g}"


def observed(m: Measurement, canonical_unit: str, bound: float | None = None) -> str:
    """`22.1 kg/m²`, `58 mmol/mol = 7.5 %`, `55 years (born 1970-05-01)`, `reported as < 0.1 ng/mL`
    (a censored value: the true value lies beyond the bound the laboratory reported)."""
    unit = display_unit(canonical_unit)
    prefix = f"reported as {m.comparator} " if m.comparator else ""
    raw = (m.raw or "").lstrip("<>=≤≥ ") if m.comparator else (m.raw or "")
    match = _LEADING_NUMBER.match(raw)
    if match is None:        # derived values: "born 1970-05-01", "since 2015-03-01"
        shown = str(int(m.value)) if m.value == int(m.value) else fmt_near(m.value, bound)
        text = f"{prefix}{shown}{unit_suffix(unit)} ({m.raw})"
    else:
        number = match.group(1)
        if m.unit is not None and abs(float(number) - m.value) > EPS * max(1.0, abs(m.value)):
            text = f"{prefix}{number} {m.unit} = {fmt_near(m.value, bound)}{unit_suffix(unit)}"
        elif m.unit is not None:
            text = f"{prefix}{number}{unit_suffix(display_unit(m.unit))}"
        else:
            text = f"{prefix}{number}{unit_suffix(unit)}"
    if m.when is not None and m.when.isoformat() not in text:
        text += f" on {m.when.isoformat()}"    # long-format data: which observation was used
    return text


def provenance(m: Measurement) -> str:
    parts = []
    if m.code:
        parts.append(m.code)
    return f" [{', '.join(parts)}]" if parts else ""


def bound_text(value: float, canonical: float, node_unit: str | None, canonical_unit: str, uln: float | None = None) -> str:
    """The bound in the canonical unit, with the unit the criterion used when that differs."""
    if canonical_unit == ULN:
        return f"{fmt_bound(value, '')} × ULN ({fmt_bound(canonical, '')})" if uln is not None else f"{fmt_bound(value, '')} × ULN"
    shown = f"{fmt_bound(canonical, canonical_unit)}{unit_suffix(display_unit(canonical_unit))}"
    if node_unit and abs(canonical - value) > EPS * max(1.0, abs(value)):
        shown += f" ({fmt_bound(value, '')} {node_unit})"
    return shown


def _compare_text(name: str, node: Compare, m: Measurement, bound: float, holds: bool,
                  uln: float | None, value_unit: str) -> str:
    relation = SYMBOL[node.op] if holds else NEGATED[node.op]
    unit = node.canonical_unit if node.canonical_unit != ULN else value_unit
    limit = bound_text(node.value, bound, node.unit, node.canonical_unit, uln)
    if node.canonical_unit == ULN and uln is not None:
        shown = unit_suffix(display_unit(unit))
        limit = f"{fmt_bound(node.value, '')} × ULN ({fmt_bound(uln, '')}{shown}) = {fmt_bound(bound, '')}{shown}"
    return f"{name} {observed(m, unit, bound)} {relation} {limit}"


def _range_text(name: str, node: Range, m: Measurement, low: float | None, high: float | None,
                side: str, uln: float | None, value_unit: str) -> str:
    """side: 'in' (TRUE), 'low' (below the low bound), 'high' (above the high bound)."""
    unit = node.canonical_unit if node.canonical_unit != ULN else value_unit
    if side == "low":
        relation = "<" if node.low_inclusive else "≤"
        return f"{name} {observed(m, unit, low)} {relation} {bound_text(node.low, low, node.unit, node.canonical_unit, uln)}"
    if side == "high":
        relation = ">" if node.high_inclusive else "≥"
        return f"{name} {observed(m, unit, high)} {relation} {bound_text(node.high, high, node.unit, node.canonical_unit, uln)}"
    if low is not None and high is not None:
        nearest = low if abs(m.value - low) <= abs(m.value - high) else high
        span = f"{fmt_bound(low, unit)}–{fmt_bound(high, unit)}{unit_suffix(display_unit(unit))}"
        if node.unit and (node.low, node.high) != (low, high):
            span += f" ({fmt_bound(node.low, '')}–{fmt_bound(node.high, '')} {node.unit})"
        return f"{name} {observed(m, unit, nearest)} within {span}"
    if low is not None:
        return f"{name} {observed(m, unit, low)} {'≥' if node.low_inclusive else '>'} {bound_text(node.low, low, node.unit, node.canonical_unit, uln)}"
    return f"{name} {observed(m, unit, high)} {'≤' if node.high_inclusive else '<'} {bound_text(node.high, high, node.unit, node.canonical_unit, uln)}"


def missing_text(name: str) -> str:
    return f"{name} missing"


def invalid_text(name: str, reason: str) -> str:
    return f"{name} rejected: {reason}"


def no_uln_text(name: str, concept_id: str) -> str:
    return f"{name}: no upper limit of normal (no {concept_id}_uln value, no registry default)"


def duration_text(duration: Duration) -> str:
    value = fmt_bound(duration.value, "a")
    return f"{value} {_DURATION_UNITS.get(duration.unit, duration.unit)}"


def qualifier_text(name: str, duration: Duration) -> str:
    if name == "duration_at_least":
        return f"held for at least {duration_text(duration)}: cannot be checked from the data"
    return f"{name.replace('_', ' ')} {duration_text(duration)}: cannot be checked from the data"


def listed(names: list[str], limit: int = 5) -> str:
    shown = sorted(names)[:limit]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def manual_label(text: str, words: int = 3) -> str:
    """A part only a person can decide, as the reasons column names it: its first words.

    The column repeats it on every row the criterion is under review, so it stays
    short; explanations (`--format jsonl`, `explain`) and the compiled trial give the
    whole text.
    """
    parts = text.split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]).rstrip(".,;:") + "…"


def short(criterion_id: str, outcome: str, texts: list[str]) -> str:
    # one line per reason ("medications not recorded" once, not per drug class; wrapped trial text unwrapped)
    texts = list(dict.fromkeys(" ".join(t.split()) if "\n" in t or "  " in t else t for t in texts))
    return f"{criterion_id} {outcome}: {'; '.join(texts) if texts else 'no details'}"


def render_patient(result, trial, as_of) -> str:
    """A readable, per-criterion explanation of one patient (`eligibility explain`)."""
    lines = [f"Patient {result.patient_id or '(no id)'} (row {result.row}) — as of {as_of.isoformat()}: {result.verdict}"]
    for note in result.notes:
        lines.append(f"  note: {note}")
    width = max((len(c.id) for c in trial.criteria), default=2)
    for criterion, outcome, texts in zip(trial.criteria, result.outcomes, result.details):
        lines.append(f"  {criterion.id:<{width}}  {outcome:<7}  {criterion.section}: {criterion.text.strip()}")
        for text in texts:
            lines.append(f"  {'':<{width}}  {'':<7}    - {text}")
    return "\n".join(lines)


def compare_text(name: str, node: Compare, m: Measurement, bound: float, holds: bool,
                 uln: float | None, detail: bool, value_unit: str) -> str:
    text = _compare_text(name, node, m, bound, holds, uln, value_unit)
    return text + provenance(m) if detail else text


def range_text(name: str, node: Range, m: Measurement, low: float | None, high: float | None,
               side: str, detail: bool, uln: float | None, value_unit: str) -> str:
    text = _range_text(name, node, m, low, high, side, uln, value_unit)
    return text + provenance(m) if detail else text



def article(word: str) -> str:
    """'an ACE inhibitor', 'a statin' (by the sound of the first letter: vowels, and letters read as vowels)."""
    return "an" if word[:1].lower() in "aeiou" or (word[:1].isupper() and word[:1] in "FHLMNRSX") else "a"
