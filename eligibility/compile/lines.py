"""The lines segmentation reads, as offsets into the text, and the list markers that start them;
a numbered list written on one line (`1. Age 18-65 2. BMI < 30 3. HbA1c 7-10%`) becomes one
line per item.

Registries and PDFs often flatten a list into one line.  A line is cut before
each inline marker that continues its numbering: the line starts with `n.` (or
`n)`) and later markers of the same style count on from it, or a colon is
followed by `1.` and the markers count on from there (`Inclusion criteria:
1) ...; 2) ...`).  Numbers that do not continue the count (`Type 2. ...` after
`1. ...` is still a cut; `visit 3. ...` after `1. ...` is not) are left alone,
so a sentence with a stray `2.` stays whole.  Offsets are kept: the pieces are
views of the same text.

Lines end at CRLF, CR or LF alike (a file saved on an old Mac, or pasted text
mixing them), and a byte-order mark at the very start is read as blank space,
so offsets index the text exactly as the caller gave it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# a marker inside a line: whitespace (or a colon or semicolon) before, `12.` or `12)`, whitespace after
_INLINE = re.compile(r"(?:(?<=\s)|(?<=[:;]))(\d{1,2})([.)])\s+(?=\S)")
_LEADING = re.compile(r"(\d{1,2})([.)])\s+(?=\S)")


def _counted(found: list, expected: int, style: str) -> list[int]:
    cuts = []
    for m in found:
        if m.group(2) == style and int(m.group(1)) == expected:
            cuts.append(m.start())
            expected += 1
    return cuts


def inline_lists(text: str, first: int, end: int) -> tuple[list[int], list[int]]:
    """(continuing, nested): offsets inside text[first:end] where an inline list item begins.

    `continuing` items go on with the count of the line's own leading `n.` (a flattened list:
    each is an item at the line's level); `nested` items form a list opened by a colon and
    counted from 1 (`... as follows: 1) A 2) B`), inside an item that has a marker of its own,
    so they are its sub-items.  A line with no marker of its own ("Inclusion criteria: 1) ...")
    gives its colon list as `continuing`: there is no item to nest them under.
    """
    lead = _LEADING.match(text, first, end)
    found = [m for m in _INLINE.finditer(text, first, end) if m.start() > first]
    # "...: 1) ..." -- a count starting at 1, right after a colon
    opener = next((m for m in found if m.group(1) == "1" and text[first:m.start()].rstrip().endswith(":")), None)
    nested: list[int] = []
    if opener is not None:
        after = [m for m in found if m.start() > opener.start()]
        nested = [opener.start(), *_counted(after, 2, opener.group(2))]
        # one further item at least: a lone "1)" after a colon is a sentence's own numbering
        nested = nested if len(nested) >= 2 else []
    if lead is None:
        return ([], nested) if marker_at(text, first, end) else (nested, [])
    # the line's own count goes on only before a nested list begins
    limit = nested[0] if nested else end
    continuing = _counted([m for m in found if m.start() < limit], int(lead.group(1)) + 1, lead.group(2))
    return continuing, nested


def inline_starts(text: str, first: int, end: int) -> list[int]:
    """Offsets inside text[first:end] where a further item of a one-line numbered list begins."""
    continuing, nested = inline_lists(text, first, end)
    return sorted(continuing + nested)


@dataclass
class Line:
    start: int        # offset of the first character of the line
    end: int          # offset after the last non-space character
    first: int        # offset of the first non-space character (== end for blank)
    indent: int       # column of the first non-space character (tab = 4)
    inline: bool = False   # an item of a list written inside the line's own item (`- Either: 1) A 2) B`)

    @property
    def blank(self) -> bool:
        return self.first >= self.end


_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


def line_bounds(text: str):
    """(start, end) of each physical line, the line end excluded, whichever of CRLF, CR or LF ends it."""
    pos = 0
    for m in _LINE_END.finditer(text):
        yield pos, m.start()
        pos = m.end()
    yield pos, len(text)


def split_lines(text: str) -> list[Line]:
    """Physical lines; a one-line numbered list becomes one line per item."""
    out = []
    for pos, stop in line_bounds(text):
        raw = text[pos:stop]
        stripped = raw.rstrip()
        body = raw.lstrip()
        if pos == 0 and body.startswith(_BOM):
            # not whitespace to str.strip(); at the start of the text it is only an encoding mark
            body = body[1:].lstrip()
        lead = len(raw) - len(body)
        indent = len(raw[:lead].replace(_BOM, "").expandtabs(4))
        line = Line(pos, pos + len(stripped), pos + min(lead, len(stripped)), indent)
        continuing, nested = inline_lists(text, line.first, line.end) if not line.blank else ([], [])
        cuts = sorted(continuing + nested)
        if not cuts:
            out.append(line)
        inner = set(nested)
        for start, nxt in zip([line.first, *cuts], [*cuts, line.end]) if cuts else ():
            end = nxt
            while end > start and text[end - 1] in " \t":
                end -= 1
            out.append(Line(line.start if start == line.first else start, end, start, indent, start in inner))
    return out


# -- list markers ------------------------------------------------------------------------

MARKER = re.compile(
    r"(?:(?P<num>\d{1,3})(?:[.)]|-(?=\s))|\((?P<pnum>\d{1,3})\)"
    r"|(?P<bullet>[*\-+•·▪◦‣⁃○●■□➢➤–—\uf0b7\uf0a7]|o(?=\s))"   # `o` and U+F0B7: Word's sub-bullets
    r"|\(?(?P<roman>(?i:i{1,3}|iv|vi{0,3}|ix|x))[.)]"
    r"|\(?(?P<letter>[a-zA-Z])[.)]|\((?P<pletter>[a-zA-Z])\))(?=\s|$)"
)
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}


def marker_at(text: str, first: int, end: int) -> bool:
    """Does text[first:end] begin with a list marker?"""
    return MARKER.match(text, first, end) is not None


def marker(text: str, line: Line) -> tuple[str, int | None, int] | None:
    """(class, number, body offset) of a list marker at the start of the line."""
    m = MARKER.match(text, line.first, line.end)
    if not m:
        return None
    if m["num"] or m["pnum"]:
        cls, number = ("num" if m["num"] else "pnum"), int(m["num"] or m["pnum"])
    elif m["bullet"]:
        cls, number = "bullet" + m["bullet"], None
    elif m["roman"]:
        cls, number = "roman", _ROMAN[m["roman"].lower()]
        if len(m["roman"]) == 1:   # `i)` may be the letter after `h)`: the caller decides
            cls = "roman?"
    else:
        letter = (m["letter"] or m["pletter"]).lower()
        cls, number = "letter", ord(letter) - ord("a") + 1
    body = m.end()
    while body < line.end and text[body] in " \t":
        body += 1
    return cls, number, body


def rank(cls: str) -> int:
    """Nesting rank of a marker class: numbers > bullets > letters > roman (`a)` nests under `3.`)."""
    return {"num": 0, "pnum": 0, "letter": 2, "roman": 3}.get(cls, 1 if cls.startswith("bullet") else 9)
