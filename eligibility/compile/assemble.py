"""Assemble a criterion's pieces (measurements, qualifiers, tokens) into one IR tree.

Between the grammar's measurement phrases lies list structure: items joined
by commas, `and`, `or`; parenthesised sub-lists; negations (`no`, `without`,
`... excluded`); registry conditions, statuses and drug classes (`has`); and
free text, kept as `manual` nodes so nothing is dropped.
"""
from __future__ import annotations

import re

from lark import Token

from eligibility.core.ir import All, AnyOf, Has, Manual, Not, walk
from eligibility.compile.transform import Qualifier, Within
from eligibility.compile.senses import resolve_ambiguous
from eligibility.compile.pieces import FAMILY, LIST_RELATIONS, QUALIFIED, RELATIONS
from eligibility.registry.vocabulary import AMBIGUOUS, DRUG, ICD
from eligibility.compile.pieces import (EXCLUSION_MARKERS, NEGATIONS, NOISE, CONTENT_TYPES, SEXES, Group, MeasurePiece, Neutral,
                     Out, dose_pieces, has_key, is_content, is_measure, neighbours, runs, word_of, computable, span_of,
                     sex_alternatives, sex_group, sex_of)
from eligibility.compile import races
from eligibility.compile.subgroups import split_subgroup, subgroup_bound, with_subgroups


_DIGIT = re.compile(r"\d")
_WORDS = re.compile(r"[^\W\d_]+")


