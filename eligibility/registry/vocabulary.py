"""Conditions, drugs and procedures named in text: one Aho-Corasick automaton over every phrase.

The phrases come from the registry's data files (conditions.toml, drugs.toml,
procedures.toml and registry.toml: names, synonyms, abbreviations, ingredient
and brand names) and from the ICD-10-CM code book (eligibility.registry.icd10cm:
tens of thousands of titles and inclusion terms).  A regex alternation over that
many phrases would be slow to build and to run; `pyahocorasick` finds every
phrase in one pass over the text.

Each phrase leads to a *key*: a registry category id (`coronary_artery_disease`,
`statin`), an ingredient (`drug:atorvastatin`), an ICD-10-CM code set
(`icd10cm:I25.1`) or an ambiguous abbreviation (`ambiguous:ms`).  Curated
entries win over code-book terms of the same spelling; among overlapping
mentions the leftmost, then the longest, is kept.  `category(key)` gives the
registry category for a key (made up from the code book for ICD keys).
"""
from __future__ import annotations

import re
import threading
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick

from eligibility.registry import icd10cm
from eligibility.registry.concepts import Category, Registry, is_packaged, normalize_phrase

_FOLD = re.compile(r"[^0-9a-zα-ω]")       # Greek letters stay: "β-blocker", "TNF-α inhibitor"
DRUG = "drug:"
ICD = "icd10cm:"
AMBIGUOUS = "ambiguous:"


def fold(text: str) -> str:
    """Lower case with every character that is not a letter or digit made a space (same length)."""
    return _FOLD.sub(" ", text.lower().replace("ß", "s"))


@lru_cache(maxsize=1 << 16)      # pure, and the same mentions recur across criteria and trials
def phrase_form(phrase: str) -> str:
    """A phrase as stored in the automaton: folded, single spaces."""
    return " ".join(fold(normalize_phrase(phrase)).split())


@dataclass(frozen=True, slots=True)
class Mention:
    start: int
    end: int
    key: str


class Vocabulary:
    def __init__(self, registry: Registry, *, code_book: bool = True, automaton=None) -> None:
        """`automaton`: a ready one, from the disk cache (eligibility.registry.vocabulary_cache)."""
        self.registry = registry
        self.code_book = code_book
        self.automaton = automaton if automaton is not None else self._build(registry, code_book)
        self._codes: dict[str, dict[str, tuple[str, ...]]] = {}

    @staticmethod
    def _build(registry: Registry, code_book: bool):
        keys: dict[str, str] = {}           # phrase form -> key; the first meaning wins

        def add(phrase: str, key: str) -> None:
            form = phrase_form(phrase)
            for variant in (form, *_greek(form), *_plural(form), *_digits(form)):
                if variant and variant not in keys:
                    keys[variant] = key

        for cat in registry.categories.values():
            for phrase in (cat.name, *cat.synonyms):
                add(phrase, cat.id)
        for ing in registry.ingredients.values():
            for phrase in (ing.name, *ing.synonyms):
                add(phrase, DRUG + ing.name)
        for text in registry.ambiguous:
            keys[phrase_form(text)] = AMBIGUOUS + text
        if code_book:             # after the curated entries: those win over code-book terms spelt the same
            for term, codes in icd10cm.lexicon()["terms"].items():
                add(term, ICD + "|".join(codes))
        automaton = ahocorasick.Automaton()
        for phrase, key in keys.items():
            automaton.add_word(phrase, (len(phrase), key))
        automaton.make_automaton()
        return automaton

    @property
    def titles(self) -> dict[str, str]:
        """ICD-10-CM code -> title (read when first needed)."""
        return icd10cm.lexicon()["titles"] if self.code_book else {}

    # -- finding ----------------------------------------------------------------
    def find(self, text: str) -> list[Mention]:
        """Mentions in `text` (offsets into it), leftmost-longest, not overlapping, on word boundaries.

        Punctuation folds to spaces and runs of spaces count as one, as in the stored phrases
        ("dipeptidyl peptidase-4 (DPP-4) inhibitor"); offsets map back to the text as given.
        """
        folded = fold(text)
        if "  " in folded:
            folded, where = _squeeze(folded)
        else:
            where = None
        n = len(folded)
        found: list[tuple[int, int, str]] = []
        for end, (length, key) in self.automaton.iter(folded):
            start = end - length + 1
            if (start == 0 or folded[start - 1] == " ") and (end + 1 == n or folded[end + 1] == " "):
                span = (start, end + 1, key) if where is None else (where[start], where[end] + 1, key)
                if _written_as_meant(text[span[0]:span[1]], key):
                    found.append(span)
        if len(found) > 1:
            found.sort(key=lambda m: (m[0], -m[1]))
        out: list[Mention] = []
        reach = -1
        for start, end, key in found:
            if start >= reach:
                out.append(Mention(start, end, key))
                reach = end
        return out

    def is_icd_code(self, code: str) -> bool:
        """Is `code` an ICD-10-CM code (its category is in the code book)?"""
        flat = code.replace(".", "").strip().upper()
        return len(flat) >= 3 and flat[:3] in self.titles

    def key_of(self, phrase: str) -> str | None:
        found = self.automaton.get(phrase_form(phrase), None)
        return found[1] if found is not None else None

    # -- what a key stands for ---------------------------------------------------
    def category(self, key: str) -> Category | None:
        registry = self.registry
        if key in registry.categories:
            return registry.categories[key]
        if key.startswith(DRUG):
            ing = registry.ingredients.get(key[len(DRUG):])
            if ing is None:
                return None
            return Category(id=ing.name, name=ing.name, category="medication", atc=(ing.atc, *ing.atc_other),
                            rxnorm=ing.rxnorm, members=(ing.name,))
        if key.startswith(ICD):
            codes = tuple(key[len(ICD):].split("|"))
            name = self.titles.get(codes[0], codes[0]) if len(codes) == 1 else \
                " or ".join(self.titles.get(c, c) for c in codes)
            return Category(id=key, name=name, category="condition", icd10=codes)
        return None

    def codes(self, cat: Category) -> dict[str, tuple[str, ...]]:
        """The code sets a category matches, by system (DESIGN §3 `codes`); worked out once per entry."""
        known = self._codes.get(cat.id)
        if known is None:
            known = self._codes[cat.id] = self._codes_of(cat)
        return dict(known)

    def _codes_of(self, cat: Category) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        if cat.icd10:
            out["icd10cm"] = tuple(c for c in cat.icd10)
        if cat.snomed:
            out["snomed"] = tuple(cat.snomed)
        if cat.atc:
            out["atc"] = tuple(c.upper() for c in cat.atc)
        rxnorm = list(cat.rxnorm)
        if cat.category == "medication" and cat.atc:
            prefixes = tuple(c.upper() for c in cat.atc)
            members = {normalize_phrase(m) for m in cat.members}
            for ing in self.registry.ingredients.values():
                if ing.atc.upper().startswith(prefixes) or ing.name in members:
                    rxnorm += [r for r in ing.rxnorm if r not in rxnorm]
        if rxnorm:
            out["rxnorm"] = tuple(rxnorm)
        if cat.icd10pcs:
            out["icd10pcs"] = tuple(cat.icd10pcs)
        if cat.omop:
            out["omop"] = tuple(str(c) for c in cat.omop)
        return out


