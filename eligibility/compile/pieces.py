"""The pieces a criterion is assembled from, the words the assembler reads, and small helpers on them."""
from __future__ import annotations

import re

from dataclasses import dataclass, field

from lark import Token

# Words that carry no constraint on their own ("patients with", "history of", "at screening").
NOISE = frozenset("""
medical clinical clinically disease diseases infection infections disorder disorders condition conditions patient patients subject subjects participant participants adult adults people person persons individual
individuals volunteer volunteers men women man woman with the a an any of in on at to by who which that are is be
been being have has had having was were known history current currently documented diagnosis diagnosed confirmed
established prior previous previously past presence present evidence treatment treated therapy use using used
taking receiving received stable dose doses dosage screening visit baseline time study entry as per defined either both level levels
value values measured measurement test result results sitting seated resting supine serum plasma blood its their
his her those these this must should will shall can may also only all other such eg e g i ie etc
case cases
transaminase transaminases aminotransferase aminotransferases liver enzymes enzyme consent informed signing signed
enrolment enrollment randomization randomisation inclusion date timepoint calculated mean average
""".split())
# relatives' conditions are not in the patient's record: such a mention stays for a reviewer
FAMILY = re.compile(r"\b(family|familial|first[- ]degree|relatives?|parents?|siblings?|mother|father)\b[^.;]*?\b(history|of|with)\b",
                    re.IGNORECASE)
# Words that change whose or what a named condition, drug or procedure is about: beside them the
# mention is not the patient's own record (an allergy to a drug is not taking it; a planned
# procedure has not been done; a negative test is neither having nor lacking the disease), so the
# criterion stays whole for a reviewer.  Any other words beside a mention ("uncontrolled
# hypertension", "liver cirrhosis Child Pugh C") qualify it: the thing named is necessary.
RELATIONS = frozenset("""
allergy allergies allergic hypersensitivity hypersensitive intolerance intolerant contraindication
contraindications contraindicated sensitivity anaphylaxis family familial relative relatives
mother mothers father fathers parent parents sibling siblings partner partners spouse offspring
risk risks suspected suspicion suspect possible probable likely rule prevention preventive prophylaxis
prophylactic vaccine vaccines vaccination vaccinated immunization immunized screening planned plan plans
planning scheduled schedule candidate candidates eligible indication indicated requiring require requires
required need needs needing awaiting waiting list willing unwilling able unable refuse refuses refused
contact exposure exposed caregiver caregivers donor donors except other than excluding besides instead
switch switching discontinue discontinued discontinuation stop stopped stopping withdrawal withdraw free
resolved cured remission successfully if unless even whether negative positive ex former
antibody antibodies antigen antigens titer titers titre serology seropositive seronegative carrier carriers
consent consents informed agree agrees agreement regarding trial trials study studies enrolled enrollment
enrolment participation participating participate investigational preclude precludes including
""".split())
# Relations whose scope runs over a whole list after them ("allergy to A, B or C", "other than A or B",
# "negative for A, B"); the others reach only to the end of their own list item.
LIST_RELATIONS = frozenset("""
allergy allergies allergic hypersensitivity hypersensitive intolerance intolerant contraindication
contraindications contraindicated sensitivity anaphylaxis except excluding besides other negative free
""".split())
QUALIFIED = "qualifies the condition, drug or procedure beside it, which the data cannot show; needs a reviewer"
NEGATIONS = frozenset({"no", "not", "without", "non", "never", "none", "absence", "free", "lack"})
EXCLUSION_MARKERS = frozenset({"excluded", "exclusion", "prohibited", "disallowed", "forbidden"})
SEXES = frozenset({"male", "males", "female", "females", "men", "women", "man", "woman", "boys", "girls"})
# the status codes the trial assembler gives the Sex field (eligibility/trials.py), which the evaluators read
SEX_CODES = {**dict.fromkeys(("male", "males", "men", "man", "boys"), ("sex_male", "male")),
             **dict.fromkeys(("female", "females", "women", "woman", "girls"), ("sex_female", "female"))}
CONTENT_TYPES = frozenset({"NUMBER", "UNIT", "BADUNIT", "CONCEPT", "GE", "GT", "LE", "LT", "EQ", "POST_GE", "POST_LE",
                            "POST_AGE", "AGE_CMP", "OF_AGE", "WORD", "OTHER_QUANTITY"})


@dataclass
class MeasurePiece:
    node: object | None          # IR node, or None when the phrase could not be compiled
    unparsed: tuple[int, int] | None
    reason: str | None
    span: tuple[int, int]        # normalised text


@dataclass
class Neutral:
    """Text understood as imposing nothing ("with or without metformin", "male or female")."""
    span: tuple[int, int]


@dataclass
class Group:
    items: list
    span: tuple[int, int]


@dataclass
class Out:
    node: object | None = None       # computable subtree (may contain manual children)
    manual: list = field(default_factory=list)   # normalised spans of manual text
    unparsed: list = field(default_factory=list)
    measure: bool = False
    neg: tuple[int, int] | None = None
    withins: list = field(default_factory=list)
    has: list = field(default_factory=list)     # positions of has nodes (for within windows)


def span_of(piece) -> tuple[int, int]:
    if isinstance(piece, Token):
        return (piece.start_pos, piece.end_pos)
    return piece.span


def word_of(piece) -> str:
    return piece.value.lower() if isinstance(piece, Token) else ""


