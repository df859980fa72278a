"""Two `has` rules shared by the Python evaluator and the SQL source layers (docs/patient-data.md §4).

- Sex-limited categories: a registry entry with `sexes = ["female"]` (pregnancy,
  breastfeeding) is FALSE for a patient whose sex is known and not listed, when
  nothing in the data says otherwise.
- Broad drug groups: a listed ATC group that contains the asked class (`A10B`
  when DPP-4 inhibitors, A10BH, are asked) may include a member, so the answer
  is unknown rather than FALSE when no listed drug is a member.

Kept in one place so the engines cannot drift apart.
"""
from __future__ import annotations

import re

from eligibility.readers import wide_cells as wc
from eligibility.registry.concepts import Category, Registry, normalize_phrase

# ATC code lengths of the levels below the anatomical main group (A10, A10B, A10BH, A10BH01);
# a one-letter group is not read as a code by the list readers
_ATC_LEVELS = (3, 4, 5, 7)


def other_sexes(cat: Category | None) -> tuple[str, ...]:
    """Known sexes for which the category cannot hold (empty: the category is not sex-limited)."""
    if cat is None or not cat.sexes:
        return ()
    return tuple(s for s in ("female", "male") if s not in cat.sexes)


def not_applicable(cat: Category | None, sex: str | None) -> bool:
    return sex is not None and sex in other_sexes(cat)


def broader_codes(prefixes: tuple[str, ...]) -> frozenset[str]:
    """ATC groups strictly containing one of the asked prefixes (A10BH -> A10, A10B)."""
    return frozenset(p[:n].upper() for p in prefixes for n in _ATC_LEVELS if n < len(p))


def broad_items(code: str, prefixes: tuple[str, ...], registry: Registry) -> list[str]:
    """List items (registry names and ATC codes, lower case) whose tokens name a broader group."""
    broader = broader_codes(prefixes)
    if not broader:
        return []
    vocab = wc.vocabulary(registry)
    names: list[str] = []
    for cat in registry.categories_of("medication"):
        for phrase in (cat.id, cat.name, *cat.synonyms):
            phrase = normalize_phrase(phrase)
            tokens, _known = wc.medication_tokens(phrase, registry, vocab)
            if tokens & broader and not any(t.startswith(prefixes) for t in tokens):
                names.append(phrase)
    return list(dict.fromkeys(names + sorted(c.lower() for c in broader)))


def broad_pattern(code: str, prefixes: tuple[str, ...], registry: Registry, sep: str = r"[;|]") -> str | None:
    """Regex over a lower-cased list cell: some item is a group broader than the asked class."""
    items = broad_items(code, prefixes, registry)
    if not items:
        return None
    alts = "|".join(r"\s+".join(re.escape(w) for w in item.split(" ")) for item in items)
    return rf"(^|{sep})\s*({alts})\s*({sep}|$)"


def drug_rule(registry: Registry, code: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """(ATC prefixes, member names) a medication has-node matches: a class's groups and members,
    or a single drug's own code and name."""
    cat = registry.categories.get(code)
    if cat is not None and cat.category == "medication":
        return tuple(p.upper() for p in cat.atc), frozenset(m.lower() for m in cat.members)
    ingredient = registry.ingredient_by_name.get(normalize_phrase(code)) or registry.ingredients.get(code)
    return ((ingredient.atc.upper(),) if ingredient else (),
            frozenset({ingredient.name.lower() if ingredient else code.lower()}))
