"""A bound restated for a subgroup: "AST ≤ 2.5 × ULN (≤ 5 × ULN in patients with liver metastases)".

Oncology criteria loosen a limit for the patients a condition explains (liver metastases,
Gilbert's syndrome).  The parenthesis is an alternative, not a second requirement: read as
`all(AST ≤ 2.5 × ULN, AST ≤ 5 × ULN, liver metastases)` it would exclude every patient
without metastases.  The tree says instead:

- inclusion: any(main bound, all(subgroup, looser bound));
- exclusion (the text describes who is excluded): all(main bound, any(looser bound, not subgroup)).

A subgroup the compiler cannot decide stays a manual node ("for Gilbert's syndrome"), so
a patient between the two bounds goes to a reviewer.  A parenthesis restating the bound in
another unit ("HbA1c ≤ 10 % (86 mmol/mol)") has no subgroup word and is left alone.
"""
from __future__ import annotations

import re

from eligibility.core.ir import All, AnyOf, Not, walk

# words that introduce who the looser bound is for
_SUBGROUP = re.compile(r"\b(for|in|if|when|where|with|among|unless|except|patients?|subjects?|participants?)\b", re.I)


def _measured(node) -> set[str]:
    return {n.concept for n in walk(node) if getattr(n, "kind", None) in ("compare", "range")}


def _has_measure(node) -> bool:
    return bool(_measured(node))


def subgroup_bound(text: str, sub_node, nodes: list) -> bool:
    """Does a parenthesised stretch restate earlier bounds for a subgroup of patients?"""
    concepts = _measured(sub_node)
    before: set[str] = set()
    for node in nodes:
        before |= _measured(node)
    return bool(concepts) and concepts <= before and _SUBGROUP.search(text) is not None


def split_subgroup(sub_node, manual_text) -> tuple[list, list]:
    """(looser bounds, who they are for) of a subgroup stretch; manual_text: manual nodes of its loose words."""
    parts = list(sub_node.children) if isinstance(sub_node, All) else [sub_node]
    bounds = [p for p in parts if _has_measure(p)]
    who = [p for p in parts if not _has_measure(p)] + list(manual_text)
    return bounds, who


def with_subgroups(main, alternatives: list[tuple[list, list]], exclusion: bool):
    """The term's node with each subgroup's looser bound as the alternative it is."""
    node = main
    for bounds, who in alternatives:
        loose = bounds[0] if len(bounds) == 1 else All(children=tuple(bounds), span=_span(bounds))
        if not who:       # nobody named: the looser bound alone cannot decide anything
            continue
        group = who[0] if len(who) == 1 else All(children=tuple(who), span=_span(who))
        if exclusion:
            # three-valued: an undecidable subgroup leaves a patient between the bounds to review
            unless = Not(child=group, span=group.span)
            node = All(children=(node, AnyOf(children=(loose, unless), span=_span([loose, unless]))),
                       span=_span([node, loose, group]))
        else:
            node = AnyOf(children=(node, All(children=(group, loose), span=_span([group, loose]))),
                         span=_span([node, loose, group]))
    return node


def _span(nodes: list) -> tuple[int, int]:
    return (min(n.span[0] for n in nodes), max(n.span[1] for n in nodes))
