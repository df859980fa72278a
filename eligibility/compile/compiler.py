"""Compile one criterion's text into an IR tree.

1. normalise the text (offset map back to the source), lex it once;
2. at each token, ask the LALR grammar for the longest measurement phrase
   ("HbA1c 7.5-10.5 % (58-91 mmol/mol)"), duration qualifier ("for at least
   3 months") or time window ("within 6 months");
3. assemble what lies between them: lists joined by commas / and / or, with
   negations ("no", "without", "... excluded"), registry conditions, drug
   classes and statuses as `has` nodes, and everything else as `manual`
   text - so every character ends up in a node or in an unparsed span.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lark import Token
from lark.exceptions import UnexpectedInput
from lark.parsers.lalr_analysis import Shift

from eligibility.compile import assemble, races
from eligibility.compile.grammar import lexer_for, parser
from eligibility.core.ir import CriterionProblem, Manual, Span, Tree
from eligibility.compile.normalize import normalize
from eligibility.registry.concepts import Registry, default_registry
from eligibility.compile.measures import Builder, values_of
from eligibility.compile.transform import Bare, Foreign, Measure, Qualifier, ToPhrases, Within


@dataclass(frozen=True)
class CompiledText:
    status: Literal["compiled", "partial", "manual"]
    tree: Tree
    unparsed: tuple[Span, ...]
    problems: tuple[CriterionProblem, ...]


COMPILER_ERROR = "internal compiler error"
_TRANSFORMER = ToPhrases()
_TABLES: dict[str, tuple] = {}


def _table(start: str) -> tuple:
    """(states, start state, end state, first token types) of one start symbol's LALR table."""
    if start not in _TABLES:
        conf = parser().parse_interactive(start=start).parser_state.parse_conf
        first = frozenset(t for t in conf.states[conf.start_state] if t.isupper())
        _TABLES[start] = (conf.states, conf.start_state, conf.end_state, first)
    return _TABLES[start]


def _step(stack: list, states: dict, kind: str) -> bool:
    """Feed one token type to a bare LALR state stack (no values): the recogniser behind longest match."""
    while True:
        action = states[stack[-1]].get(kind)
        if action is None:
            return False
        op, arg = action
        if op is Shift:
            stack.append(arg)
            return True
        size = len(arg.expansion)
        if size:
            del stack[-size:]
        stack.append(states[stack[-1]][arg.origin.name][1])


def _accepts(stack: list, states: dict, end_state) -> bool:
    stack = list(stack)
    while True:
        action = states[stack[-1]].get("$END")
        if action is None or action[0] is Shift:
            return False
        rule = action[1]
        size = len(rule.expansion)
        if size:
            del stack[-size:]
        stack.append(states[stack[-1]][rule.origin.name][1])
        if stack[-1] == end_state:
            return True


def _ends(tokens: list[Token], i: int, start: str) -> list[int]:
    """Every j such that tokens[i:j] is a complete phrase of `start` (ascending)."""
    states, start_state, end_state, _ = _table(start)
    stack = [start_state]
    ends = []
    for j in range(i, len(tokens)):
        if not _step(stack, states, tokens[j].type):
            break
        if "$END" in states[stack[-1]] and _accepts(stack, states, end_state):
            ends.append(j + 1)
    return ends


def _parse(tokens: list[Token], i: int, end: int, start: str):
    ip = parser().parse_interactive(start=start)
    try:
        for tok in tokens[i:end]:
            ip.feed_token(tok)
        return ip.feed_eof(tokens[end - 1])
    except UnexpectedInput:
        return None


def _longest(tokens: list[Token], i: int, start: str):
    """The longest phrase of `start` beginning at token i: (tree, end index) or None."""
    ends = _ends(tokens, i, start)
    tree = _parse(tokens, i, ends[-1], start) if ends else None
    return (tree, ends[-1]) if tree is not None else None


_CLEAN_AFTER = frozenset({"AND", "OR", "COMMA", "RPAR"})


def _clean_end(tokens: list[Token], end: int) -> bool:
    """May a phrase stop here?  Only before a connector: never between a number and its unit."""
    return end >= len(tokens) or tokens[end].type in _CLEAN_AFTER or (
        tokens[end].type == "OTHER" and tokens[end].value in ".;")


