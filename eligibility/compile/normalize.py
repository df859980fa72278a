"""Text normalisation for the criterion compiler, with an offset map back to the source.

The grammar sees one canonical spelling of everything that is written many
ways: ClinicalTrials.gov Markdown escapes (`\\>=`), full-width characters
(`＞`, `％`, `～`), comparison symbols (`=>`, `≧`, `⩾`), superscript powers
(`10⁹` -> `10^9`) and the multiplication sign.  Spans must still point into
the text as the user gave it, so every normalised character remembers the
[start, end) of the source characters it came from.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Markdown escapes CT.gov puts before punctuation (CommonMark's escapable set).
_ESCAPABLE = set("\\`*_{}[]()#+-.!<>=|~'\"$%&,/:;?@^")
_SUPERSCRIPT = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))
# Multi-character comparison spellings folded into one symbol before lexing.
_SYMBOLS = re.compile(r"[><]\s*(?:or|/)\s*=|=\s*/\s*[><]|>\s?=|=\s?>|<\s?=|=\s?<|[≧⩾≥]|[≦⩽≤]", re.IGNORECASE)
_SYMBOL_MAP = {">=": "≥", "=>": "≥", "<=": "≤", "=<": "≤", "≧": "≥", "⩾": "≥", "≥": "≥", "≦": "≤", "⩽": "≤", "≤": "≤",
               ">or=": "≥", "<or=": "≤", ">/=": "≥", "</=": "≤", "=/>": "≥", "=/<": "≤"}
# Characters whose NFKC form we do not want (they would lose meaning).
_KEEP = {"×": "x", "µ": "µ", "μ": "µ", "–": "–", "—": "–", "−": "–", "‐": "-", "‑": "-", "’": "'", "‘": "'"}


# Numbers written as words before a unit of time, weight, pressure, a percent or a multiple
# ("six months", "twenty-one years", "between six and twelve months", "fifty kg", "three times
# ULN"): digits for the grammar.  Only there: "one of the following", "at least one HbA1c value"
# keep their words.  A word number before "(18)" is left to the lexer,
# which reads "eighteen (18)" as one number.
_ONES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_UNITS_WORDS = {w: n for n, w in enumerate(["zero", *_ONES, "ten", "eleven", "twelve", "thirteen", "fourteen",
                                            "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_TENS = {w: 10 * n for n, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2)}
_WORD_NUMBER = (r"(?:(?:" + "|".join(_TENS) + r")(?:[\s\-](?:" + "|".join(_ONES) + r"))?|"
                + "|".join(sorted(_UNITS_WORDS, key=len, reverse=True)) + r")")
_NUMBER_PHRASE = re.compile(
    rf"\b(?P<first>{_WORD_NUMBER})(?:(?P<link>\s*(?:-|–|to|and|or)\s*)(?P<second>{_WORD_NUMBER}|\d+(?:\.\d+)?))?"
    r"(?=\s*(?:(?:years?|yrs?|months?|weeks?|days?|hours?|percent|kg|kilograms?|pounds|lbs?|mmhg|mm\s+hg|"
    r"times|fold)\b|%))", re.IGNORECASE)


# cheap tests before the regex (which is slow to run over every criterion): a stem of a number
# word and a unit word must both occur
_STEMS = ("one", "two", "thre", "four", "five", "six", "seven", "eigh", "nine", "ten", "eleven", "twelve", "zero",
          "twenty", "thir", "forty", "fift")
_AFTER = ("year", "yr", "month", "week", "day", "hour", "percent", "%", "kg", "kilogram", "pound", "lb", "mm",
          "times", "fold")


def _has_number_words(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in _STEMS) and any(w in low for w in _AFTER) and _NUMBER_PHRASE.search(text) is not None


def _word_value(words: str) -> str:
    parts = re.split(r"[\s\-]+", words.lower())
    value = _TENS.get(parts[0], 0) + (_UNITS_WORDS[parts[-1]] if parts[-1] in _UNITS_WORDS else 0)
    return str(value)


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text plus, per character, the [start, end) it covers in the source."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    origin: int  # source offset where the normalised text begins (for empty spans)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text to the source text."""
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else (self.ends[-1] if self.ends else self.origin)
            return (pos, pos)
        return (self.starts[start], self.ends[end - 1])


