"""The lines segmentation reads, as offsets into the text; a numbered list written on one line
(`1. Age 18-65 2. BMI < 30 3. HbA1c 7-10%`) becomes one line per item.

Registries and PDFs often flatten a list into one line.  A line is cut before
each inline marker that continues its numbering: the line starts with `n.` (or
`n)`) and later markers of the same style count on from it, or a colon is
followed by `1.` and the markers count on from there (`Inclusion criteria:
1) ...; 2) ...`).  Numbers that do not continue the count (`Type 2. ...` after
`1. ...` is still a cut; `visit 3. ...` after `1. ...` is not) are left alone,
so a sentence with a stray `2.` stays whole.  Offsets are kept: the pieces are
views of the same text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# a marker inside a line: whitespace (or a colon or semicolon) before, `12.` or `12)`, whitespace after
_INLINE = re.compile(r"(?:(?<=\s)|(?<=[:;]))(\d{1,2})([.)])\s+(?=\S)")
_LEADING = re.compile(r"(\d{1,2})([.)])\s+(?=\S)")


def inline_starts(text: str, first: int, end: int) -> list[int]:
    """Offsets inside text[first:end] where a further item of a one-line numbered list begins."""
    lead = _LEADING.match(text, first, end)
    found = [m for m in _INLINE.finditer(text, first, end) if m.start() > first]
    if lead is not None:
        expected, style, cuts = int(lead.group(1)) + 1, lead.group(2), []
    else:
        # "...criteria: 1) ..." -- the count must start at 1, right after a colon
        start = next((m for m in found if m.group(1) == "1" and text[first:m.start()].rstrip().endswith(":")), None)
        if start is None:
            return []
        expected, style, cuts = 2, start.group(2), [start.start()]
        found = [m for m in found if m.start() > start.start()]
    for m in found:
        if m.group(2) == style and int(m.group(1)) == expected:
            cuts.append(m.start())
            expected += 1
    # one further item at least: a lone "1)" after a colon is a sentence's own numbering
    return cuts if len(cuts) >= (1 if lead is not None else 2) else []


@dataclass
class Line:
    start: int        # offset of the first character of the line
    end: int          # offset after the last non-space character
    first: int        # offset of the first non-space character (== end for blank)
    indent: int       # column of the first non-space character (tab = 4)

    @property
    def blank(self) -> bool:
        return self.first >= self.end


def split_lines(text: str) -> list[Line]:
    """Physical lines; a one-line numbered list becomes one line per item."""
    out, pos = [], 0
    for raw in text.split("\n"):
        stripped = raw.rstrip()
        lead = len(raw) - len(raw.lstrip())
        indent = len(raw[:lead].expandtabs(4))
        line = Line(pos, pos + len(stripped), pos + min(lead, len(stripped)), indent)
        cuts = inline_starts(text, line.first, line.end) if not line.blank else []
        if not cuts:
            out.append(line)
        for start, nxt in zip([line.first, *cuts], [*cuts, line.end]) if cuts else ():
            end = nxt
            while end > start and text[end - 1] in " \t":
                end -= 1
            out.append(Line(line.start if start == line.first else start, end, start, indent))
        pos += len(raw) + 1
    return out
