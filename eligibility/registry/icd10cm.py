"""ICD-10-CM as a lexicon: code-book titles and inclusion terms -> the codes they name.

The code book comes from the `simple-icd-10-cm` package (the CDC/NCHS ICD-10-CM
release, public domain; the package is MIT-licensed; see docs/vocabularies.md
for the pinned version).  Reading its XML takes ~3.5 s, so the lexicon is built
once and kept in the cache directory (eligibility.core.cache) under the
package's version and this module's format number.

Terms follow the code book's own conventions (ICD-10-CM Official Guidelines,
Section I.A): words in parentheses are nonessential modifiers (the term holds
with and without them), `NOS` means "not otherwise specified", brackets hold
synonyms and abbreviations.  A title `X, unspecified` names the general
concept X, so its term points at the parent category (`Obesity, unspecified`
E66.9 -> `obesity` E66).  Titles that are not conditions a trial screens on
(external causes V00-Y99, encounters, `Other ...` catch-alls) are left out.
"""
from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from eligibility.core.cache import read_entry, write_entry

_FORMAT = 10
_MAX_CODE_LENGTH = 5          # categories and subcategories up to two digits after the dot (I25.10)
_SKIP_PREFIX = ("other ", "unspecified ", "encounter ", "personal history", "family history", "follow-up",
                "observation ", "contact with", "exposure to", "underdosing", "adverse effect", "poisoning by",
                "problems related", "person ", "persons ")
_SKIP_CHAPTERS = tuple("VWXY")
_MIN_TERM = 4                  # shorter code-book terms are abbreviations: curated in conditions.toml
# heads too general to name a condition on their own ("Disorder of ...", "Other ... of ...")
_GENERIC_HEADS = frozenset("""
disorder disorders disease diseases condition conditions abnormality abnormalities complication complications
injury injuries lesion lesions anomaly anomalies deformity deformities problem problems finding findings
effect effects sequelae dysfunction failure involvement presence absence history encounter other unspecified
contact exposure status examination observation screening displacement dislocation malposition
change changes illness reaction reactions loss use care need state deficiency excess increase decrease
elevation alteration disturbance disturbances insufficiency infection infections inflammation
""".split()) | frozenset("""
child carrier death donor donors outcome prosecution litigation counseling feeling frequency separation rotation
retention recession interruption compression contour crowding atlas axis deletion doubling defects deviation
difficulty disruption duplication enlargement erosion fusion imbalance inversion leakage limitation malfunction
malformation malformations rupture scar sequestration shortness falling furloughed anesthesia arrest cocaine
overfeeding underfeeding hyperalimentation senescence splitting stress strain supervision suppression syndrome
target threat torsion variations victim weeks wandering worries urgency transgender unemployment underemployed
underachievement unhappiness loneliness bereavement homelessness promiscuity conviction hostility impulsiveness
nervousness lethargy malaise debility tiredness calme restzustand abuse neglect
""".split())      # common English words that code-book titles also use: never a condition on their own


def package_version() -> str:
    try:
        return version("simple-icd-10-cm")
    except PackageNotFoundError:
        return ""


def _variants(term: str) -> set[str]:
    """A code-book term in the forms criteria write: with and without nonessential modifiers."""
    if re.fullmatch(r"[A-Z0-9][A-Z0-9+/-]{1,9}", re.sub(r"\s*\[[^\]]*\]", "", term).strip()):
        return set()             # an abbreviation (PRES, MIS-C): curated, with its context, in conditions.toml
    term = term.lower().strip()
    term = re.sub(r"\s*\[[^\]]*\]", "", term)            # [FUO]: a bracketed synonym, not part of the term
    term = re.sub(r",? not (otherwise specified|elsewhere classified)\b", "", term)
    term = re.sub(r"\b(nos|nec)\b", "", term)
    out = {term}
    while any("(" in t for t in out):
        nxt = set()
        for t in out:
            m = re.search(r"\(([^()]*)\)", t)
            if m is None:
                nxt.add(t)
                continue
            nxt.add(t[:m.start()] + m.group(1) + t[m.end():])
            nxt.add(t[:m.start()] + t[m.end():])
        out = nxt
    cleaned = set()
    for t in out:
        t = re.sub(r"\s+", " ", t).strip(" ,;")
        if len(t) >= _MIN_TERM and not t.startswith(_SKIP_PREFIX) and "," not in t and t not in _GENERIC_HEADS:
            cleaned.add(t)
    return cleaned


def _unspecified(title: str) -> str | None:
    """`Obesity, unspecified` -> `obesity`; None when the title is not of that form."""
    m = re.fullmatch(r"(.*?),? unspecified", title.strip(), flags=re.IGNORECASE)
    return m.group(1) if m else None


def _build() -> dict[str, list]:
    import simple_icd_10_cm as icd

    terms: dict[str, set[str]] = {}
    titles: dict[str, str] = {}

    def add(term: str, code: str) -> None:
        for variant in _variants(term):
            terms.setdefault(variant, set()).add(code)

    for code in icd.get_all_codes(True):
        if not icd.is_category_or_subcategory(code) or len(code.replace(".", "")) > _MAX_CODE_LENGTH \
                or code.startswith(_SKIP_CHAPTERS):
            continue
        title = icd.get_description(code)
        titles[code] = title
        general = _unspecified(title)
        if general is not None:
            parent = icd.get_parent(code)
            add(general, parent if icd.is_category_or_subcategory(parent) else code)
            continue
        add(title, code)
        # inclusion terms and the "Includes:" notes both name what the code holds
        for inclusion in (*icd.get_inclusion_term(code), *icd.get_includes(code)):
            add(inclusion, code)
    # "Diverticulitis of intestine, ...", "Fracture of femur": a one-word head names the condition
    # at any site, so it stands for all the codes it heads (unless a title says it exactly)
    heads: dict[str, set[str]] = {}
    for code, title in titles.items():
        m = re.match(r"([a-z]+) (of|in) ", title.lower())
        if m and m.group(1) not in _GENERIC_HEADS and len(m.group(1)) >= 5:
            heads.setdefault(m.group(1), set()).add(code)
    for head, codes in heads.items():
        if head not in terms:
            terms[head] = codes
    lexicon: dict[str, list] = {}
    for term, codes in terms.items():
        # a term under a code and its descendants names the ancestor (`asthma`: J45, not J45.909 too)
        kept = sorted(c for c in codes if not any(c != a and c.startswith(a) for a in codes))
        lexicon[term] = kept
    return {"terms": lexicon, "titles": titles}


_LEXICON: dict | None = None


def lexicon() -> dict[str, list]:
    """{"terms": {term: [codes]}, "titles": {code: title}}; empty when the package is not installed."""
    global _LEXICON
    if _LEXICON is None:
        pkg = package_version()
        if not pkg:
            _LEXICON = {"terms": {}, "titles": {}}
            return _LEXICON
        key = f"{_FORMAT}-{pkg}"
        cached = read_entry("icd10cm", key)
        if isinstance(cached, dict) and isinstance(cached.get("terms"), dict):
            _LEXICON = cached
        else:
            _LEXICON = _build()
            write_entry("icd10cm", key, _LEXICON, keep=2)
    return _LEXICON


def title(code: str) -> str | None:
    return lexicon()["titles"].get(code)


def ancestors(code: str) -> list[str]:
    """The code and every ancestor category by prefix: I25.10 -> I25.10, I25.1, I25."""
    flat = code.replace(".", "").upper()
    out = []
    for n in range(len(flat), 2, -1):
        part = flat[:n]
        out.append(part if n == 3 else f"{part[:3]}.{part[3:]}")
    return out
