"""Segmentation: a criteria text -> inclusion/exclusion items with ids and spans.

All offsets are [start, end) into the criteria text *as given* (CT.gov Markdown
escapes such as `\\>=` stay in; the compiler unescapes them per item).

Rules (DESIGN §2-§3), chosen so that nothing vanishes: every non-space
character ends up in an item's body, an item's marker, or a heading.

- Section headings: the forms of eligibility.compile.headings (`Inclusion
  Criteria`, `Key exclusion criteria`, `Subjects will be included if:`,
  `Critères d'inclusion`, ...), a bullet in front, Markdown emphasis around,
  any case.  Text after the colon starts an item.  A second group of the same
  kind continues that kind's ids.
- Items: numbered (`2.`, `2)`, `(2)`), bulleted (`*`, `-`, `•`, ...), lettered
  or roman (`a)`, `(b)`, `iv.`); a marker indented deeper than the open item
  is a sub-item of it, and so is a sub-marker (letter, roman numeral) at the
  same column under a number or bullet, e.g. `a)` under `3.`.  Any other
  marker at the same column (a count restarting, `-` after `1.`) is a new item
  at that level, so one item never folds a following list into itself.  A
  list written inside an item's line (`- Either: 1) A 2) B`) is its sub-items.
- Lines without a marker continue the item above when they follow it directly,
  or after a blank line when indented deeper than the item's marker.
- Not criteria (reported as headings of their own kind): a narrative section
  after the lists (`INCLUSION OF VULNERABLE PARTICIPANTS`, to the next section
  heading), a note (`Note: ...`, its paragraph), and in a section that uses
  markers a paragraph ending with `:` or directly followed by a heading (an
  intro, "must meet all of the following:", or a group label, "Donors: ...").
  Other unmarked paragraphs there are items.  In a section without markers
  each line is an item, except a line ending with `:` that introduces more
  lines (a note) and a line that plainly wraps the one above (lower-case
  start after a line without final punctuation).
- Text before the first section heading is taken as inclusion items (an
  untitled list of requirements; the compiler warns when there is no heading
  at all); `require_headings=True` makes that an error instead.
- CT.gov often flattens sub-lists; where that changes the meaning (a bullet
  ending "at least one of the following:") the bullets after it are taken
  back as its sub-items (see `_regroup`).
- Ids: `I<n>`/`E<n>` with the item's own number when numbered (a letter or
  roman numeral counts as its number: `g)` is 7; `i)` after `h)` is a letter), else the next
  number after the last one used in that section kind; a number already used
  (a second numbered group restarting at 1) also takes the next free number.
  Sub-items are `<parent>.<n>` by the same rule among siblings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from eligibility.compile.headings import match_heading, match_other_text
from eligibility.compile.lines import MARKER as _MARKER
from eligibility.compile.lines import Line as _Line
from eligibility.compile.lines import marker as _marker
from eligibility.compile.lines import rank as _rank
from eligibility.compile.lines import split_lines as _lines
from eligibility.core.errors import TrialInputError

Section = Literal["inclusion", "exclusion"]
Span = tuple[int, int]


@dataclass(frozen=True)
class Item:
    id: str
    section: Section
    start: int               # body: after the marker, trimmed; includes sub-items
    end: int
    marker: Span | None      # the `2.` / `-` itself, or None for unmarked items
    number: int | None       # the item's own number when numbered
    children: tuple["Item", ...] = ()

    @property
    def span(self) -> Span:
        return (self.start, self.end)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Heading:
    # section: a section heading; note: an intro, group label or remark; narrative: a section of
    # prose after the lists (to the next section heading); empty: a list marker with no text after it
    kind: Literal["section", "note", "narrative", "empty"]
    start: int
    end: int
    section: Section | None = None


@dataclass(frozen=True)
class Segmentation:
    items: tuple[Item, ...]
    headings: tuple[Heading, ...]

    def all_items(self):
        for item in self.items:
            yield from item.walk()




@dataclass
class _Open:
    indent: int
    cls: str
    section: Section
    marker: Span | None
    number: int | None
    start: int = -1
    end: int = -1
    children: list["_Open"] = field(default_factory=list)
    inline: bool = False      # an item of a list written inside its parent's line

    def extend(self, start: int, end: int) -> None:
        if self.start < 0:
            self.start = start
        self.end = max(self.end, end)


# classes that mark a sub-list when written at their parent's column (`3. Labs:` then `a) HbA1c`)
_SUB_MARKERS = ("letter", "roman")


def _owns(parent: _Open, indent: int, cls: str) -> bool:
    """May an open item own a marker at this column?  Only one indented deeper, or a sub-marker
    (a letter or roman numeral) at the same column under a number or bullet.  A marker that
    restarts a count or changes style at the same column (`-` after `1.`, `1.` after `5.`) is a
    new item at the parent's level: nesting it would fold every later item of that list in."""
    if parent.indent != indent:
        return parent.indent < indent
    return cls in _SUB_MARKERS and _rank(parent.cls) < _rank(cls)