_BRIDGE_TYPES = frozenset({"AND", "OR", "COMMA", "PERSON", "LPAR", "RPAR", "LINK", "OF", "FOR", "THE", "SLASH"})
_BRIDGE_WORDS = frozenset({"in", "for", "if", "men", "women", "male", "female", "males", "females", "patients", "subjects"}) \
    | races.BRIDGE_WORDS


_MULTIPLIERS = frozenset({"x", "times", "fold", "folds"})
_SINCE = frozenset({"post", "after", "since", "following", "from", "prior", "before", "ago"})


def _cut_short(tokens: list[Token], end: int) -> bool:
    """Did the phrase stop inside a longer quantity (`5 times the upper normal range`, `50 ml/min/kg`)?"""
    if end >= len(tokens):
        return False
    last, nxt = tokens[end - 1], tokens[end]
    if last.type == "NUMBER" and nxt.type == "WORD" and nxt.value.lower() in _MULTIPLIERS:
        return True
    if last.type == "NUMBER" and nxt.type == "NUMBER":
        return True
    if last.type == "NUMBER" and nxt.type == "WORD" and nxt.start_pos == last.end_pos:
        return True           # `95th percentile`, `2nd`: the number belongs to a word
    return last.type == "UNIT" and nxt.start_pos == last.end_pos and nxt.value == "/"


def _lone_ages(tokens: list[Token], builder: Builder) -> dict[int, tuple]:
    """Comma-separated items that are only `≥ 18 years` / `40-80 years`: ages.  {first index: (piece, end)}"""
    found: dict[int, tuple] = {}
    first_tokens = _table("lone_age")[3]
    start = 0
    words = sum(t.type not in ("COMMA", "OTHER") for t in tokens)
    first_person = next((k for k, t in enumerate(tokens) if t.type == "PERSON"), len(tokens))
    for k in range(len(tokens) + 1):
        if k < len(tokens) and not (tokens[k].type == "COMMA" or (tokens[k].type == "OTHER" and tokens[k].value in ".;")):
            continue
        core = [t for t in tokens[start:k] if t.type != "OTHER"]
        whole = len(core) == words
        # an item of a list is an age when it opens the criterion ("18 to 65 years, inclusive, with ...")
        # or follows a person ("Men and women, 40-80 years")
        person = start == 0 or first_person < start
        if core and core[0].type in first_tokens and tokens[start] is core[0] and (whole or person):
            ends = _ends(core, 0, "lone_age")
            tree = _parse(core, 0, len(core), "lone_age") if ends and ends[-1] == len(core) else None
            phrase = _TRANSFORMER.transform(tree) if tree is not None else None
            if phrase is not None:
                known = len(builder.problems)
                node, unparsed, reason = builder.measure(phrase)     # fills a shared unit into both ends
                del builder.problems[known:]
                # years only: "≥ 3 months" after a drug is how long it was taken, not an age
                if node is not None and all((d := builder.duration(v)) is not None and d.unit == "a"
                                            for v in values_of(phrase.expr)):
                    found[start] = (assemble.MeasurePiece(node, unparsed, reason, phrase.span), start + len(core))
        start = k + 1
    return found


def _in_compound(tokens: list[Token], i: int) -> bool:
    """`BMI-for-age`, `weight-for-height`: a concept word glued by a hyphen to the word before it."""
    if i < 2:
        return False
    dash, word = tokens[i - 1], tokens[i - 2]
    return dash.type == "DASH" and dash.value == "-" and dash.end_pos == tokens[i].start_pos \
        and word.end_pos == dash.start_pos and word.type not in ("NUMBER", "COMMA", "LPAR", "RPAR")