class Assembler:
    def __init__(self, builder) -> None:
        self.b = builder
        self.registry = builder.registry
        self.exclusion = builder.section == "exclusion"

    # -- helpers -------------------------------------------------------------------
    def src(self, span):
        return self.b.src(span)

    def manual(self, spans: list, reason: str | None = None) -> Manual:
        start = min(s[0] for s in spans)
        end = max(s[1] for s in spans)
        a, z = self.src((start, end))
        text = self.b.source[a:z]
        return Manual(text=text, reason=reason or self._reason(start, end), span=(a, z))

    def _reason(self, start: int, end: int) -> str:
        text = self.b.norm.text[start:end]
        if FAMILY.search(text):
            return "family history: about the patient's relatives, not the patient's own record; needs a reviewer"
        if _DIGIT.search(text):
            return "states a number, but not a comparison on a registry concept the compiler can evaluate"
        return "free text: no computable constraint recognised; needs a reviewer"

    def has(self, token: Token) -> Has | None:
        phrase = self.b.lexer.phrase(token)
        if phrase is None or phrase.kind != "CATEGORY" or self._in_relation(token):
            return None
        vocab = self.b.lexer.vocabulary
        key = phrase.ids[0]
        if key.startswith(AMBIGUOUS):
            key = resolve_ambiguous(self.registry, vocab, key, self.b.source)
            if key is None:
                return None          # stays text: a reviewer reads which sense is meant
        category = vocab.category(key)
        if category is None:
            return None
        # a code-book entry is labelled by the words the trial uses; its codes carry the titles
        label = " ".join(token.value.lower().split()) if key.startswith(ICD) else category.name
        return Has(category=category.category, code=category.id, label=label,
                   span=self.src((token.start_pos, token.end_pos)), codes=vocab.codes(category))

    @staticmethod
    def combine(cls, nodes: list):
        if len(nodes) == 1:
            return nodes[0]
        span = (min(n.span[0] for n in nodes), max(n.span[1] for n in nodes))
        unique: list = []
        for node in nodes:      # "type 1 diabetes, LADA": one has node, the parent span still covers both
            key = has_key(node)
            if key is None or all(has_key(u) != key for u in unique):
                unique.append(node)
        return unique[0] if len(unique) == 1 else cls(children=tuple(unique), span=span)

    def _examples(self, node, categories: list) -> bool:
        """Is a parenthesised list of has nodes only examples of the condition or class named before it?"""
        leaves = [n for n in walk(node) if n.kind not in ("all", "any")]
        if not categories or not leaves or any(n.kind != "has" or n.within for n in leaves):
            return False
        vocab = self.b.lexer.vocabulary
        parents = [vocab.category(self.has(c).code) for c in categories]
        for leaf in leaves:
            cat = vocab.category(leaf.code) or vocab.category(DRUG + leaf.code)
            if cat is None or not any(p is not None and (p.id == cat.id or any(
                    a.startswith(b) for a in cat.atc for b in p.atc) or any(
                    a.startswith(b) for a in cat.icd10 for b in p.icd10)) for p in parents):
                return False
        return True

    # -- structure ---------------------------------------------------------------------
    def group(self, pieces: list) -> list:
        """Nest parenthesised stretches; unbalanced parentheses stay plain tokens."""
        stack: list[tuple[list, Token | None]] = [([], None)]
        for piece in pieces:
            if isinstance(piece, Token) and piece.type == "LPAR":
                stack.append(([], piece))
            elif isinstance(piece, Token) and piece.type == "RPAR" and len(stack) > 1:
                items, opener = stack.pop()
                stack[-1][0].append(Group(items, (opener.start_pos, piece.end_pos)))
            else:
                stack[-1][0].append(piece)
        while len(stack) > 1:
            items, opener = stack.pop()
            stack[-1][0].extend([opener, *items])
        return stack[0][0]

    def neutralize(self, seq: list) -> list:
        """`with or without X`, `male or female`: understood, no constraint."""
        out: list = []
        i = 0
        words = [word_of(p) for p in seq]
        while i < len(seq):
            w = words[i:i + 3]
            if w[:1] == ["with"] and len(w) == 3 and w[1] in ("or", "and/or") and w[2] == "without":
                j = i + 3
                while j < len(seq) and isinstance(seq[j], Token) and seq[j].type in ("CATEGORY", "WORD", "CONCEPT"):
                    j += 1
                out.append(Neutral((span_of(seq[i])[0], span_of(seq[j - 1])[1])))
                i = j
                continue
            if len(w) == 3 and w[0] in SEXES and w[1] in ("or", "and", "and/or") and w[2] in SEXES:
                out.append(Neutral((span_of(seq[i])[0], span_of(seq[i + 2])[1])))
                i += 3
                continue
            out.append(seq[i])
            i += 1
        return out

    def split(self, seq: list) -> tuple[list[list], list[str]]:
        terms: list[list] = [[]]
        joins: list[str] = []
        for piece in seq:
            kind = None
            if isinstance(piece, Token):
                if piece.type == "COMMA" or (piece.type == "OTHER" and piece.value == "."):
                    kind = "comma"
                elif piece.type == "AND":
                    kind = "or" if "/" in piece.value else "and"
                elif piece.type == "OR":
                    kind = "or"
            if kind:
                terms.append([])
                joins.append(kind)
            else:
                terms[-1].append(piece)
        return terms, joins

    # -- one list level ------------------------------------------------------------------
    def sequence(self, seq: list) -> Out:
        seq = self.neutralize(seq)
        negate = self._exclusion_marker(seq)
        terms, joins = self.split(seq)
        outs = [self.term(t) for t in terms]
        # `within 6 months` at the end of "MI or stroke within 6 months" covers every has of the list
        windows = [w for o in outs for w in o.withins]
        if windows:
            for o in outs:
                if o.node is not None and o.has and not o.withins:
                    o.node = self._window(o.node, windows[-1])
        result = self.join(outs, joins)
        if negate is not None and result.node is not None:
            node = result.node
            if isinstance(node, All) and not all(is_measure(c) for c in node.children):
                node = AnyOf(children=node.children, span=node.span)
            a, z = self.src(negate)
            result.node = Not(child=node, span=(min(a, node.span[0]), max(z, node.span[1])))
        return result

    def _exclusion_marker(self, seq: list):
        """A trailing `excluded` / `not allowed` negates the whole list."""
        words = [(k, p) for k, p in enumerate(seq) if isinstance(p, Token) and p.type not in ("OTHER", "COMMA")]
        if not words:
            return None
        k, last = words[-1]
        if word_of(last) in EXCLUSION_MARKERS or (
                len(words) > 1 and word_of(words[-2][1]) == "not" and word_of(last) in ("allowed", "permitted")):
            first = words[-2][0] if word_of(last) in ("allowed", "permitted") else k
            span = (span_of(seq[first])[0], span_of(last)[1])
            for idx in range(first, k + 1):
                seq[idx] = Neutral(span_of(seq[idx]))
            return span
        return None

    def term(self, term: list) -> Out:
        out = Out()
        nodes: list = []
        content: list = []
        qualifiers: list = []
        categories: list = []      # has nodes, or (in a measurement's term) unexplained text
        sexes: list = []
        subgroups: list = []       # looser bounds for a subgroup, "(≤ 5 × ULN with liver metastases)"
        blockers: list = []        # spans of compiled pieces: unparsed runs stop at them
        neg_at = -1
        # inclusion only: "on metformin" is necessary for "metformin ≥ 1500 mg/day", but excluding
        # everyone on metformin for "metformin < 1000 mg/day" would exclude more than the text says
        negated = any(word_of(p) in NEGATIONS or word_of(p) in EXCLUSION_MARKERS for p in term)
        doses = [] if self.exclusion or negated else [
            (span_of(term[a])[0], span_of(term[z - 1])[1])
            for a, z in dose_pieces(term, lambda t: getattr(self.has(t), "category", None) == "medication")]
        for piece in term:
            if doses and any(a <= span_of(piece)[0] and span_of(piece)[1] <= z for a, z in doses):
                continue
            if isinstance(piece, MeasurePiece):
                if piece.node is not None:
                    nodes.append(piece.node)
                    blockers.append(piece.span)
                    out.measure = True
                elif piece.reason is not None and piece.unparsed is not None and self.b.problems and \
                        any(p.span[0] >= self.src(piece.span)[0] and p.span[1] <= self.src(piece.span)[1]
                            for p in self.b.problems):
                    out.unparsed.append(piece.span)
                    blockers.append(piece.span)
                else:
                    content.append(piece.span)
            elif isinstance(piece, Qualifier):
                qualifiers.append(piece)
            elif isinstance(piece, Within):
                out.withins.append(piece)
            elif sex_group(piece):
                sexes.append(piece.span)
            elif isinstance(piece, Group):
                sub = self.sequence(piece.items)
                if sub.node is not None and subgroup_bound(self.b.norm.text[piece.span[0]:piece.span[1]], sub.node, nodes):
                    loose = [self.manual([run]) for run in sub.unparsed + sub.manual]
                    subgroups.append(split_subgroup(sub.node, loose))
                    blockers.append(piece.span)
                    continue
                out.unparsed.extend(sub.unparsed)
                if sub.node is not None and self._examples(sub.node, categories):
                    continue             # "sulfonylurea (glimepiride, gliclazide)": examples of what came before
                if sub.node is not None and computable(sub.node):
                    nodes.append(sub.node)
                    blockers.append(piece.span)
                    out.has.extend(len(nodes) - 1 for _ in sub.has[:1])
                    out.measure = out.measure or sub.measure
                elif sub.manual or sub.node is not None:
                    content.append(piece.span)
            elif isinstance(piece, Neutral):
                continue
            elif isinstance(piece, Token):
                word = piece.value.lower()
                if piece.type == "CATEGORY" and self.has(piece) is not None:
                    categories.append(piece)
                    continue
                if piece.type == "CATEGORY":
                    # a mention under a relation ("other vitamin K antagonists") or an abbreviation the
                    # trial does not resolve: text for a reviewer, never dropped
                    content.append(span_of(piece))
                    continue
                # a negation opens the term, or follows its measurement ("INR > 1.5 if not on warfarin")
                if word in NEGATIONS and out.neg is None and all(is_measure(n) for n in nodes):
                    out.neg = (piece.start_pos, piece.end_pos)
                    neg_at = len(categories)     # the category a negation right before it would cover
                elif piece.type == "WORD" and word in NOISE:
                    continue
                elif piece.type == "PERSON" and word in SEXES:
                    sexes.append(span_of(piece))
                elif piece.type in CONTENT_TYPES:
                    content.append(span_of(piece))
        races.take(self, out, nodes, content, blockers, sexes, term)     # "(Asian participants)", "Hispanic"
        if out.neg is not None and not nodes and not categories and not out.measure:
            content.append(out.neg)      # a bare "no": nothing to negate, so it is text
            out.neg = None
        measured = out.measure or bool(out.unparsed)     # a measurement, compiled or with a bad unit
        if measured:
            # beside a measurement, a condition or drug class standing on its own ("with type 2
            # diabetes", "insulin-treated") is one more constraint; one inside a longer phrase
            # ("uncontrolled hypertension", "metformin monotherapy") and sexes are left unparsed
            negated = None
            if out.neg is not None:
                # beside a measurement a negation covers only the condition it prefixes ("non-pregnant")
                nxt = categories[neg_at] if 0 <= neg_at < len(categories) else None
                between = self.b.norm.text[out.neg[1]:nxt.start_pos] if nxt is not None else "x"
                # "non-pregnant", "not receiving anticoagulants": only words that say nothing between
                if nxt is not None and all(w in NOISE for w in _WORDS.findall(between.lower())):
                    negated = nxt
                else:
                    content.append(out.neg)
            for c in categories:
                k = next(n for n, p in enumerate(term) if p is c)
                if any(is_content(term[j]) for j in neighbours(term, k)):
                    content.append(span_of(c))
                    if c is negated:
                        content.append(out.neg)
                elif c is negated:
                    has = self.has(c)
                    a, _ = self.src(out.neg)
                    nodes.append(Not(child=has, span=(a, has.span[1])))
                    blockers.append((out.neg[0], c.end_pos))
                else:
                    nodes.append(self.has(c))
                    blockers.append(span_of(c))
            out.neg = None
        elif sexes and not nodes and not categories and not content:
            found = {sex_of(self.b.norm.text[a:z]) for a, z in sexes}
            words = set(re.findall(r"[a-z]+", self.b.norm.text.lower())) - NOISE - SEXES
            # only a criterion that says nothing but the sex ("Males", "Female patients only"):
            # in "Men and postmenopausal women" the sex is one side of an alternative
            if len(found) == 1 and None not in found and not words:
                # "Males", "Female patients": the patient's sex
                code, label = found.pop()
                first, last = min(s[0] for s in sexes), max(s[1] for s in sexes)
                nodes.append(Has(category="status", code=code, label=label, span=self.src((first, last))))
            else:
                content.extend(sexes)
        else:
            content.extend(s for s in sexes if self.b.norm.text[s[0]:s[1]].lower() not in ("men", "women"))
            for c in categories:
                nodes.append(self.has(c))
                out.has.append(len(nodes) - 1)
        for q in qualifiers:
            duration = self.b.duration(q.val)
            # the nearest item before the qualifier ("with T2DM treated with metformin for ≥ 3 months")
            at = self.src(q.span)[0]
            hosts = [k for k, n in enumerate(nodes) if not getattr(n, "qualifiers", None) and n.span[0] < at]
            if duration is None or not hosts:
                content.append(q.span)
                continue
            key = "duration_at_most" if q.op in ("<", "<=") else "duration_at_least"
            k = max(hosts, key=lambda k: nodes[k].span[0])
            nodes[k] = nodes[k].model_copy(update={"qualifiers": {key: duration}})
        if measured:
            self._sex_specific(nodes, sexes, content, blockers)
            out.has = [k for k, node in enumerate(nodes) if getattr(node, "kind", None) == "has"]
            if out.withins and not out.has:
                # "HbA1c > 9% within the past 3 months": when it was measured, which the tree cannot hold
                content.extend(w.span for w in out.withins)
                out.withins = []
            # a measurement (or one whose unit did not fit) with words the tree does not hold
            out.unparsed.extend(runs(content, blockers))
        elif nodes and content and self._qualified(nodes, content):
            # "uncontrolled hypertension", "metformin monotherapy": having the condition or taking the
            # drug is necessary (a patient without it is decided), the words beside it go to a reviewer
            # runs stop at the mentions; a run of punctuation alone says nothing
            for run in runs(content, blockers + [span_of(c) for c in categories]):
                if any(ch.isalnum() for ch in self.b.norm.text[run[0]:run[1]]):
                    nodes.append(self.manual([run], QUALIFIED))
            nodes.sort(key=lambda n: n.span[0])
        elif nodes and content:
            spans = content + [span_of(p) for p in term if not isinstance(p, Neutral)]
            out.manual = [(min(s[0] for s in spans), max(s[1] for s in spans))]
            out.has = []
            out.withins = []
            return out
        elif content:
            out.manual = [(min(s[0] for s in content), max(s[1] for s in content))]
            out.withins = []
            return out
        out.unparsed.extend(doses)
        if out.withins and out.has:
            for k in out.has:
                nodes[k] = self._window(nodes[k], out.withins[-1])
        if nodes:
            out.node = with_subgroups(self.combine(All, nodes), subgroups)
        return out

    def _in_relation(self, token: Token) -> bool:
        """Is the mention inside the scope of a relation word before it in the same sentence ("allergy
        to any ARB or ACE inhibitor", "other than X", "negative for HIV")?  Then it is not the
        patient's own condition or drug, and stays text."""
        before = self.b.norm.text[:token.start_pos].lower()
        sentence = re.split(r"[.;:]\s", before)[-1]
        item = re.split(r"[,;]", sentence)[-1]
        return bool(set(re.findall(r"[a-z]+", sentence)) & LIST_RELATIONS
                    or set(re.findall(r"[a-z]+", item)) & RELATIONS)

    def _qualified(self, nodes: list, content: list) -> bool:
        """Are the words beside these has nodes a qualifier of them (not a relation that changes whose
        or what: "allergy to", "family history of", "risk of", "planned")?"""
        if not all(getattr(n, "kind", None) == "has" and n.category != "status" for n in nodes):
            return False
        text = self.b.norm.text
        words = {w for a, z in content for w in re.findall(r"[a-z]+", text[a:z].lower())}
        return not (words & RELATIONS) and not FAMILY.search(text)

    def _sex_specific(self, nodes: list, sexes: list, content: list, blockers: list) -> None:
        """`creatinine > 1.5 mg/dL (men)`: one measurement and one sex in a term -> all(sex, measurement)."""
        measures = [k for k, n in enumerate(nodes) if is_measure(n)]
        sex = sex_of(self.b.norm.text[sexes[0][0]:sexes[0][1]]) if len(sexes) == 1 else None
        if sex is None or len(measures) != 1:
            content.extend(sexes)
            return
        k = measures[0]
        has = Has(category="status", code=sex[0], label=sex[1], span=self.src(sexes[0]))
        pair = sorted((has, nodes[k]), key=lambda n: n.span[0])
        nodes[k] = All(children=tuple(pair), span=(pair[0].span[0], max(n.span[1] for n in pair)))
        blockers.append(sexes[0])

    def _window(self, node, within: Within):
        duration = self.b.duration(within.val)
        if duration is None:
            return node
        if isinstance(node, Has) and node.within is None:
            return node.model_copy(update={"within": duration})
        if isinstance(node, (All, AnyOf)):
            return node.model_copy(update={"children": tuple(self._window(c, within) for c in node.children)})
        return node

    def join(self, outs: list[Out], joins: list[str]) -> Out:
        # drop empty terms, keeping the stronger connector (", and" -> and)
        items: list[Out] = []
        links: list[str] = []
        pending = None
        for k, out in enumerate(outs):
            link = joins[k - 1] if k > 0 else None
            if pending is not None and link is not None:
                link = link if pending == "comma" else pending if link == "comma" else link
            if out.node is None and not out.manual and out.neg is None:
                pending = link if pending is None or link is None else link
                continue
            if items:
                links.append(link or "comma")
            items.append(out)
            pending = None
        result = Out()
        for o in outs:
            result.unparsed.extend(o.unparsed)
        if not items:
            return result
        # adjacent manual items joined by and/or are one manual text ("Severe heart and kidney failure")
        merged: list[Out] = [items[0]]
        merged_links: list[str] = []
        for link, o in zip(links, items[1:]):
            prev = merged[-1]
            if link != "comma" and prev.manual and o.manual and prev.node is None and o.node is None:
                prev.manual = [(prev.manual[0][0], o.manual[-1][1])]
                continue
            merged.append(o)
            merged_links.append(link)
        nodes = [o.node if o.node is not None else (self.manual(o.manual) if o.manual else None) for o in merged]
        # "no A or B": a negation at the head of a run covers the whole run, up to the next comma
        k = 0
        scoped_nodes: list = []
        scoped_links: list[str] = []
        scoped_outs: list[Out] = []
        while k < len(merged):
            o, node = merged[k], nodes[k]
            if k:
                scoped_links.append(merged_links[k - 1])
            if o.neg is not None:
                run = [node]
                while k + 1 < len(merged) and merged_links[k] != "comma" and merged[k + 1].neg is None:
                    k += 1
                    run.append(nodes[k])
                run = [n for n in run if n is not None]
                if run:
                    inner = self.combine(AnyOf, run)
                    a, _ = self.src(o.neg)
                    node = Not(child=inner, span=(min(a, inner.span[0]), inner.span[1]))
            scoped_nodes.append(node)
            scoped_outs.append(o)
            k += 1
        nodes, merged, merged_links = scoped_nodes, scoped_outs, scoped_links
        if all(o.node is None for o in merged):
            result.manual = [m for o in merged for m in o.manual]
            if len(merged) == 1:
                return result
        explicit = {l for l in merged_links if l != "comma"}
        if self.exclusion and not all(o.measure and not o.manual for o in merged):
            merged_links = ["or" if l == "and" else l for l in merged_links]
            explicit = {l for l in merged_links if l != "comma"}
        default = "or" if self.exclusion else "and"
        comma = explicit.pop() if len(explicit) == 1 else default
        links = [comma if l == "comma" else l for l in merged_links]
        runs: list[list] = [[nodes[0]]]
        for link, node in zip(links, nodes[1:]):
            if link == "or":
                runs.append([node])
            else:
                runs[-1].append(node)
        parts = []
        for run in runs:
            part = self.combine(All, run)
            alt = races.alternatives(sex_alternatives(part))
            parts.extend(alt.children if alt is not part and isinstance(alt, AnyOf) else (alt,))
        result.node = self.combine(AnyOf, parts)
        result.measure = any(o.measure for o in merged)
        return result
