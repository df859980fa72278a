"""Keys under which a patient's record and a `has` node meet.

A record (a diagnosis, a procedure) becomes a set of keys: the registry ids it
maps to, its own code by system (`snomed:44054006`, `omop:201826`), for a
hierarchical system every ancestor too (`icd10cm:I25.10`, `icd10cm:I25.1`,
`icd10cm:I25`), and, where no code mapping is known, what its display name
means through the vocabulary (`Essential hypertension (disorder)` ->
`hypertension`, `icd10cm:I10`).  A `has` node's keys are its id and its code
sets; the node holds when the two sets meet.  Because a record carries its
ancestors, a record coded I25.10 meets a node asking for I25, and not the
other way round.
"""
from __future__ import annotations

import re

from eligibility.registry.vocabulary import ICD, Vocabulary

_SEMANTIC_TAG = re.compile(r"\s*\((disorder|finding|procedure|situation|regime/therapy|morphologic abnormality|"
                           r"observable entity|event|qualifier value)\)\s*$", re.IGNORECASE)
# systems whose codes nest by prefix
HIERARCHICAL = ("icd10cm", "atc", "icd10pcs")


def icd_ancestors(code: str) -> list[str]:
    """I25.10 -> I25.10, I25.1, I25, I (dots as the code book writes them)."""
    flat = code.replace(".", "").strip().upper()
    # the chapter letter too: the registry writes "C" for every malignant neoplasm (C00-C96)
    return [flat[:n] if n == 3 else f"{flat[:3]}.{flat[3:n]}" for n in range(len(flat), 2, -1)] + [flat[:1]]


def prefix_ancestors(code: str) -> list[str]:
    """ATC and ICD-10-PCS codes nest by prefix: C10AA05 -> C10AA05, C10AA, C10A, C10, C (every prefix)."""
    flat = code.strip().upper()
    return [flat[:n] for n in range(len(flat), 0, -1)]


def code_keys(system: str, code: str) -> set[str]:
    """A code's own key and, in a hierarchical system, its ancestors' keys."""
    code = code.strip()
    if not code:
        return set()
    if system == "icd10cm":
        return {f"icd10cm:{c}" for c in icd_ancestors(code)}
    if system in HIERARCHICAL:
        return {f"{system}:{c}" for c in prefix_ancestors(code)}
    return {f"{system}:{code}"}


def display_keys(vocab: Vocabulary, display: str, kinds: tuple[str, ...] = ("condition", "status")) -> set[str]:
    """What a record's display name means: the keys of the vocabulary entries it names (of `kinds`)."""
    text = _SEMANTIC_TAG.sub("", display or "")
    keys: set[str] = set()
    for mention in vocab.find(text):
        cat = vocab.category(mention.key)
        if cat is None or cat.category not in kinds:
            continue
        keys |= category_keys(vocab, mention.key)
    return keys


def category_keys(vocab: Vocabulary, key: str) -> set[str]:
    """A vocabulary entry as record keys: its id and every broader entry's, and its codes with their
    ancestors where the entry has one code in a system (several codes mean "any of them", so a
    record naming the entry is known to have none of them in particular)."""
    cat = vocab.category(key)
    if cat is None:
        return set()
    keys = {cat.id, *vocab.registry.broader.get(cat.id, ())}
    for system, codes in vocab.codes(cat).items():
        if len(codes) == 1:
            keys |= code_keys(system, codes[0])
    return keys


def node_keys(code: str, codes: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The keys a `has` node asks for: its id and each code of its code sets (no ancestors)."""
    keys = {code}
    for system, values in codes.items():
        for value in values:
            value = value.strip()
            keys.add(f"{system}:{value.upper() if system in HIERARCHICAL else value}")
    return frozenset(keys)


def is_icd_key(key: str) -> bool:
    return key.startswith(ICD)


class CodeTable:
    """Registry ids by a record's code, for one kind of entry: SNOMED CT and OMOP ids exactly, the
    entries' hierarchical codes (ICD-10-CM, ICD-10-PCS) by prefix; with every broader id."""

    def __init__(self, registry, categories, prefixes, system: str) -> None:
        """`prefixes(cat)`: the entry's hierarchical codes; `system`: the reader's name for them."""
        self.registry = registry
        self.system = system
        self.snomed: dict[str, tuple[str, ...]] = {}
        self.omop: dict[int, tuple[str, ...]] = {}
        self.prefixes: list[tuple[str, str]] = []
        for cat in categories:
            for code in cat.snomed:
                self.snomed[code] = (*self.snomed.get(code, ()), cat.id)
            for code in cat.omop:
                self.omop[code] = (*self.omop.get(code, ()), cat.id)
            self.prefixes += [(_flat(p), cat.id) for p in prefixes(cat)]

    def ids(self, system: str, code: str) -> tuple[str, ...]:
        code = code.strip()
        if system == "SNOMED":
            return self.snomed.get(code, ())
        if system == self.system:
            flat = _flat(code)
            return tuple(dict.fromkeys(cid for prefix, cid in self.prefixes if flat.startswith(prefix)))
        if system == "OMOP":
            try:
                return self.omop.get(int(code), ())
            except ValueError:
                return ()
        return ()

    def with_broader(self, ids) -> dict[str, None]:
        """The ids, then every broader id of each, in a stable order."""
        keys = dict.fromkeys(ids)
        for cid in ids:
            keys.update(dict.fromkeys(sorted(self.registry.broader.get(cid, ()))))
        return keys


def _flat(code: str) -> str:
    return code.replace(".", "").strip().upper()