def _heading_start(text: str, line: _Line) -> int:
    """Where a heading's words begin: after a bullet and Markdown emphasis (`- **Inclusion**`)."""
    start = line.first
    bullet = _MARKER.match(text, start, line.end)
    if bullet and bullet["bullet"]:
        start = bullet.end()
    while start < line.end and text[start] in " \t*_#":
        start += 1
    return start


def _heading(text: str, line: _Line) -> tuple[Section, int | None] | None:
    """A section heading (the forms: eligibility.compile.headings): its kind and the offset of same-line text."""
    return match_heading(text, _heading_start(text, line), line.end)


class _Ids:
    """The id rule: own number when free, else the next number after the last one used."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.last = 0

    def take(self, number: int | None) -> int:
        if number is None or number in self.used or number == 0:
            number = max(self.last, max(self.used, default=0)) + 1
            while number in self.used:
                number += 1
        self.used.add(number)
        self.last = number
        return number


def segment(text: str, *, require_headings: bool = False, source: str | None = None) -> Segmentation:
    lines = _lines(text)
    headings: list[Heading] = []
    kinds: dict[int, tuple[Section, int | None]] = {}
    for n, line in enumerate(lines):
        if not line.blank and (found := _heading(text, line)):
            kinds[n] = found
    if not kinds and require_headings:
        raise TrialInputError(
            "no 'Inclusion Criteria' or 'Exclusion Criteria' section heading",
            code="E-TRIAL-NO-SECTIONS", file=source,
        )
    # Lines opening a narrative section or a note (not criteria; eligibility.compile.headings).
    other = {n: scope for n, line in enumerate(lines) if not line.blank and n not in kinds
             and (scope := match_other_text(text, _heading_start(text, line), line.end))}
    # Which regions (between headings) use list markers decides how bare lines read.
    marked_region: dict[int, bool] = {}
    region, narrative = -1, False
    for n, line in enumerate(lines):
        if n in kinds:
            region, narrative = n, False
        elif other.get(n) == "section":
            narrative = True
        elif not line.blank and not narrative and _marker(text, line):
            marked_region[region] = True

    roots: list[_Open] = []
    stack: list[_Open] = []
    section: Section = "inclusion"
    region = -1
    prev_blank = True
    n = 0
    while n < len(lines):
        line = lines[n]
        if line.blank:
            prev_blank = True
            n += 1
            continue
        if n in kinds:
            section, rest = kinds[n]
            region, stack = n, []
            end = line.end if rest is None else len(text[:rest].rstrip())
            headings.append(Heading("section", line.first, end, section))
            if rest is not None:   # "Inclusion criteria: 1. Age ≥ 18" - the rest may carry its own marker
                found = _marker(text, _Line(rest, line.end, rest, line.indent))
                marker, number, body = (None, None, rest) if not found or found[2] >= line.end \
                    else ((rest, found[2]), found[1], found[2])
                item = _Open(line.indent, "inline", section, marker, number)
                item.extend(body, line.end)
                roots.append(item)
                stack = [item]
            prev_blank = False
            n += 1
            continue
        if other.get(n) == "section":
            # prose after the lists, up to the next section heading: reported, never a criterion
            last = max(k for k in range(n, min(_next_heading(kinds, n), len(lines))) if not lines[k].blank)
            headings.append(Heading("narrative", line.first, lines[last].end, section))
            stack, n, prev_blank = [], last + 1, False
            continue
        found = _marker(text, line)
        if found:
            cls, number, body = found
            if cls == "roman?":
                letter = ord(text[line.first:body].strip("() .").lower()) - ord("a") + 1
                follows_letter = any(o.indent == line.indent and o.cls == "letter" and o.number == letter - 1
                                     for o in stack)
                cls, number = ("letter", letter) if follows_letter else ("roman", number)
            # an item of a list written inside a line belongs to that line's item; no later line's
            # marker nests under it
            while stack and stack[-1].inline:
                stack.pop()
            if not line.inline:
                while stack and not _owns(stack[-1], line.indent, cls):
                    stack.pop()
            item = _Open(line.indent, cls, section, (line.first, body if body < line.end else line.end), number,
                         inline=line.inline)
            (stack[-1].children if stack else roots).append(item)
            stack.append(item)
            if body < line.end:
                for open_item in stack:   # a parent's span covers its sub-items
                    open_item.extend(body if open_item is item else line.first, line.end)
            prev_blank = False
            n += 1
            continue
        # A line without a marker: a note, a continuation, or a paragraph of its own.
        if other.get(n) in ("paragraph", "line") and (not stack or line.indent <= stack[0].indent):
            last = n if other[n] == "line" else _paragraph_end(text, lines, n, kinds, other,
                                                                marked_region.get(region, False))
            headings.append(Heading("note", line.first, lines[last].end, section))
            stack, n, prev_blank = [], last + 1, False
            continue
        owner = _continuation_owner(text, stack, line, prev_blank)
        if owner is not None:
            while stack[-1] is not owner:
                stack.pop()
            for open_item in stack:
                open_item.extend(line.first, line.end)
            prev_blank = False
            n += 1
            continue
        stack = []
        if marked_region.get(region):
            last = n
            last = _paragraph_end(text, lines, n, kinds, other, True)
            nxt = next((k for k in range(last + 1, len(lines)) if not lines[k].blank), None)
            body = text[line.first:lines[last].end]
            if body.endswith(":") or re.match(r"notes?\b", body, re.I) or nxt in kinds \
                    or other.get(nxt) == "section":
                headings.append(Heading("note", line.first, lines[last].end, section))
                n, prev_blank = last + 1, False
                continue
        elif text[line.end - 1] == ":" and any(not ln.blank for ln in lines[n + 1:_next_heading(kinds, n)]):
            headings.append(Heading("note", line.first, line.end, section))
            n, prev_blank = n + 1, False
            continue
        item = _Open(line.indent, "plain" if marked_region.get(region) else "line", section, None, None)
        item.extend(line.first, line.end)
        roots.append(item)
        stack = [item]
        prev_blank = False
        n += 1
    empty: list[Heading] = []
    items = _freeze(_regroup(text, roots), empty)
    return Segmentation(tuple(items), tuple(sorted(headings + empty, key=lambda h: h.start)))


def _paragraph_end(text: str, lines: list[_Line], n: int, kinds: dict, other: dict, marked: bool) -> int:
    """The last line of the paragraph starting at line n.

    Where lists use markers, a paragraph runs to a blank line, a marker, a
    heading or a narrative section; where each line is an item, only lines
    that plainly wrap the one above (lower-case start after no final
    punctuation) belong to it.
    """
    last = n
    while last + 1 < len(lines):
        nxt = lines[last + 1]
        if nxt.blank or last + 1 in kinds or other.get(last + 1) == "section" or _marker(text, nxt):
            break
        if not marked and (text[lines[last].end - 1] in ".;:!?" or not text[nxt.first].islower()):
            break
        last += 1
    return last


def _next_heading(kinds: dict[int, object], n: int) -> int:
    later = [k for k in kinds if k > n]
    return min(later) if later else 1 << 30


def _continuation_owner(text: str, stack: list[_Open], line: _Line, prev_blank: bool) -> _Open | None:
    if not stack:
        return None
    if stack[-1].cls == "line":
        # one item per line, unless the line plainly wraps the one above
        wraps = not prev_blank and text[stack[-1].end - 1] not in ".;:!?" and text[line.first].islower()
        return stack[-1] if wraps else None
    if line.indent < stack[0].indent:
        return None
    if prev_blank and line.indent <= stack[0].indent:
        return None
    # the deepest open item whose marker sits left of the line (or at it, for flush-left wrapping)
    for open_item in reversed(stack):
        if open_item.indent < line.indent or (not prev_blank and open_item.indent <= line.indent):
            return open_item
    return stack[0]


_ANY_INTRO = re.compile(r"\b(at least (one|1)|any (one )?of|one or more of|either)\b[^:]*:\s*$", re.I)
_LIST_GOES_ON = re.compile(r"([;,]|\b(or|and))\s*$", re.I)
_LIST_GOES_ON_WORD = re.compile(r"(,|\b(or|and))\s*$", re.I)


def _regroup(text: str, nodes: list[_Open]) -> list[_Open]:
    """Undo CT.gov's flattening of "at least one of the following:" lists.

    Only there does nesting change the meaning (one of them, not all of them).
    A bullet item ending with such an intro, without sub-items of its own,
    takes the bullets right after it as sub-items: the first one, and each
    next one while the previous ends as a list goes on (`;`, `,`, or, and).
    Where the items before the intro already end with `;`, a `;` is how this
    list ends every item, not a sign that the sub-list goes on (else one
    intro would fold the rest of a `;`-terminated list into itself).
    """
    out: list[_Open] = []
    k = 0
    while k < len(nodes):
        node = nodes[k]
        out.append(node)
        k += 1
        if node.children:
            node.children = _regroup(text, node.children)
            continue
        if node.start < 0 or not node.cls.startswith("bullet") or not _ANY_INTRO.search(text[node.start:node.end]):
            continue
        before = nodes[k - 2] if k >= 2 else None
        goes_on = _LIST_GOES_ON
        if before is not None and before.start >= 0 and text[before.start:before.end].endswith(";"):
            goes_on = _LIST_GOES_ON_WORD
        while k < len(nodes):
            nxt = nodes[k]
            if nxt.cls != node.cls or nxt.start < 0 or nxt.children or text[node.end:nxt.marker[0]].strip():
                break
            node.children.append(nxt)
            node.end = nxt.end
            k += 1
            if not goes_on.search(text[nxt.start:nxt.end]):
                break
    return out


def _freeze(roots: list[_Open], empty: list[Heading]) -> list[Item]:
    ids = {"inclusion": _Ids(), "exclusion": _Ids()}
    out = []
    for root in roots:
        if root.start < 0:   # bare markers with no text: reported, not items
            empty.extend(_empty_markers(root))
            continue
        number = ids[root.section].take(root.number)
        out.append(_build(root, f"{'I' if root.section == 'inclusion' else 'E'}{number}", empty))
    return out


def _empty_markers(node: _Open) -> list[Heading]:
    found = [Heading("empty", *node.marker, node.section)] if node.marker else []
    return found + [h for child in node.children for h in _empty_markers(child)]


def _build(node: _Open, ident: str, empty: list[Heading]) -> Item:
    ids = _Ids()
    children = []
    for child in node.children:
        if child.start < 0:
            empty.extend(_empty_markers(child))
            continue
        children.append(_build(child, f"{ident}.{ids.take(child.number)}", empty))
    return Item(ident, node.section, node.start, node.end, node.marker, node.number, tuple(children))
