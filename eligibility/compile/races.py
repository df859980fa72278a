"""Race and ethnicity in criteria: `BMI ≥ 23 kg/m² (Asian participants) or ≥ 25 kg/m² (others)`.

Words naming an OMB race or ethnicity (eligibility/data/races.toml, through
eligibility.registry.races) become status `has` nodes (`race_asian`,
`ethnicity_hispanic`) that the evaluators answer from Patient.race / ethnicity:

- beside the one measurement of a list term they make it race-specific,
  all(race, measurement), as `creatinine > 1.5 mg/dL (men)` is all(sex, measurement);
- `others` / `all other participants` means everyone not of the races named elsewhere
  in the criterion: all(not race, measurement);
- a bound with a race-specific exception in parentheses (`BMI ≥ 27 kg/m² (≥ 25 kg/m² for
  Asian Americans)`) is one bound per group: any(all(not asian, ≥ 27), all(asian, ≥ 25));
- race-specific bounds joined by `and` are alternatives (`≥ 23 for Asians and ≥ 25 for
  others`: each person meets the bound of their group, never both);
- race words alone (`Hispanic or Latino ethnicity`) are the status itself.

Colour words (`black`, `white`) mean a race only beside a person or race word or in a
criterion naming another race: "white or black stools" stays text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from eligibility.core.ir import All, AnyOf, Has, Not
from eligibility.compile.pieces import is_measure
from eligibility.registry.races import Origin, origin_of, table

# a bound after these words may reuse the measurement named before them (compiler._BRIDGE_WORDS)
BRIDGE_WORDS = table().bridge
_WORD = re.compile(r"[a-z0-9]+")
_NAMING = frozenset(w for p in table().phrases for w in p)    # a term without these names no race
_PEOPLE_GLUE = frozenset({"of", "for", "in", "the", "among", "who", "are", "as", "if"})   # fillers that name no one


@dataclass
class _Found:
    """One race phrase of a term: what it names, and the normalised spans it took."""
    origins: list[Origin]         # one category, or (others) every category named elsewhere
    negated: bool
    spans: list[tuple[int, int]]
    others: bool = False


def _words_at(text: str, span: tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
    a = span[0]
    return [(m.group(), (a + m.start(), a + m.end())) for m in _WORD.finditer(text[span[0]:span[1]].lower())]


def _only_glue(text: str) -> bool:
    """Is this stretch between two race words only spaces, hyphens, slashes, colons and filler words?"""
    t = table()
    rest = _WORD.sub(lambda m: "" if m.group() in t.fillers or m.group() in t.context else "\0", text.lower())
    return re.fullmatch(r"[\s\-/:]*", rest) is not None          # "Race: White"


def _match(words: list[str], k: int) -> tuple[Origin, int] | None:
    """The longest race phrase starting at words[k]: (category, length)."""
    phrases = table().phrases
    for n in range(min(table().longest, len(words) - k), 0, -1):
        origin = phrases.get(tuple(words[k:k + n]))
        if origin is not None:
            return origin, n
    return None


def _named(text: str, outside: tuple[int, int]) -> list[Origin]:
    """Every category the criterion names outside `outside` (for `others`), in order, once."""
    words = [(m.group(), m.start()) for m in _WORD.finditer(text.lower())]
    plain = [w for w, _ in words]
    found: list[Origin] = []
    k = 0
    while k < len(words):
        hit = _match(plain, k)
        if hit is None:
            k += 1
            continue
        if not (outside[0] <= words[k][1] < outside[1]) and hit[0] not in found:
            found.append(hit[0])
        k += hit[1]
    return found


def _context(text: str, run: list[tuple[str, tuple[int, int]]]) -> bool:
    """May a colour word of this run mean a race?  Beside a person or race word, or in a criterion
    that names a race by an unambiguous word or speaks of race or ethnicity."""
    t = table()
    a, z = run[0][1][0], run[-1][1][1]
    before = _WORD.findall(text[:a].lower())[-2:]
    after = _WORD.findall(text[z:].lower())[:1]
    near = [w for w, _ in run] + before + after
    if any(w in t.context or (w in t.fillers and w not in _PEOPLE_GLUE) for w in near):
        return True
    words = _WORD.findall(text.lower())
    if any(w in t.context for w in words):
        return True
    return any(o is not None and not (set(p) <= o.ambiguous) for p, o in
               ((p, t.phrases.get(p)) for n in range(1, t.longest + 1)
                for p in (tuple(words[k:k + n]) for k in range(len(words) - n + 1))))


def _parse(text: str, run: list[tuple[str, tuple[int, int]]]) -> list[_Found] | None:
    """The race phrases of a run of words, or None when a word of it is not about race."""
    t = table()
    words = [w for w, _ in run]
    found: list[_Found] = []
    negate: list = []             # the span of a "non" waiting for its race
    k = 0
    while k < len(words):
        hit = _match(words, k)
        if hit is not None:
            origin, n = hit
            if set(words[k:k + n]) <= origin.ambiguous and not _context(text, run):
                return None
            found.append(_Found([origin], bool(negate), negate + [s for _, s in run[k:k + n]]))
            negate = []
            k += n
        elif words[k] == "non" and not negate:
            negate = [run[k][1]]
            k += 1
        elif words[k] in t.others:
            span = (run[0][1][0], run[-1][1][1])
            named = _named(text, span)
            if not named:
                return None
            found.append(_Found(named, True, [run[k][1]], others=True))
            k += 1
        elif words[k] in t.fillers or words[k] in t.context:
            k += 1
        else:
            return None
    return found if found and not negate else None


def _runs(text: str, spans: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    runs: list[list[tuple[int, int]]] = []
    for span in sorted(set(spans)):
        if runs and runs[-1][-1][1] <= span[0] and _only_glue(text[runs[-1][-1][1]:span[0]]):
            runs[-1].append(span)
        else:
            runs.append([span])
    return runs


def _node(asm, found: _Found):
    """The has node(s) of one phrase; `others` gives not(any(named)), its leaves laid end to end."""
    a = min(s[0] for s in found.spans)
    z = max(s[1] for s in found.spans)
    span = asm.src((a, z))
    leaves = [Has(category="status", code=o.code, label=o.name,
                  span=span if n == 0 else (span[1], span[1])) for n, o in enumerate(found.origins)]
    inner = leaves[0] if len(leaves) == 1 else AnyOf(children=tuple(leaves), span=span)
    return Not(child=inner, span=span) if found.negated else inner


def take(asm, out, nodes: list, content: list, blockers: list, sexes: list, term: list = ()) -> None:
    """Race and ethnicity words of one list term become status nodes, in place.

    Content spans that are race phrases leave `content`; beside the term's one measurement
    they wrap it (all(race, measurement)), otherwise they join the term's nodes.  Beside no or
    several measurements, or with a sex word ("Asian women": the sex rules read the words),
    the words stay text.
    """
    if sexes:
        return
    text = asm.b.norm.text
    measured = out.measure or bool(out.unparsed)
    hits: list[tuple[list[_Found], list, bool]] = []
    # "for all other subjects": `other` is a noise word elsewhere, so it is not in the term's text
    others = [(p.start_pos, p.end_pos) for p in term if getattr(p, "type", None) == "WORD"
              and p.value.lower() in table().others]
    named = others or any(not _NAMING.isdisjoint(_WORD.findall(text[a:z].lower())) for a, z in content)
    for run in _runs(text, content + others) if named else ():
        words = [w for span in run for w in _words_at(text, span)]
        neg = out.neg
        # "non-Asian" (and, beside a measurement, "not of Asian descent"): the negation is the race's
        use_neg = neg is not None and neg[1] <= run[0][0] and _only_glue(text[neg[1]:run[0][0]]) and (
            text[neg[0]:neg[1]].lower() == "non" or measured)
        found = _parse(text, ([("non", neg)] if use_neg else []) + words) if words else None
        if found:
            if len(found) == 1 and not found[0].others:     # "Asian descent": the node holds the run
                found[0].spans += run
            hits.append((found, run, use_neg))
    existing = [n for n in nodes if is_origin(n)] if measured else []
    if measured and (sum(is_measure(n) for n in nodes) != 1 or not (hits or existing)):
        exceptions(nodes)
        return          # with several bounds, which one the race qualifies is for a reviewer
    if not hits:
        return
    made = []
    for found, run, use_neg in hits:
        made.extend(_node(asm, f) for f in found)
        content[:] = [c for c in content if c not in run]
        blockers.extend(run)
        if use_neg:
            blockers.append(out.neg)
            out.neg = None
    if not measured:
        nodes.extend(made)
        return
    nodes[:] = [n for n in nodes if not is_origin(n)]
    k = next(k for k, n in enumerate(nodes) if is_measure(n))
    parts = sorted([nodes[k], *existing, *made], key=lambda n: n.span[0])
    nodes[k] = All(children=tuple(parts), span=(min(n.span[0] for n in parts), max(n.span[1] for n in parts)))


def exceptions(nodes: list) -> None:
    """`BMI ≥ 27 kg/m² (≥ 25 kg/m² for Asian Americans)`: the plain bound is for everyone else."""
    plain = [k for k, n in enumerate(nodes) if is_measure(n)]
    if len(plain) != 1:
        return
    base = nodes[plain[0]]
    parts = [k for k, n in enumerate(nodes) if (s := _split(n)) is not None
             and getattr(s[1], "concept", None) == getattr(base, "concept", None)]
    named = [h for k in parts for h in _positive(_split(nodes[k])[0])]
    if not named:
        return
    end = (base.span[1], base.span[1])      # "everyone else" is said by the exception's words
    codes: list = []
    for h in named:
        if h.code not in [c.code for c in codes]:
            codes.append(h.model_copy(update={"span": end}))
    inner = codes[0] if len(codes) == 1 else AnyOf(children=tuple(codes), span=end)
    others = All(children=(base, Not(child=inner, span=end)), span=base.span)
    alternatives = [others, *(nodes[k] for k in parts)]
    either = AnyOf(children=tuple(alternatives), span=(min(n.span[0] for n in alternatives),
                                                       max(n.span[1] for n in alternatives)))
    nodes[:] = [either if n is base else n for k, n in enumerate(nodes) if k not in parts]


def is_origin(node) -> bool:
    """Is this node only about race or ethnicity (a has, a not, an any or all of them)?"""
    kind = getattr(node, "kind", None)
    if kind == "has":
        return origin_of(node.code) is not None
    if kind == "not":
        return is_origin(node.child)
    if kind in ("all", "any"):
        return all(is_origin(c) for c in node.children)
    return False


def _split(node) -> tuple[list, object] | None:
    """all(race..., measurement) -> (race conditions, measurement), else None."""
    if getattr(node, "kind", None) != "all":
        return None
    measures = [c for c in node.children if is_measure(c)]
    conditions = [c for c in node.children if is_origin(c)]
    if len(measures) != 1 or len(conditions) + 1 != len(node.children):
        return None
    return conditions, measures[0]


def _positive(conditions: list) -> list:
    """The has nodes a race-specific part asks for (not the negated ones)."""
    return [c for c in conditions if c.kind == "has"] + [
        h for c in conditions if c.kind == "any" for h in c.children if h.kind == "has"]


def alternatives(node):
    """all(all(asian, BMI ≥ 23), all(not asian, BMI ≥ 25)): one bound per group, never both."""
    if getattr(node, "kind", None) != "all":
        return node
    parts = [c for c in node.children if _split(c) is not None]
    keys = {tuple(sorted(repr(x.model_dump(exclude={"span"})) for x in _split(c)[0])) for c in parts}
    if len(parts) < 2 or len(keys) < 2:
        return node
    span = (min(c.span[0] for c in parts), max(c.span[1] for c in parts))
    either = AnyOf(children=tuple(parts), span=span)
    rest = [c for c in node.children if all(c is not p for p in parts)]
    if not rest:
        return either.model_copy(update={"span": node.span})
    children = []
    for child in node.children:
        if child is parts[0]:
            children.append(either)
        elif all(child is not p for p in parts):
            children.append(child)
    return node.model_copy(update={"children": tuple(children)})
