"""The criterion grammar and its lexer: grammars/criteria.lark plus terminals generated from the registry.

`grammars/criteria.lark` defines the phrase grammar and the keyword terminals
(comparators, range words, links).  CONCEPT, CATEGORY and UNIT are `%declare`d
there and produced here from the registry's synonyms and unit spellings, so a
new concept is a data change.  The Lark LALR parser is built once per process
(and cached on disk by Lark, keyed by the grammar text: the registry never
enters the grammar, so a registry change cannot leave a stale parser); the
lexer is built once per registry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token

from eligibility.compile.normalize import normalize
from eligibility.registry.concepts import Registry
from eligibility.registry.vocabulary import vocabulary

START_SYMBOLS = ("measure", "bare", "qualifier", "within", "lone_age")
GRAMMAR_NAME = "criteria.lark"


def grammar_text() -> str:
    """The grammar shipped in the wheel (package resource) or, in a checkout, grammars/criteria.lark."""
    try:
        resource = resources.files("eligibility").joinpath("grammars", GRAMMAR_NAME)
        if resource.is_file():
            return resource.read_text("utf-8")
    except (OSError, ModuleNotFoundError):
        pass
    return (Path(__file__).resolve().parents[2] / "grammars" / GRAMMAR_NAME).read_text("utf-8")


_PARSER: Lark | None = None


def parser() -> Lark:
    global _PARSER
    if _PARSER is None:
        try:
            _PARSER = Lark(grammar_text(), parser="lalr", lexer="basic", start=list(START_SYMBOLS),
                           propagate_positions=True, maybe_placeholders=False, cache=True)
        except OSError:
            # an unwritable cache directory must not stop compilation
            _PARSER = Lark(grammar_text(), parser="lalr", lexer="basic", start=list(START_SYMBOLS),
                           propagate_positions=True, maybe_placeholders=False)
    return _PARSER


# ---- registry-generated terminals -------------------------------------------

def phrase_key(text: str) -> str:
    """Key under which a matched phrase is looked up: case, spaces and hyphens do not matter."""
    return re.sub(r"[\s\-]+", "", text.lower()).replace(",", ".")


def _atoms(phrase: str) -> list[str]:
    """Regex pieces for one phrase: flexible spacing, optional hyphens, spaced slashes."""
    atoms: list[str] = []
    for ch in phrase:
        if ch in " -":
            atoms.append(r"[\s\-]*")
        elif ch == "/":
            atoms.append(r"\s*/\s*")
        elif ch == ".":
            atoms.append(r"[.,]")          # `1,73 m²`: a decimal comma inside a unit
        else:
            atoms.append(re.escape(ch))
    return atoms


def _trie_regex(phrases: list[str]) -> str:
    """One regex matching any phrase, preferring the longest (a trie: no backtracking over 600 alternatives)."""
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for atom in _atoms(phrase):
            node = node.setdefault(atom, {})
        node[""] = {}

    def build(node: dict) -> str:
        end = "" in node
        branches = [atom + build(child) for atom, child in node.items() if atom != ""]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:
            return f"(?:{body})?"
        return body if len(branches) == 1 else body

    return build(trie)


@dataclass(frozen=True)
class Phrase:
    kind: str                 # CONCEPT | CATEGORY | UNIT
    ids: tuple[str, ...]      # concept ids, category id, or the unit spelling


_WORD_END = r"(?:(?<=[^\w])|(?![\w]))"
# Words that may follow a number without being (a misspelt) unit.
_NOT_UNIT = {
    "at", "in", "on", "for", "of", "the", "a", "an", "by", "with", "without", "within", "during", "as",
    "per", "if", "when", "while", "after", "before", "prior", "since", "until", "despite", "only", "each",
    "both", "either", "respectively", "measured", "confirmed", "obtained", "documented", "times", "x",
    "consecutive", "separate", "occasions", "visits", "visit", "screening", "baseline", "are", "is", "was",
    "were", "be", "than", "then", "that", "which", "who", "from", "to", "plus", "minus", "episodes", "episode",
    "or", "and", "not", "no", "nor", "inclusive", "exclusive", "ago", "old", "apart", "hours", "hour", "h",
}
_NUMBER_WORDS = frozenset("""
one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
""".split())
# Token types after which a word closes the measurement (so a lone word after a number is its unit).
_CLOSERS = {"COMMA", "AND", "OR", "RPAR", "OTHER", "$END"}


class Lexer:
    """Lexes normalised criterion text into lark Tokens (positions in the normalised text)."""

    def __init__(self, registry: Registry, lark: Lark) -> None:
        self.registry = registry
        # conditions, drugs and procedures are found by the vocabulary's automaton, not this regex
        self.vocabulary = vocabulary(registry)
        table: dict[str, Phrase] = {}
        unit_words: dict[str, str] = {}
        patterns: list[str] = []

        def add(phrase: str, phrase_obj: Phrase) -> None:
            norm = normalize(phrase).text.lower().strip()
            if not norm:
                return
            key = phrase_key(norm)
            if len(norm) == 1 and norm.isalpha():
                unit_words.setdefault(norm, phrase_obj.ids[0])  # `g`, `u`, `d`: only right after a number
                return
            existing = table.get(key)
            patterns.append(norm)
            if existing is None:
                table[key] = phrase_obj
            elif existing.kind == phrase_obj.kind == "CONCEPT":
                table[key] = Phrase("CONCEPT", tuple(dict.fromkeys(existing.ids + phrase_obj.ids)))
            # otherwise the first meaning wins: concepts, then units

        for phrase, ids in registry.concept_synonyms.items():
            add(phrase, Phrase("CONCEPT", ids))
        for spelling in registry.units:
            add(spelling, Phrase("UNIT", (spelling,)))
        self.table = table
        self.patterns = patterns
        self.unit_words = unit_words

        groups = [f"(?P<REG>{_trie_regex(sorted(set(patterns), key=lambda s: (-len(s), s)))}){_WORD_END}"]
        terminals = [t for t in lark.terminals if t.pattern.type == "re" or t.pattern.type == "str"]
        terminals.sort(key=lambda t: (-t.priority, -t.pattern.max_width, t.name))
        for term in terminals:
            regex = term.pattern.to_regexp()
            tail = "" if term.name == "NUMBER" else _WORD_END
            groups.append(f"(?P<{term.name}>{regex}){tail}")
        groups.append(r"(?P<WORD>[^\W\d_]+(?:'[^\W\d_]+)*)")
        groups.append(r"(?P<OTHER>\S)")
        self.master = re.compile("|".join(groups), re.IGNORECASE)
        self._space = re.compile(r"\s*")

    def lex(self, text: str) -> list[Token]:
        tokens: list[Token] = []
        pos, n = 0, len(text)
        match_at, space = self.master.match, self._space.match
        table = self.table
        mentions = {m.start: m for m in self.vocabulary.find(text)}
        while True:
            pos = space(text, pos).end()
            if pos >= n:
                break
            m = match_at(text, pos)
            kind = m.lastgroup
            value = m.group()
            end = m.end()
            if kind == "REG":
                phrase = table.get(phrase_key(value))
                kind = phrase.kind if phrase else "WORD"
            mention = mentions.get(pos)
            # a condition, drug or procedure longer than the regex's token wins; at equal length a
            # registry concept or unit keeps its meaning ("hemoglobin" the lab, not a disorder)
            if mention is not None and (mention.end > end or (mention.end == end and kind not in ("CONCEPT", "UNIT"))):
                kind, end = "CATEGORY", mention.end
                value = text[pos:end]
            tokens.append(Token(kind, value, start_pos=pos, line=1, column=pos + 1, end_line=1,
                                end_column=end + 1, end_pos=end))
            pos = end
        if "(" in text:
            tokens = self._merge_spelled_numbers(tokens)
        tokens = self._merge_spaced_thousands(tokens, text)
        self._retype(tokens)
        if mentions:
            tokens = self._elided(tokens, text)
        return tokens

    def _elided(self, tokens: list[Token], text: str) -> list[Token]:
        """`heart and kidney failure`, `breast or ovarian cancer`, `type 1 or type 2 diabetes`: words
        before a conjunction that, with the last word of the condition after it, name a vocabulary
        entry of the same kind become that entry (the token's value is the phrase meant)."""
        vocab = self.vocabulary
        out = list(tokens)
        for k in range(len(out) - 1, 1, -1):
            tok = out[k]
            if tok.type != "CATEGORY" or (key := vocab.key_of(tok.value)) is None:
                continue
            kind = getattr(vocab.category(key), "category", None)
            words = tok.value.split()
            # the shared head: any run of the mention's words after its first ("lung transplant
            # recipients" shares "transplant" or "transplant recipients" with "liver")
            heads = [" ".join(words[i:j]) for i in range(1, len(words)) for j in range(len(words), i, -1)]
            j = k - 1
            while j >= 1 and out[j].type in ("AND", "OR", "SLASH", "COMMA"):
                found = None
                for width in (2, 1):
                    before = out[j - width:j] if j - width >= 0 else []
                    if len(before) != width or any(w.type not in ("WORD", "NUMBER") for w in before):
                        continue
                    written = text[before[0].start_pos:before[-1].end_pos]
                    for head in heads:
                        other = vocab.key_of(f"{written} {head}")
                        if other is not None and vocab.key_of(written) is None \
                                and getattr(vocab.category(other), "category", None) == kind:
                            found = (width, f"{written} {head}")
                            break
                    if found:
                        break
                if found is None:
                    break
                width, phrase = found
                first, last = out[j - width], out[j - 1]
                out[j - width:j] = [Token("CATEGORY", phrase, start_pos=first.start_pos, line=1, column=first.column,
                                          end_line=1, end_column=last.end_column, end_pos=last.end_pos)]
                j = j - width - 1
        return out

    @staticmethod
    def _merge_spelled_numbers(tokens: list[Token]) -> list[Token]:
        """`eighteen (18)`, `twenty-one (21)`, `18 (eighteen)`: one number token spanning the phrase."""
        def words_at(i: int) -> int:
            """How many tokens from i spell a number in words (`twenty`, `twenty - one`), else 0."""
            n = 0
            while i + n < len(tokens):
                tok = tokens[i + n]
                if tok.type == "WORD" and tok.value.lower() in _NUMBER_WORDS:
                    n += 1
                elif tok.type == "DASH" and n and tok.value == "-" and i + n + 1 < len(tokens) \
                        and tokens[i + n + 1].value.lower() in _NUMBER_WORDS:
                    n += 1
                else:
                    break
            return n

        out: list[Token] = []
        i = 0
        while i < len(tokens):
            n = words_at(i)
            kinds = [t.type for t in tokens[i + n:i + n + 3]] if n else []
            merged = None
            if n and kinds == ["LPAR", "NUMBER", "RPAR"]:
                merged = (tokens[i + n + 1], tokens[i], tokens[i + n + 2], i + n + 3)
            elif tokens[i].type == "NUMBER" and i + 1 < len(tokens) and tokens[i + 1].type == "LPAR":
                m = words_at(i + 2)
                if m and i + 2 + m < len(tokens) and tokens[i + 2 + m].type == "RPAR":
                    merged = (tokens[i], tokens[i], tokens[i + 2 + m], i + 3 + m)
            if merged:
                number, first, last, nxt = merged
                out.append(Token("NUMBER", number.value, start_pos=first.start_pos, line=1, column=first.column,
                                 end_line=1, end_column=last.end_column, end_pos=last.end_pos))
                i = nxt
                continue
            out.append(tokens[i])
            i += 1
        return out

    @staticmethod
    def _merge_spaced_thousands(tokens: list[Token], text: str) -> list[Token]:
        """`100 000/mm3`: digits grouped by a single space are one number."""
        out: list[Token] = []
        for tok in tokens:
            prev = out[-1] if out else None
            if (tok.type == "NUMBER" and prev is not None and prev.type == "NUMBER" and len(tok.value) == 3
                    and tok.value.isdigit() and text[prev.end_pos:tok.start_pos] == " "
                    and re.fullmatch(r"\d{1,3}( \d{3})*", text[prev.start_pos:prev.end_pos])):
                out[-1] = Token("NUMBER", text[prev.start_pos:tok.end_pos].replace(" ", ""), start_pos=prev.start_pos,
                                line=1, column=prev.column, end_line=1, end_column=tok.end_column, end_pos=tok.end_pos)
                continue
            out.append(tok)
        return out

    def _retype(self, tokens: list[Token]) -> None:
        """Context the regex cannot see: one-letter units and stray words where a unit belongs."""
        for i in range(1, len(tokens)):
            tok = tokens[i]
            if tok.type != "WORD" or tokens[i - 1].type != "NUMBER" or tokens[i - 1].end_pos is None:
                continue
            word = tok.value.lower()
            if word in self.unit_words:
                tokens[i] = Token("UNIT", tok.value, start_pos=tok.start_pos, line=1, column=tok.column,
                                  end_line=1, end_column=tok.end_column, end_pos=tok.end_pos)
                continue
            following = tokens[i + 1].type if i + 1 < len(tokens) else "$END"
            if following == "OTHER" and tokens[i + 1].value not in ".;":
                continue
            if following in _CLOSERS and word not in _NOT_UNIT and len(word) > 1:
                tokens[i] = Token("BADUNIT", tok.value, start_pos=tok.start_pos, line=1, column=tok.column,
                                  end_line=1, end_column=tok.end_column, end_pos=tok.end_pos)

    def phrase(self, token: Token) -> Phrase | None:
        if token.type == "UNIT" and token.value.lower() in self.unit_words:
            return Phrase("UNIT", (self.unit_words[token.value.lower()],))
        if token.type == "CATEGORY":
            key = self.vocabulary.key_of(token.value)
            return Phrase("CATEGORY", (key,)) if key is not None else None
        return self.table.get(phrase_key(token.value))


@lru_cache(maxsize=8)
def lexer_for(registry: Registry) -> Lexer:
    return Lexer(registry, parser())
