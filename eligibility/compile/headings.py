"""Section headings and other non-criterion text, as tables of the ways trials write them.

Segmentation (eligibility.compile.segment) asks two questions of a line:

- is it a **section heading**, and of which section?  `HEADINGS` lists the
  forms registries carry: `Inclusion Criteria`, `Key exclusion criteria`,
  `Inclusion conditions`, `Inclusion:`, sentences such as `Subjects will be
  included if:` or `Patients are not eligible if`, and the French, Spanish,
  German, Italian, Portuguese and Dutch names.  A form may allow a few
  qualifying words before it (`Donor`, `Key`, `1.`) and a short tail after
  it (`for donors`); then an optional colon, after which same-line text
  starts the first item.
- does it start text that is **not a criterion** (`OTHER_TEXT`)?  A narrative
  section after the lists (`INCLUSION OF VULNERABLE PARTICIPANTS`) runs to
  the next section heading; a note (`Note:`) is its own paragraph; a title
  over both lists (`Inclusion and Exclusion Criteria:`) is its own line.
  None becomes a criterion of the list above it; all are reported, never dropped.

Adding a form is adding a row (and a case to tests/cases/headings.jsonl).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Section = Literal["inclusion", "exclusion"]
Lead = Literal["words", "key", "none"]

# Who a sentence heading speaks of ("Subjects will be included if", "All patients must meet ...").
_WHO = (r"(?:(?:all|the|potential|prospective|eligible)\s+)?(?:subjects?|patients?|participants?|individuals?"
        r"|persons?|people|volunteers?|candidates?|women|men|children|adults|donors?|recipients?)")
# What may end such a sentence: "... if they meet any of the following (criteria)".
_FOLLOWING = (r"(?:\s+(?:they|he\s+or\s+she|she|he))?(?:\s+(?:meets?|fulfill?s?|satisf(?:y|ies)|ha(?:s|ve)"
              r"|present\s+with)\s+(?:any|all|each|one|none|at\s+least\s+one)(?:\s+or\s+more)?\s+of\s+the"
              r"\s+following(?:\s+(?:criteria|conditions|requirements))?)?")
_IN_STUDY = r"(?:\s+(?:in|into|for|from)\s+(?:the|this)\s+(?:study|trial|protocol))?"
_NOUN = r"(?:criteri(?:a|on|as)|conditions?|requirements?)"


@dataclass(frozen=True)
class HeadingForm:
    section: Section
    words: str        # the heading's own words (a regex, matched case-insensitively)
    lead: Lead        # words: up to three qualifying words before; key: key/main/...; none
    tail: bool        # a short tail may follow ("for donors")


HEADINGS: tuple[HeadingForm, ...] = (
    HeadingForm("inclusion", rf"inclusions?\s+{_NOUN}", "words", True),
    HeadingForm("exclusion", rf"non[\s-]?inclusions?\s+{_NOUN}", "words", True),
    HeadingForm("exclusion", rf"exclusions?\s+{_NOUN}", "words", True),
    HeadingForm("inclusion", r"criteria\s+for\s+inclusion", "key", False),
    HeadingForm("exclusion", r"criteria\s+for\s+exclusion", "key", False),
    HeadingForm("inclusion", r"inclusions?", "key", False),
    HeadingForm("exclusion", r"exclusions?", "key", False),
    # sentences standing for a heading; the sentence must end there (or at a colon)
    HeadingForm("inclusion", rf"{_WHO}\s+(?:will|may|can|shall)\s+be\s+(?:included|enrolled|eligible){_IN_STUDY}"
                             rf"(?:\s+(?:if|when){_FOLLOWING})?", "none", False),
    HeadingForm("inclusion", rf"{_WHO}\s+(?:are|is)\s+eligible{_IN_STUDY}\s+(?:if|when){_FOLLOWING}", "none", False),
    HeadingForm("inclusion", rf"{_WHO}\s+must\s+(?:meet|fulfill?|satisfy|have)\s+(?:all|each)\s+(?:of\s+)?the"
                             rf"\s+following(?:\s+{_NOUN})?(?:\s+to\s+be\s+(?:eligible|included|enrolled){_IN_STUDY})?",
                "none", False),
    HeadingForm("exclusion", rf"{_WHO}\s+(?:will|may|shall)\s+(?:be\s+excluded|not\s+be\s+(?:included|enrolled|eligible)"
                             rf"|not\s+participate){_IN_STUDY}(?:\s+(?:if|when){_FOLLOWING})?", "none", False),
    HeadingForm("exclusion", rf"{_WHO}\s+(?:are|is)\s+(?:not\s+eligible|ineligible|excluded){_IN_STUDY}"
                             rf"(?:\s+(?:if|when){_FOLLOWING})?", "none", False),
    HeadingForm("exclusion", rf"{_WHO}\s+(?:who|that)\s+(?:meets?|ha(?:s|ve)|fulfill?s?)\s+any\s+(?:one\s+)?of\s+the"
                             rf"\s+following(?:\s+{_NOUN})?\s+(?:will\s+be|are|is|must\s+be)\s+(?:excluded|not\s+eligible"
                             rf"|ineligible){_IN_STUDY}", "none", False),
    HeadingForm("exclusion", rf"{_WHO}\s+must\s+not\s+(?:meet|have)\s+any\s+of\s+the\s+following(?:\s+{_NOUN})?",
                "none", False),
    # other languages, as registries (EU CTR, ISRCTN, national registries) carry them
    HeadingForm("inclusion", r"crit[eè]res?\s+d\s*['’]\s*inclusion", "words", True),
    HeadingForm("exclusion", r"crit[eè]res?\s+(?:de\s+non[\s-]?inclusion|d\s*['’]\s*exclusion)", "words", True),
    HeadingForm("inclusion", r"crit[eé]rios?\s+de\s+inclus(?:i[oó]n|[ãa]o)", "words", True),
    HeadingForm("exclusion", r"crit[eé]rios?\s+de\s+exclus(?:i[oó]n|[ãa]o)", "words", True),
    HeadingForm("inclusion", r"einschlu(?:ss|ß)kriterien", "words", True),
    HeadingForm("exclusion", r"ausschlu(?:ss|ß)kriterien", "words", True),
    HeadingForm("inclusion", r"criteri\s+di\s+inclusione", "words", True),
    HeadingForm("exclusion", r"criteri\s+di\s+esclusione", "words", True),
    HeadingForm("inclusion", r"inclusiecriteria", "words", True),
    HeadingForm("exclusion", r"exclusiecriteria", "words", True),
)

# Words that make "<words> inclusion criteria" a sentence, not a heading ("Meets inclusion criteria ...").
NOT_HEADING_WORDS = frozenset({
    "meet", "meets", "met", "meeting", "fulfil", "fulfils", "fulfill", "fulfills", "satisfy",
    "satisfies", "see", "per", "all", "any", "other", "the", "no", "not", "of", "as",
    "with", "without", "does", "did", "do", "if", "and", "or", "to", "in",
})

_LEADS = {
    "words": r"(?:[A-Za-z0-9][\w/&'().-]*\s+){0,3}?",
    "key": r"(?:(?:key|main|major|general|additional|specific|other)\s+)?",
    "none": "",
}
# A line can only be a heading if it holds one of these stems: one search rules out most lines.
_STEMS = re.compile(r"inclu|exclu|esclu|eligib|particip|enrol|following|einschlu|ausschlu", re.IGNORECASE)


def _frame(words: str, lead: Lead, tail: bool) -> re.Pattern:
    post = r"(?P<post>[^:\n]{0,40}?)" if tail else r"(?P<post>)"
    return re.compile(rf"(?P<pre>{_LEADS[lead]})(?:{words})\b{post}[\s*_]*(?::[\s*_]*(?P<rest>.*))?$",
                      re.IGNORECASE)


_COMPILED = tuple((form, _frame(form.words, form.lead, form.tail)) for form in HEADINGS)


def match_heading(text: str, start: int, end: int) -> tuple[Section, int | None] | None:
    """The section a heading at text[start:end] opens, and the offset of same-line text after its colon."""
    if not _STEMS.search(text, start, end):
        return None
    for form, pattern in _COMPILED:
        m = pattern.match(text, start, end)
        if not m:
            continue
        if any(w.lower() in NOT_HEADING_WORDS for w in m["pre"].split()):
            return None
        post = m["post"].strip(" *_")
        if post and m["rest"] is None and (re.search(r"[.;,]|\d", post) or len(post.split()) > 3):
            return None   # "Exclusion criteria of the parent study apply" is a sentence
        rest = m.start("rest") if m["rest"] and m["rest"].strip(" *_") else None
        return form.section, rest
    return None


# -- text that is not a criterion ----------------------------------------------------------

Scope = Literal["section", "paragraph", "line"]


@dataclass(frozen=True)
class OtherTextForm:
    words: str        # regex, case-insensitive, matched at the line's first character
    scope: Scope      # section: up to the next section heading; paragraph: this paragraph; line: this line


_GROUPS = r"(?:vulnerable|special|women|minorities|minority|children|pregnant|ethnic|racial|elderly|older)"

OTHER_TEXT: tuple[OtherTextForm, ...] = (
    # NIH-style narrative sections after the lists
    OtherTextForm(rf"inclusion\s+of\s+{_GROUPS}\b[^:.;]{{0,60}}(?::.*)?$", "section"),
    OtherTextForm(rf"participation\s+of\s+{_GROUPS}\b[^:.;]{{0,60}}(?::.*)?$", "section"),
    OtherTextForm(r"(?:vulnerable|special)\s+(?:participants?|populations?|subjects?|groups?)\b[^:.;]{0,40}(?::.*)?$",
                  "section"),
    # notes: a remark about the list, not a requirement
    OtherTextForm(r"(?:notes?|n\.\s?b\.?|nb|remarks?|comments?)\s*[:\-–—]", "paragraph"),
    OtherTextForm(r"please\s+note\b", "paragraph"),
    # a title over both lists ("Inclusion and Exclusion Criteria:", "Eligibility criteria"): opens no section
    OtherTextForm(r"(?:(?:inclusion|eligibility)\s*(?:and|&|/|or)\s*exclusion\s+|eligibility\s+|study\s+)?"
                  r"criteria[\s*_]*:?[\s*_]*$", "line"),
)

_OTHER = tuple((form, re.compile(form.words, re.IGNORECASE)) for form in OTHER_TEXT)


def match_other_text(text: str, start: int, end: int) -> Scope | None:
    """Does the line text[start:end] open a narrative section or a note (and which)?"""
    for form, pattern in _OTHER:
        if pattern.match(text, start, end):
            return form.scope
    return None