def runs(spans: list, blockers: list) -> list:
    """Merge spans into runs that do not cross a blocker (a compiled piece between them)."""
    runs: list = []
    for span in sorted(spans):
        if runs and not any(runs[-1][1] <= b[0] and b[1] <= span[0] for b in blockers):
            runs[-1] = (runs[-1][0], max(runs[-1][1], span[1]))
        else:
            runs.append(span)
    return runs


def neighbours(term: list, k: int) -> list[int]:
    """Positions next to term[k], looking through hyphens and slashes that join words (`CKD-EPI`)."""
    out = []
    for step in (-1, 1):
        j = k + step
        while 0 <= j < len(term) and isinstance(term[j], Token) and term[j].type in ("DASH", "SLASH"):
            j += step
        if 0 <= j < len(term):
            out.append(j)
    return out


def has_key(node):
    if getattr(node, "kind", None) != "has":
        return None
    return (node.code, node.within, tuple(sorted(node.qualifiers.items())))


def is_content(piece) -> bool:
    if not isinstance(piece, Token) or piece.type not in CONTENT_TYPES:
        return False
    word = piece.value.lower()
    return not (piece.type == "WORD" and (word in NOISE or word in NEGATIONS))


def is_measure(node) -> bool:
    return getattr(node, "kind", None) in ("compare", "range")


def computable(node) -> bool:
    kind = getattr(node, "kind", None)
    if kind in ("compare", "range", "has"):
        return True
    if kind in ("all", "any"):
        return any(computable(c) for c in node.children)
    if kind == "not":
        return computable(node.child)
    return False


# A drug's dose written after its name ("metformin (≥ 1500 mg/day)", "metformin 1000-2000 mg daily"):
# the tree cannot hold a dose, so it is left unparsed beside the drug's `has` instead of making it text.
_DOSE_TYPES = frozenset({"GE", "GT", "LE", "LT", "EQ", "NUMBER", "DASH", "TO", "SLASH", "UNIT", "BADUNIT", "COMMA"})
_MASS_WORDS = frozenset({"mg", "g", "mcg", "µg", "μg", "ug", "gram", "grams", "milligram", "milligrams"})
_DOSE_WORDS = _MASS_WORDS | {"day", "daily", "d", "per", "bid", "tid", "qd", "once", "twice", "a"}


def _is_dose(tokens: list) -> bool:
    if not tokens or not all(isinstance(t, Token) and (t.type in _DOSE_TYPES or t.value.lower() in _DOSE_WORDS)
                             for t in tokens):
        return False
    return any(t.type == "NUMBER" for t in tokens) and any(t.value.lower() in _MASS_WORDS for t in tokens)


def dose_pieces(term: list, is_drug) -> list[tuple[int, int]]:
    """(first, end) index ranges of `term` stating the dose of the drug token before them."""
    found = []
    for k, piece in enumerate(term):
        if not (isinstance(piece, Token) and piece.type == "CATEGORY" and is_drug(piece)):
            continue
        j = k + 1
        while j < len(term) and isinstance(term[j], Token) and (term[j].type == "OF" or word_of(term[j]) in NOISE):
            j += 1           # "metformin at a stable dose of ..."
        if j < len(term) and isinstance(term[j], Group):
            if _is_dose(term[j].items):
                found.append((j, j + 1))
            continue
        end = j
        while end < len(term) and isinstance(term[end], Token) and (
                term[end].type in _DOSE_TYPES or term[end].value.lower() in _DOSE_WORDS):
            end += 1
        while end > j and term[end - 1].type == "COMMA":
            end -= 1
        if end > j and _is_dose(term[j:end]):
            found.append((j, end))
    return found


def sex_group(piece) -> bool:
    """`(men)`, `(in females)`: a parenthesised sex and nothing else."""
    if not isinstance(piece, Group):
        return False
    words = [word_of(p) for p in piece.items]
    return sum(w in SEXES for w in words) == 1 and all(
        w in SEXES or w in ("in", "for") for w in words)


def sex_of(text: str) -> tuple[str, str] | None:
    """(status code, label) of the sex named in `text` (`men`, `(females)`), else None."""
    words = [w for w in text.strip("()[] ").lower().split() if w in SEX_CODES]
    return SEX_CODES[words[0]] if len(words) == 1 else None


def _sex_code(node) -> str | None:
    """`all(sex, measurement)` as built for "creatinine > 1.5 mg/dL (men)": its sex code, else None."""
    if getattr(node, "kind", None) != "all" or len(node.children) != 2:
        return None
    codes = [c.code for c in node.children if c.kind == "has" and c.category == "status" and c.code.startswith("sex_")]
    return codes[0] if len(codes) == 1 and any(is_measure(c) for c in node.children) else None


def sex_alternatives(node):
    """`≥ 60 kg for men and ≥ 50 kg for women` is one bound per sex, never both: the per-sex
    parts of an `all` become one `any` (a man meets the men's bound; the women's part is false)."""
    from eligibility.core.ir import AnyOf
    if getattr(node, "kind", None) != "all":
        return node
    parts = [c for c in node.children if _sex_code(c) is not None]
    if len(parts) < 2 or len({_sex_code(c) for c in parts}) < 2:
        return node
    either = AnyOf(children=tuple(parts), span=(min(c.span[0] for c in parts), max(c.span[1] for c in parts)))
    rest = [c for c in node.children if all(c is not p for p in parts)]
    if not rest:
        return either.model_copy(update={"span": node.span})
    first = next(k for k, c in enumerate(node.children) if c is parts[0])
    children = [c for c in node.children[:first] if c in rest] + [either] + \
        [c for c in node.children[first:] if all(c is not r for r in node.children[:first]) and any(c is r for r in rest)]
    return node.model_copy(update={"children": tuple(children)})
