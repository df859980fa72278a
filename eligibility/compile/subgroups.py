"""A bound restated for a subgroup: "AST ≤ 2.5 × ULN (≤ 5 × ULN in patients with liver metastases)".

Criteria change a limit for the patients a condition names (liver metastases, Gilbert's
syndrome, cardiac disease).  The parenthesis is an alternative, not a second requirement:
read as `all(AST ≤ 2.5 × ULN, AST ≤ 5 × ULN, liver metastases)` it would exclude every
patient without metastases.  What the text means, for main bound M, subgroup S and the
subgroup's bound A, is (M and not S) or (S and A); when one bound implies the other the
tree says it more simply (and a patient meeting both bounds is decided even when S is not):

- A looser than M (M implies A): any(M, all(S, A));
- A stricter than M (A implies M): all(M, any(not S, A));
- otherwise (ranges, mixed directions): any(all(M, not S), all(S, A)).

A subgroup the compiler cannot decide stays a manual node ("for Gilbert's syndrome"), so a
patient between the two bounds goes to a reviewer.  A parenthesis restating the bound in
another unit ("HbA1c ≤ 10 % (86 mmol/mol)") has no subgroup word and is left alone; race
and ethnicity subgroups ("≥ 23 kg/m² in Asian participants") are read by compile.races.
"""
from __future__ import annotations

import re

from eligibility.core.ir import All, AnyOf, Not, walk

# words that introduce who the other bound is for
_SUBGROUP = re.compile(r"\b(for|in|if|when|where|with|among|unless|except|patients?|subjects?|participants?)\b", re.I)


def _measures(node) -> list:
    return [n for n in walk(node) if getattr(n, "kind", None) in ("compare", "range")]


def subgroup_bound(text: str, sub_node, nodes: list) -> bool:
    """Does a parenthesised stretch restate earlier bounds for a subgroup of patients?"""
    concepts = {n.concept for n in _measures(sub_node)}
    before = {n.concept for node in nodes for n in _measures(node)}
    origins = any(str(getattr(n, "code", "")).startswith(("race_", "ethnicity_")) for n in walk(sub_node))
    return bool(concepts) and concepts <= before and not origins and _SUBGROUP.search(text) is not None


def split_subgroup(sub_node, manual_text) -> tuple[list, list]:
    """(the subgroup's bounds, who they are for) of a stretch; manual_text: manual nodes of its loose words."""
    parts = list(sub_node.children) if isinstance(sub_node, All) else [sub_node]
    bounds = [p for p in parts if _measures(p)]
    who = [p for p in parts if not _measures(p)] + list(manual_text)
    return bounds, who


def _direction(main, other) -> str | None:
    """'looser' / 'stricter' when every compare of `other` relaxes / tightens one of `main` on the same
    concept, unit and side; None when it cannot be told (ranges, new concepts, mixed)."""
    mains = _measures(main)
    found = set()
    for b in _measures(other):
        if b.kind != "compare" or b.op not in ("<", "<=", ">", ">="):
            return None
        same = [m for m in mains if m.kind == "compare" and m.concept == b.concept
                and m.canonical_unit == b.canonical_unit and m.op[0] == b.op[0]]
        if len(same) != 1:
            return None
        m = same[0]
        upper = b.op[0] == "<"
        if b.canonical_value == m.canonical_value:
            return None
        found.add("looser" if (b.canonical_value > m.canonical_value) == upper else "stricter")
    return found.pop() if len(found) == 1 else None


def with_subgroups(main, alternatives: list[tuple[list, list]]):
    """The term's node with each subgroup's bound as the alternative it is."""
    node = main
    for bounds, who in alternatives:
        if not who:       # nobody named: the other bound alone cannot decide anything
            continue
        other = bounds[0] if len(bounds) == 1 else All(children=tuple(bounds), span=_span(bounds))
        group = who[0] if len(who) == 1 else All(children=tuple(who), span=_span(who))
        span = _span([node, other, group])
        unless = Not(child=group, span=group.span)
        direction = _direction(node, other)
        if direction == "looser":
            node = AnyOf(children=(node, All(children=(group, other), span=_span([group, other]))), span=span)
        elif direction == "stricter":
            node = All(children=(node, AnyOf(children=(unless, other), span=_span([other, group]))), span=span)
        else:
            node = AnyOf(children=(All(children=(node, unless), span=_span([node, group])),
                                   All(children=(group, other), span=_span([group, other]))), span=span)
    return node


def _span(nodes: list) -> tuple[int, int]:
    return (min(n.span[0] for n in nodes), max(n.span[1] for n in nodes))
