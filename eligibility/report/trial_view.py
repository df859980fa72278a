"""The trial panel's data, read from the compiled-trial JSON (DESIGN §3) alone.

Spans in that document are offsets into the whole criteria text, on the
criterion and on every node alike; a node's place inside its criterion's own
`text` is therefore its span minus the criterion's start.  When the document
carries `criteria_text` the criterion's slice is checked against its `text`,
and a mismatch shows the text without highlights rather than misplaced ones.
Structured fields (age, sex) have an empty span: their text is shown as is.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ReportInputError

SECTIONS = ("inclusion", "exclusion")
STATUSES = ("compiled", "partial", "manual")
_ATOMS = ("compare", "range", "has")
_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "!=": "≠"}
# Later kinds win where spans overlap: text not compiled must never look compiled.
_PAINT_ORDER = ("compiled", "manual", "unparsed")


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str | None  # None: connective or punctuation between the parts
    note: str = ""


@dataclass(frozen=True)
class TreeLine:
    label: str
    kind: str
    children: tuple["TreeLine", ...] = ()


@dataclass(frozen=True)
class CriterionView:
    id: str
    section: str
    status: str
    text: str
    segments: tuple[Segment, ...]
    spans_note: str
    tree: TreeLine
    unparsed: tuple[str, ...]
    problems: tuple[str, ...]


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:g}" if value == value else "NaN"


def _qualifiers(node: dict) -> str:
    parts = []
    for name, value in (node.get("qualifiers") or {}).items():
        if isinstance(value, dict) and "value" in value:
            parts.append(f"{name.replace('_', ' ')} {_num(value['value'])} {value.get('unit', '')}".rstrip())
        else:
            parts.append(f"{name.replace('_', ' ')} {value}")
    return f" [{'; '.join(parts)}]" if parts else ""


def _bound_label(node: dict) -> str:
    concept, unit = node.get("concept", "?"), node.get("canonical_unit") or node.get("unit") or ""
    if node["kind"] == "compare":
        text = f"{concept} {_OPS.get(node.get('op'), node.get('op'))} {_num(node.get('canonical_value'))} {unit}"
        written = (node.get("value"), node.get("unit"))
        if written[0] is not None and (written[0] != node.get("canonical_value") or written[1] != unit):
            text += f" (as written: {_num(written[0])} {written[1] or ''})".replace(" )", ")")
        return text.rstrip()
    low, high = node.get("canonical_low"), node.get("canonical_high")
    lo_op = "≤" if node.get("low_inclusive", True) else "<"
    hi_op = "≤" if node.get("high_inclusive", True) else "<"
    text = concept
    if low is not None:
        text = f"{_num(low)} {lo_op} {text}"
    if high is not None:
        text = f"{text} {hi_op} {_num(high)}"
    text = f"{text} {unit}".rstrip()
    if (node.get("low"), node.get("high")) != (low, high) or (node.get("unit") or unit) != unit:
        shown = "–".join(_num(v) for v in (node.get("low"), node.get("high")) if v is not None)
        text += f" (as written: {shown} {node.get('unit') or ''})".replace(" )", ")")
    return text


def _has_label(node: dict) -> str:
    text = f"has {node.get('category', '?')}: {node.get('label') or node.get('code')}"
    if node.get("code") and node.get("label") and node["label"] != node["code"]:
        text += f" ({node['code']})"
    within = node.get("within")
    if isinstance(within, dict) and "value" in within:
        text += f", within {_num(within['value'])} {within.get('unit', '')}".rstrip()
    codes = node.get("codes") or {}
    if codes:
        text += "; codes " + "; ".join(f"{system} {', '.join(map(str, values))}" for system, values in codes.items())
    return text


def tree_line(node: dict) -> TreeLine:
    """A node as one readable line, children below it."""
    kind = node.get("kind")
    children: tuple[TreeLine, ...] = ()
    if kind in ("all", "any"):
        children = tuple(tree_line(c) for c in node.get("children") or [])
        label = ("all of" if kind == "all" else "any of") if children else "no restriction"
    elif kind == "not":
        children = (tree_line(node.get("child") or {}),)
        label = "not"
    elif kind in ("compare", "range"):
        label = _bound_label(node)
    elif kind == "has":
        label = _has_label(node)
    elif kind == "manual":
        label = f"a person decides: “{node.get('text', '')}” ({node.get('reason', 'not computable')})"
    else:
        label = f"unrecognised node kind {kind!r}"
    return TreeLine(label=label + _qualifiers(node), kind=str(kind), children=children)


def _leaves(node: dict) -> Iterator[dict]:
    if node.get("kind") in ("all", "any"):
        for child in node.get("children") or []:
            yield from _leaves(child)
    elif node.get("kind") == "not":
        yield from _leaves(node.get("child") or {})
    else:
        yield node


def _span(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    return None


def segments(criterion: dict, criteria_text: str | None) -> tuple[tuple[Segment, ...], str]:
    text: str = criterion["text"]
    start, end = criterion["span"]
    if end <= start:
        return (Segment(text, "structured", "from the trial's structured fields"),), ""
    if criteria_text is not None and criteria_text[start:end] != text:
        return (Segment(text, None),), "the spans in this document do not match the criterion text; shown without highlights"
    paint: list[tuple[str, str] | None] = [None] * len(text)

    def fill(span: tuple[int, int] | None, kind: str, note: str) -> None:
        if span is not None:
            for i in range(max(0, span[0] - start), min(len(text), span[1] - start)):
                paint[i] = (kind, note)

    leaves = list(_leaves(criterion["tree"]))
    for kind in _PAINT_ORDER[:2]:
        for leaf in leaves:
            if (leaf.get("kind") == "manual") == (kind == "manual"):
                fill(_span(leaf.get("span")), kind, tree_line(leaf).label)
    for span in criterion.get("unparsed") or []:
        fill(_span(span), "unparsed", "not compiled: nothing in the tree checks this text")
    runs: list[Segment] = []
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and paint[j] == paint[i]:
            j += 1
        kind, note = paint[i] if paint[i] else (None, "")
        runs.append(Segment(text[i:j], kind, note))
        i = j
    return tuple(runs), ""


def check_trial(doc: Any, file: str | None = None) -> None:
    """Raise ReportInputError unless `doc` has what the trial panel and the funnel read."""

    def fail(message: str) -> None:
        raise ReportInputError(message, code="E-REPORT-TRIAL", file=file)

    if not isinstance(doc, dict) or not isinstance(doc.get("criteria"), list) or not doc["criteria"]:
        fail("not a compiled trial: expected an object with a non-empty 'criteria' list "
             "(eligibility compile TRIAL --format json)")
    seen: set[str] = set()
    for n, c in enumerate(doc["criteria"], start=1):
        where = f"criterion {n}"
        if not isinstance(c, dict) or not isinstance(c.get("id"), str) or not c["id"]:
            fail(f"{where}: no 'id'")
        where = f"criterion {c['id']}"
        if c["id"] in seen:
            fail(f"{where}: id appears twice")
        seen.add(c["id"])
        if c.get("section") not in SECTIONS:
            fail(f"{where}: section {c.get('section')!r} is not inclusion or exclusion")
        if c.get("status") not in STATUSES:
            fail(f"{where}: status {c.get('status')!r} is not one of {', '.join(STATUSES)}")
        if not isinstance(c.get("text"), str) or _span(c.get("span")) is None or not isinstance(c.get("tree"), dict):
            fail(f"{where}: needs 'text', 'span' [start, end] and 'tree'")


def criterion_views(doc: dict) -> tuple[CriterionView, ...]:
    criteria_text = doc.get("criteria_text") if isinstance(doc.get("criteria_text"), str) else None
    views = []
    for c in doc["criteria"]:
        segs, note = segments(c, criteria_text)
        start = c["span"][0]
        unparsed = tuple(c["text"][max(0, s[0] - start):max(0, s[1] - start)]
                         for s in map(_span, c.get("unparsed") or []) if s is not None)
        problems = tuple(f"{p.get('code', 'problem')}: {p.get('message', '')}"
                         for p in c.get("problems") or [] if isinstance(p, dict))
        views.append(CriterionView(
            id=c["id"], section=c["section"], status=c["status"], text=c["text"], segments=segs,
            spans_note=note, tree=tree_line(c["tree"]), unparsed=unparsed, problems=problems))
    return tuple(views)
