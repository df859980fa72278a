"""Race and ethnicity categories (eligibility/data/races.toml): the OMB categories, their codes, words.

One table serves both ends: the compiler reads criteria words ("Asian participants",
"Hispanic or Latino ethnicity") as the status codes `race_<id>` / `ethnicity_<id>`;
the readers turn data values (Synthea `asian`, CDC `2028-9`, OMOP `8515`, wide-CSV
words) into the same ids for Patient.race / Patient.ethnicity.  It lives in the
registry layer because both the compiler and the readers (siblings) use it.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

KINDS = ("race", "ethnicity")
PREFIXES = tuple(f"{k}_" for k in KINDS)


@dataclass(frozen=True)
class Origin:
    kind: str                       # "race" or "ethnicity"
    id: str
    name: str                       # the OMB wording, shown as the label
    cdc: str
    omop: int | None
    words: tuple[str, ...]          # normalised criteria phrases (also accepted as data values)
    values: tuple[str, ...]         # normalised data-only spellings
    ambiguous: frozenset[str]       # colour words: race only in a race context

    @property
    def code(self) -> str:
        return f"{self.kind}_{self.id}"


@dataclass(frozen=True)
class Table:
    origins: tuple[Origin, ...]
    by_code: dict[str, Origin]
    phrases: dict[tuple[str, ...], Origin]      # criteria words -> category
    longest: int                                # words in the longest phrase
    context: frozenset[str]                     # "descent", "ethnicity": a race is meant
    fillers: frozenset[str]                     # words about the people ("participants", "for")
    others: frozenset[str]
    missing: frozenset[str]                     # data values meaning "not known"
    data: dict[str, dict[str, str]]             # kind -> normalised value / code -> id

    @property
    def bridge(self) -> frozenset[str]:
        """The words of race phrases, context words and `others`: a bound after them may reuse the
        measurement named before them (`BMI ≥ 23 (Asian descent) or ≥ 25 (others)`)."""
        words = frozenset(w for p in self.phrases for w in p) | self.context | self.others | {"non"}
        return words - {"or", "not", "all", "rest", "remaining"}     # common words that say nothing of race


def normal(text: str) -> str:
    """`Black/African-American` -> `black african american`."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


@lru_cache(maxsize=1)
def table() -> Table:
    raw = tomllib.loads(resources.files("eligibility").joinpath("data", "races.toml").read_text("utf-8"))
    origins = []
    for kind in KINDS:
        for entry in raw[kind]:
            origins.append(Origin(
                kind=kind, id=entry["id"], name=entry["name"], cdc=entry["cdc"], omop=entry.get("omop"),
                words=tuple(normal(w) for w in entry.get("words", ())),
                values=tuple(normal(v) for v in entry.get("values", ())),
                ambiguous=frozenset(normal(w) for w in entry.get("ambiguous", ()))))
    phrases = {tuple(w.split()): o for o in origins for w in o.words}
    data: dict[str, dict[str, str]] = {k: {} for k in KINDS}
    for o in origins:
        keys = [*o.words, *o.values, normal(o.name), normal(o.cdc), normal(o.id)]
        if o.omop is not None:
            keys.append(str(o.omop))
        for key in keys:
            data[o.kind].setdefault(key, o.id)
    words = raw.get("words", {})
    return Table(tuple(origins), {o.code: o for o in origins}, phrases, max(map(len, phrases)),
                 frozenset(words.get("context", ())), frozenset(words.get("fillers", ())), frozenset(words.get("others", ())),
                 frozenset(normal(v) for v in raw.get("missing", {}).get("values", ())), data)


def origin_of(code: str) -> Origin | None:
    """The category of a status code `race_asian` / `ethnicity_hispanic`, else None."""
    return table().by_code.get(code) if code.startswith(PREFIXES) else None


def data_value(kind: str, text: str) -> tuple[str | None, list[str]]:
    """A data cell or code -> (ids joined by ",", unrecognised parts).

    Several values (`Asian; White`, a FHIR Patient with two ombCategory codings) are all kept:
    a person of more than one race is of each.  Empty text, a value saying "unknown" and an
    OMOP concept id 0 ("No matching concept") give (None, []).
    """
    known, missing = table().data[kind], table().missing
    found: set[str] = set()
    bad: list[str] = []
    for part in re.split(r"[;|]", text):
        key = normal(part)
        if not key or key == "0" or key in missing:
            continue
        ident = known.get(key)
        if ident is None:
            bad.append(part.strip())
        else:
            found.add(ident)
    return (",".join(sorted(found)) or None), bad


def describe(kind: str, value: str) -> str:
    """`asian,white` -> `Asian, White` for explanations."""
    names = {o.id: o.name for o in table().origins if o.kind == kind}
    return ", ".join(names.get(v, v) for v in value.split(","))


def set_origin(patient, race: str | None = None, ethnicity: str | None = None) -> None:
    """Patient.race / ethnicity from a reader's values (words, CDC codes or OMOP ids; None: not
    given, left as it is).  A value naming no category is a data problem of the patient, and
    the field stays unknown."""
    for kind, text in (("race", race), ("ethnicity", ethnicity)):
        if text is None:
            continue
        value, bad = data_value(kind, text)
        setattr(patient, kind, value)
        patient.problems.extend(f"{kind} '{b}' is not a known {kind} (OMB category, CDC or OMOP code)" for b in bad)