_GREEK = (("alpha", "α"), ("beta", "β"), ("gamma", "γ"), ("delta", "δ"), ("kappa", "κ"))


def _greek(form: str) -> list[str]:
    """`beta blocker` is also written `β-blocker`, `tnf alpha` `TNF-α`."""
    out = []
    for word, letter in _GREEK:
        if re.search(rf"\b{word}\b", form):
            out.append(re.sub(rf"\b{word}\b", letter, form))
    return out


_PLURAL_HEADS = ("disease", "disorder", "infection", "cancer", "tumor", "tumour", "malignancy", "ulcer",
                 "inhibitor", "blocker", "antagonist", "agonist", "agent", "drug", "medication", "transplant",
                 "condition", "syndrome", "abnormality", "arrhythmia", "surgery", "procedure", "neoplasm")


def _plural(form: str) -> list[str]:
    """`cardiovascular disorder` is also written `cardiovascular disorders`; `malignancies`."""
    head = form.rsplit(" ", 1)[-1]
    if head not in _PLURAL_HEADS:
        return []
    plural = head[:-1] + "ies" if head.endswith("y") else head + "s"
    variants = [form[: len(form) - len(head)] + plural]
    if head == "disease":
        variants.append(form[: len(form) - len(head)] + "disorder")
        variants.append(form[: len(form) - len(head)] + "disorders")
    return variants


def _digits(form: str) -> list[str]:
    """`sars cov 2` is also written `SARS-CoV2`, `covid 19` `COVID19`, `type 2` `type2`."""
    joined = re.sub(r"([a-z]) (\d)", r"\1\2", form)
    return [joined] if joined != form else []


def _written_as_meant(written: str, key: str) -> bool:
    """Short abbreviations and ambiguous ones count only in capitals: "ALL" is a leukaemia, "all
    patients" is not; "AS" may be aortic stenosis, "as calculated" is not (digits pass: "T2D")."""
    letters = [ch for ch in written if ch.isalnum()]
    if key.startswith(AMBIGUOUS) or len(letters) <= 3:
        return written.upper() == written or any(ch.isdigit() for ch in letters)
    return True


_SPACES = re.compile(r" {2,}|^ +")


def _squeeze(folded: str) -> tuple[str, "_Offsets"]:
    """Runs of spaces as one (leading spaces dropped), with a map back to offsets in `folded`."""
    cuts: list[int] = []       # squeezed positions where characters were removed before
    removed: list[int] = []    # how many were removed up to there
    total = 0
    pieces: list[str] = []
    last = 0
    for m in _SPACES.finditer(folded):
        keep = 0 if m.start() == 0 else 1
        pieces.append(folded[last:m.start() + keep])
        cuts.append(m.start() + keep - total)      # where the next kept character lands, squeezed
        total += m.end() - m.start() - keep
        removed.append(total)
        last = m.end()
    pieces.append(folded[last:])
    return "".join(pieces), _Offsets(cuts, removed)


class _Offsets:
    """Squeezed offset -> offset in the folded text (the removed spaces added back)."""
    __slots__ = ("cuts", "removed")

    def __init__(self, cuts: list[int], removed: list[int]) -> None:
        self.cuts, self.removed = cuts, removed

    def __getitem__(self, k: int) -> int:
        i = bisect_right(self.cuts, k)
        return k + (self.removed[i - 1] if i else 0)


_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _vocabulary(registry: Registry) -> Vocabulary:
    from eligibility.registry.vocabulary_cache import cached_vocabulary
    return cached_vocabulary(registry, Vocabulary, packaged=is_packaged(registry))


def vocabulary(registry: Registry) -> Vocabulary:
    """The vocabulary of a registry, built once (and once only when threads ask together)."""
    with _LOCK:
        return _vocabulary(registry)