def _measurement(tokens: list[Token], i: int, start: str, builder: Builder, last: tuple | None):
    """The measurement beginning at token i: ((piece, end) | None, subject for a following bare bound).

    The longest phrase wins, unless it does not compile (a unit that does not fit, an
    implausible value) and a shorter phrase ending before a connector does:
    `BMI ≥ 25 kg/m2 and ≥ 5% weight loss` is `BMI ≥ 25 kg/m2`, then text.
    """
    ends = _ends(tokens, i, start) if not _in_compound(tokens, i) else []
    if not ends:
        return None, last
    candidates = [ends[-1]] + [e for e in reversed(ends[:-1]) if _clean_end(tokens, e)][:3]
    failure = None
    for end in candidates:
        tree = _parse(tokens, i, end, start)
        phrase = _TRANSFORMER.transform(tree) if tree is not None else None
        if isinstance(phrase, Foreign):     # text, whole: its concept word must not start a measurement
            return (list(tokens[i:end]), end), None
        inherit = None
        inferred = isinstance(phrase, Bare)
        if inferred:
            phrase, inherit = Measure(last[0], phrase.expr, phrase.span), last[1]
        if not isinstance(phrase, Measure) or phrase.expr is None or _cut_short(tokens, end):
            continue
        if phrase.subject.kind in ("person", "age") and end < len(tokens) and \
                tokens[end].value.lower().split("-")[0] in _SINCE:
            continue          # "patients ≥ 3 months post-transplant": time since an event, not an age
        known = len(builder.problems)
        node, unparsed, reason = builder.measure(phrase, inherit)
        added = builder.problems[known:]
        del builder.problems[known:]
        if node is not None:
            units = [v.unit for v in values_of(phrase.expr) if v.unit]
            return (assemble.MeasurePiece(node, unparsed, reason, phrase.span), end), \
                (phrase.subject, units[-1] if units else inherit)
        if inferred or (unparsed is None and reason is None):
            continue          # a borrowed subject that does not fit, or no concept: not a measurement
        if failure is None:
            failure = (assemble.MeasurePiece(None, unparsed, reason, phrase.span), end, added)
    if failure is None:
        return None, last
    builder.problems.extend(failure[2])
    return (failure[0], failure[1]), None


def scan(tokens: list[Token], builder: Builder) -> list[object]:
    """Tokens -> pieces: assemble.MeasurePiece / Qualifier / Within / Token."""
    lone = _lone_ages(tokens, builder)
    pieces: list[object] = []
    i, n = 0, len(tokens)
    starts = ("measure", "bare", "qualifier", "within")
    firsts = {s: _table(s)[3] for s in starts}
    last: tuple | None = None          # (subject, unit) of the measurement a bare bound may reuse
    while i < n:
        tok = tokens[i]
        found = lone.get(i)
        for start in starts if found is None else ():
            if tok.type not in firsts[start] or (start == "bare" and last is None):
                continue
            if start in ("measure", "bare"):
                found, last_now = _measurement(tokens, i, start, builder, last)
                if found is not None:
                    last = last_now
                    break
                continue
            hit = _longest(tokens, i, start)
            if hit is None:
                continue
            phrase = _TRANSFORMER.transform(hit[0])
            if isinstance(phrase, Qualifier) and builder.duration(phrase.val) is None:
                continue
            if isinstance(phrase, Within) and builder.duration(phrase.val) is None:
                continue
            if isinstance(phrase, (Qualifier, Within)):
                found = (phrase, hit[1])
                last = None
                break
        if found:
            if isinstance(found[0], list):
                pieces.extend(found[0])
            else:
                pieces.append(found[0])
            i = found[1]
        else:
            pieces.append(tok)
            if tok.type not in _BRIDGE_TYPES and not (tok.type == "WORD" and tok.value.lower() in _BRIDGE_WORDS):
                last = None
            i += 1
    return pieces


def compile_criterion(source: str, start: int = 0, end: int | None = None, *, section: str = "inclusion",
                      registry: Registry | None = None) -> CompiledText:
    """Compile source[start:end] (one criterion); every span returned is an offset into `source`."""
    end = len(source) if end is None else end
    start, end = max(0, min(start, len(source))), max(0, min(end, len(source)))
    end = max(start, end)
    registry = registry or default_registry()
    # trim surrounding white space so spans hug the text
    while start < end and source[start].isspace():
        start += 1
    while end > start and source[end - 1].isspace():
        end -= 1
    norm = normalize(source, start, end)
    lexer = lexer_for(registry)
    builder = Builder(registry, section, norm, source, lexer)
    try:
        tokens = lexer.lex(norm.text)
        pieces = scan(tokens, builder)
        return _finish(pieces, builder, source, start, end)
    except RecursionError:
        reason = "criterion too deeply nested to compile"
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:  # pragma: no cover - a bug
        # one odd criterion must not stop a trial: keep its text for a reviewer, say why
        reason = f"{COMPILER_ERROR} ({type(exc).__name__}: {exc}); kept as text for review"
    return CompiledText("manual", Manual(text=source[start:end], reason=reason, span=(start, end)), (), ())