def normalize(source: str, start: int = 0, end: int | None = None) -> Normalized:
    """Normalise source[start:end]; offsets in the result map back into `source`."""
    end = len(source) if end is None else end
    piece = source[start:end]
    if piece.isascii() and "\\" not in piece:
        # the common case: nothing to unescape or fold character by character
        starts = list(range(start, end))
        ends = list(range(start + 1, end + 1))
        if any(c in piece for c in "<>="):
            piece, starts, ends = _fold_symbols(piece, starts, ends)
        if _has_number_words(piece):
            piece, starts, ends = _fold_number_words(piece, starts, ends)
        return Normalized(piece, tuple(starts), tuple(ends), start)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def emit(chars: str, a: int, b: int) -> None:
        for ch in chars:
            out.append(ch)
            starts.append(a)
            ends.append(b)

    i = start
    while i < end:
        ch = source[i]
        if ch == "\\" and i + 1 < end and source[i + 1] in _ESCAPABLE:
            emit(source[i + 1], i, i + 2)
            i += 2
            continue
        if ch in _SUPERSCRIPT:
            # `10⁹` -> `10^9`, `m²` -> `m^2`: a run of superscript digits is a power
            j = i
            while j < end and source[j] in _SUPERSCRIPT:
                j += 1
            emit("^", i, i + 1)
            for k in range(i, j):
                emit(_SUPERSCRIPT[source[k]], k, k + 1)
            i = j
            continue
        if ch.isascii():
            emit(ch, i, i + 1)
        elif ch in _KEEP:
            emit(_KEEP[ch], i, i + 1)
        elif ch in "≧⩾≥≦⩽≤":
            emit(ch, i, i + 1)
        else:
            folded = unicodedata.normalize("NFKC", ch)
            if ch.isspace() or not folded.strip():
                folded = " "
            elif len(folded) > 1 and not folded.isalpha():
                # `¾` -> `3⁄4`: an expansion would split one source character over several tokens
                folded = ch
            emit(folded.replace("μ", "µ"), i, i + 1)
        i += 1
    text = "".join(out)
    # Fold comparison spellings (`>=`, `=>`, `≧`) to one symbol each.
    if any(c in text for c in "<>=≧⩾≦⩽"):
        text, starts, ends = _fold_symbols(text, starts, ends)
    if _has_number_words(text):
        text, starts, ends = _fold_number_words(text, starts, ends)
    return Normalized(text, tuple(starts), tuple(ends), start)


def _fold_symbols(text: str, starts: list[int], ends: list[int]) -> tuple[str, list[int], list[int]]:
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    last = 0
    for match in _SYMBOLS.finditer(text):
        a, b = match.span()
        pieces.append(text[last:a])
        new_starts.extend(starts[last:a])
        new_ends.extend(ends[last:a])
        key = re.sub(r"\s+", "", match.group()).lower()
        pieces.append(_SYMBOL_MAP.get(key, key))
        new_starts.append(starts[a])
        new_ends.append(ends[b - 1])
        last = b
    pieces.append(text[last:])
    new_starts.extend(starts[last:])
    new_ends.extend(ends[last:])
    return "".join(pieces), new_starts, new_ends


def _fold_number_words(text: str, starts: list[int], ends: list[int]) -> tuple[str, list[int], list[int]]:
    """`six months` -> `6 months`; each digit maps to the whole word it replaces."""
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    last = 0

    def keep(a: int, b: int) -> None:
        pieces.append(text[a:b])
        new_starts.extend(starts[a:b])
        new_ends.extend(ends[a:b])

    def digits(a: int, b: int) -> None:
        value = _word_value(text[a:b])
        pieces.append(value)
        new_starts.extend([starts[a]] * len(value))
        new_ends.extend([ends[b - 1]] * len(value))

    for match in _NUMBER_PHRASE.finditer(text):
        keep(last, match.start("first"))
        digits(*match.span("first"))
        if match.group("second") is not None:
            keep(*match.span("link"))
            a, b = match.span("second")
            if match.group("second")[0].isdigit():
                keep(a, b)
            else:
                digits(a, b)
        last = match.end()
    keep(last, len(text))
    return "".join(pieces), new_starts, new_ends


def normalize_phrase_text(text: str) -> str:
    """Normalise a registry phrase the same way criterion text is normalised (for the lexer)."""
    return normalize(text).text.lower()
