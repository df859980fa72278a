"""Score compiled criteria against gold numeric comparisons (shared/corpus/README.md).

Atoms come from the compiled tree: a `compare` is one atom, a `range` two
(`>=`/`>` low, `<=`/`<` high); under an odd number of `not` the operator flips
(`>` <-> `<=`, `>=` <-> `<`).  Values are canonical.  A predicted atom matches a
gold atom with the same concept, operator and ULN-ness whose value agrees within
0.5 % (relative).  Restatements (`HbA1c 7.0 % (53 mmol/mol)`) count once:
duplicate predicted atoms are merged before matching.  Precision, recall and F1
are micro-averaged over all criteria.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable


ULN_UNIT = "{ULN}"
TOLERANCE = 0.005
_FLIP = {">": "<=", "<=": ">", ">=": "<", "<": ">=", "==": "!=", "!=": "=="}


@dataclass(frozen=True)
class Atom:
    concept: str
    op: str
    value: float
    uln: bool = False

    @classmethod
    def from_gold(cls, row: list) -> "Atom":
        return cls(row[0], row[1], float(row[2]), len(row) > 3 and str(row[3]).upper() == "ULN")

    def matches(self, other: "Atom") -> bool:
        if (self.concept, self.op, self.uln) != (other.concept, other.op, other.uln):
            return False
        scale = max(abs(self.value), abs(other.value))
        return abs(self.value - other.value) <= TOLERANCE * scale


def extract_atoms(tree) -> list[Atom]:
    """Every numeric comparison a compiled tree states, operators flipped under odd negation."""
    atoms: list[Atom] = []

    def visit(node, negated: bool) -> None:
        kind = node.kind
        if kind == "not":
            visit(node.child, not negated)
        elif kind in ("all", "any"):
            for child in node.children:
                visit(child, negated)
        elif kind == "compare":
            _add(node.concept, node.op, node.canonical_value, node.canonical_unit, negated)
        elif kind == "range":
            if node.canonical_low is not None:
                _add(node.concept, ">=" if node.low_inclusive else ">", node.canonical_low, node.canonical_unit, negated)
            if node.canonical_high is not None:
                _add(node.concept, "<=" if node.high_inclusive else "<", node.canonical_high, node.canonical_unit, negated)

    def _add(concept, op, value, unit, negated) -> None:
        atoms.append(Atom(concept, _FLIP[op] if negated else op, float(value), unit == ULN_UNIT))

    visit(tree, False)
    unique: list[Atom] = []
    for atom in atoms:          # a restated bound counts once
        if not any(atom.matches(seen) for seen in unique):
            unique.append(atom)
    return unique


@dataclass
class CaseResult:
    id: str
    text: str
    gold: list[Atom]
    predicted: list[Atom]
    tp: int
    fp: list[Atom]
    fn: list[Atom]


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def errors(self) -> list[CaseResult]:
        return [c for c in self.cases if c.fp or c.fn]

    def summary(self) -> str:
        return (f"P={self.precision:.4f} R={self.recall:.4f} F1={self.f1:.4f} "
                f"(tp={self.tp} fp={self.fp} fn={self.fn}, {len(self.cases)} criteria)")


def match(gold: list[Atom], predicted: list[Atom]) -> tuple[int, list[Atom], list[Atom]]:
    """One-to-one matching: (true positives, unmatched predicted, unmatched gold)."""
    remaining = list(gold)
    false_pos: list[Atom] = []
    tp = 0
    for atom in predicted:
        hit = next((g for g in remaining if atom.matches(g)), None)
        if hit is None:
            false_pos.append(atom)
        else:
            remaining.remove(hit)
            tp += 1
    return tp, false_pos, remaining


def read_cases(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def score_cases(cases: Iterable[dict], compile_fn: Callable | None = None, *, registry=None) -> Score:
    """Score `{"id", "section", "text", "atoms"}` records with compile_fn(text, section=...) -> CompiledText.

    `registry` (a `Registry`, e.g. the default one extended by a pack) is what the default
    compile function compiles with; None is the packaged registry."""
    if compile_fn is None:
        from functools import partial
        from eligibility.compile.compiler import compile_criterion
        compile_fn = partial(compile_criterion, registry=registry)
    score = Score()
    for case in cases:
        compiled = compile_fn(case["text"], section=case.get("section", "inclusion"))
        gold = [Atom.from_gold(a) for a in case.get("atoms", [])]
        predicted = extract_atoms(compiled.tree)
        tp, fp, fn = match(gold, predicted)
        score.tp += tp
        score.fp += len(fp)
        score.fn += len(fn)
        score.cases.append(CaseResult(case.get("id", ""), case["text"], gold, predicted, tp, fp, fn))
    return score


def score_file(path: str | Path, compile_fn: Callable | None = None, *, registry=None) -> Score:
    return score_cases(read_cases(path), compile_fn, registry=registry)


