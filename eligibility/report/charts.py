"""Geometry of the two inline SVG charts: numbers only, the markup is in the templates.

Widths are proportional to the number screened, so bars of different steps
compare directly.  Every bar is accompanied by its numbers as text, and the
outcome kinds differ by fill pattern as well as colour.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .aggregate import FunnelStep
from .inputs import OUTCOMES

LABEL_WIDTH = 96
BAR_WIDTH = 440
TEXT_X = LABEL_WIDTH + BAR_WIDTH + 12
CHART_WIDTH = TEXT_X + 400
ROW_HEIGHT = 30
BAR_HEIGHT = 18


@dataclass(frozen=True)
class Piece:
    kind: str
    x: float
    width: float
    count: int


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    pieces: tuple[Piece, ...]
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    label_x: int = LABEL_WIDTH - 8
    text_x: int = TEXT_X
    bar_height: int = BAR_HEIGHT


def _scale(count: int, total: int) -> float:
    return round(BAR_WIDTH * count / total, 2) if total else 0.0


def _pieces(parts: Sequence[tuple[str, int]], total: int) -> tuple[Piece, ...]:
    x = float(LABEL_WIDTH)
    out = []
    for kind, count in parts:
        width = _scale(count, total)
        if count:
            out.append(Piece(kind, round(x, 2), width, count))
        x += width
    return tuple(out)


def _chart(bars: list[Bar]) -> Chart:
    return Chart(width=CHART_WIDTH, height=ROW_HEIGHT * len(bars) + 8, bars=tuple(bars))


def funnel_chart(screened: int, steps: Sequence[FunnelStep]) -> Chart:
    """`Screened`, then one bar per criterion: who remains, and (hatched, to its right) who failed there."""
    bars = [Bar("screened", 4, _pieces([("remaining", screened)], screened), f"{screened:,} screened")]
    for n, step in enumerate(steps, start=1):
        text = f"{step.remaining:,} remain · {step.failed:,} failed here"
        if step.unknown or step.review:
            text += f" · {step.unknown:,} unknown · {step.review:,} review"
        bars.append(Bar(step.id, 4 + n * ROW_HEIGHT,
                        _pieces([("remaining", step.remaining), ("fail", step.failed)], screened), text))
    return _chart(bars)


def outcome_chart(screened: int, ids: Sequence[str], counts: Mapping[str, Mapping[str, int]]) -> Chart:
    """One stacked bar per criterion over all patients screened: pass, fail, unknown, review."""
    bars = []
    for n, cid in enumerate(ids):
        parts = [(o, counts[cid][o]) for o in OUTCOMES]
        text = " · ".join(f"{o} {c:,}" for o, c in parts)
        bars.append(Bar(cid, 4 + n * ROW_HEIGHT, _pieces(parts, screened), text))
    return _chart(bars)
