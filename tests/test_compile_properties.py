"""Properties of compile_criterion on arbitrary text (hypothesis).

- it never raises, whatever the text (weird unicode, Markdown escapes, numbers, concept words);
- every span lies inside [start, end) of the criterion; children lie inside their parents;
  leaf spans and unparsed spans do not overlap each other;
- every non-space character (list punctuation `,;.:!?` aside) is covered by a node span or an
  unparsed span: nothing is dropped silently;
- the tree survives a JSON round trip unchanged.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from eligibility.compile.compiler import COMPILER_ERROR, compile_criterion
from eligibility.core.ir import Tree, walk

TREE = TypeAdapter(Tree)
SEPARATORS = set(",;.:!?")

WORDS = [
    "HbA1c", "BMI", "age", "aged", "Age:", "years", "months", "of age", "or older", "≥", "≤", ">=", "=>", "=<", "<", ">",
    "＞", "≧", "～", "\\>=", "\\<", "\\-", "between", "and", "or", "and/or", "to", "-", "–", "(", ")", "[", "]", ",", ";",
    "7.0%", "7,0", "150,000/µL", "53 mmol/mol", "kg/m2", "kg/m²", "x ULN", "× 10⁹/L", "mg/dL", "U/kg/day", "units",
    "no", "not", "without", "excluded", "with or without", "for at least 3 months", "within 6 months", "history of",
    "type 2 diabetes", "T2DM", "insulin dose", "eGFR", "ALT", "AST", "160/100 mmHg", "blood pressure", "pregnant",
    "metformin", "DPP-4 inhibitor", "furlongs", "inclusive", "exclusive", "Male or female", "18", "75", "0.5", ".5",
    "1.0", "12", "2.5", "times the upper limit of normal", "diagnosed", "before screening", "ﬁ", "㎏", "µ", "μ", "\u200b",
    "\t", "\n", "e\u0301", "🙂", "\\", "\\\\", "%", "％", "(58-91 mmol/mol)", "days", "weeks", "per", "week",
]

criterion_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join),
    st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)), max_size=12).map("".join),
)


def _check(source: str, start: int, end: int, section: str) -> None:
    result = compile_criterion(source, start, end, section=section)
    assert result.status in ("compiled", "partial", "manual")
    assert all(COMPILER_ERROR not in n.reason for n in walk(result.tree) if n.kind == "manual"), result.tree
    nodes = list(walk(result.tree))
    for node in nodes:
        a, b = node.span
        assert start <= a <= b <= end, (node.kind, node.span, start, end)
        for child in getattr(node, "children", ()) or ((node.child,) if node.kind == "not" else ()):
            assert a <= child.span[0] <= child.span[1] <= b, (node.kind, node.span, child.span)
    leaves = [n.span for n in nodes if n.kind in ("compare", "range", "has", "manual")]
    pieces = sorted(leaves + list(result.unparsed))
    for (a1, b1), (a2, b2) in zip(pieces, pieces[1:]):
        assert b1 <= a2, ("overlap", pieces)
    for a, b in result.unparsed:
        assert start <= a < b <= end
    for problem in result.problems:
        assert start <= problem.span[0] <= problem.span[1] <= end
    covered = [n.span for n in nodes] + list(result.unparsed)
    for k in range(start, end):
        ch = source[k]
        if ch.isspace() or ch in SEPARATORS:
            continue
        assert any(a <= k < b for a, b in covered), (k, ch, source[start:end], result)
    if result.status == "manual":
        assert result.tree.kind == "manual"
    if result.status == "partial":
        assert result.unparsed
    if result.status == "compiled":
        assert not result.unparsed
    assert TREE.validate_json(TREE.dump_json(result.tree)) == result.tree


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(criterion_text, st.sampled_from(["inclusion", "exclusion"]))
def test_whole_text(text, section):
    _check(text, 0, len(text), section)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=10), criterion_text, st.text(max_size=10), st.sampled_from(["inclusion", "exclusion"]))
def test_criterion_inside_a_longer_text(prefix, text, suffix, section):
    source = prefix + text + suffix
    _check(source, len(prefix), len(prefix) + len(text), section)


def test_empty_and_blank_criteria():
    for text in ("", "   ", "\n\t", ";", "."):
        _check(text, 0, len(text), "inclusion")