_SEPARATORS = frozenset(",;.:!?")


def _cover(source: str, start: int, end: int, root: tuple, unparsed: list) -> tuple[tuple, list]:
    """Stretch the root span (or the nearest unparsed span) over understood words outside it.

    Words read as carrying no constraint ("patients with", "at screening visit") must still be
    covered by a span; list punctuation and white space need not be.
    """
    spans = [list(u) for u in unparsed]
    lo, hi = root
    for k in range(start, end):
        if source[k].isspace() or source[k] in _SEPARATORS or lo <= k < hi or any(a <= k < b for a, b in spans):
            continue
        if k < lo:
            after = [u for u in spans if k < u[0] and u[1] <= lo]
            if after:
                min(after, key=lambda u: u[0])[0] = k
            else:
                lo = k
        else:
            before = [u for u in spans if u[0] >= hi and u[1] <= k]
            if before:
                max(before, key=lambda u: u[1])[1] = k + 1
            else:
                hi = k + 1
    return (lo, hi), sorted(tuple(u) for u in spans)


def _attach_qualifiers(pieces: list, builder) -> list:
    """`for at least 3 months` qualifies the nearest measurement before it, unless a condition or drug
    named after that measurement is nearer (then it stays for that `has`)."""
    out: list = []
    last = None
    depth = 0
    optional = False          # inside "with or without X": X imposes nothing, so it hosts nothing
    for k, piece in enumerate(pieces):
        if isinstance(piece, Token):
            depth += (piece.type == "LPAR") - (piece.type == "RPAR")
            opens = piece.value.lower() == "without" and k >= 2 and [
                getattr(p, "value", "").lower() for p in pieces[k - 2:k]] == ["with", "or"]
            optional = opens or optional and piece.type in ("CATEGORY", "WORD")
        if isinstance(piece, assemble.MeasurePiece) and piece.node is not None:
            last = len(out)
        elif isinstance(piece, Token) and piece.type == "CATEGORY" and depth <= 0 and not optional:
            last = None       # "aged ≥ 18 with T2DM on metformin for ≥ 3 months": the drug's duration
        if isinstance(piece, Qualifier) and last is not None:
            duration = builder.duration(piece.val)
            host = out[last]
            if duration is not None and not host.node.qualifiers:
                key = "duration_at_most" if piece.op in ("<", "<=") else "duration_at_least"
                host.node = host.node.model_copy(update={"qualifiers": {key: duration}})
                out.append(assemble.Neutral(piece.span))
                continue
        out.append(piece)
    return out


def _finish(pieces: list, builder: Builder, source: str, start: int, end: int) -> CompiledText:
    """Pieces -> one tree, its status, unparsed spans and problems."""
    asm = assemble.Assembler(builder)
    pieces = _attach_qualifiers(pieces, builder)
    result = asm.sequence(asm.group(pieces))
    unparsed = sorted({builder.src(s) for s in result.unparsed})
    problems = tuple(builder.problems)
    whole = (start, end)
    if result.node is None or not assemble.computable(result.node):
        reason = None
        if problems:
            reason = "; ".join(p.message for p in problems)
        elif result.node is not None and getattr(result.node, "kind", None) == "manual":
            reason = result.node.reason
        elif result.manual:
            reason = asm.manual(result.manual).reason
        tree = Manual(text=source[start:end], reason=reason or "free text: no computable constraint recognised",
                      span=whole)
        return CompiledText("manual", tree, (), problems)
    tree = result.node
    root, unparsed = _cover(source, start, end, tree.span, unparsed)
    if root != tree.span:
        tree = tree.model_copy(update={"span": root})
    status = "partial" if unparsed else "compiled"
    return CompiledText(status, tree, tuple(unparsed), problems)
