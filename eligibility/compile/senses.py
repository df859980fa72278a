"""Ambiguous abbreviations (`MS`, `PD`, `AS`): the sense the trial's own words name, or none.

A trial that writes "multiple sclerosis" anywhere and "MS" in a criterion means
multiple sclerosis; one that names no sense, or several, leaves the
abbreviation to a reviewer (it stays text, never a guess).
"""
from __future__ import annotations

from functools import lru_cache

from eligibility.registry.concepts import Registry
from eligibility.registry.vocabulary import AMBIGUOUS, Vocabulary


def resolve_ambiguous(registry: Registry, vocab: Vocabulary, key: str, trial_text: str) -> str | None:
    senses = registry.ambiguous.get(key[len(AMBIGUOUS):], ())
    named = _named(vocab, trial_text)
    # a sense counts as named by its full words, not by the abbreviation itself
    found = [s for s in senses if s in named]
    return found[0] if len(found) == 1 else None


@lru_cache(maxsize=8)
def _named(vocab: Vocabulary, trial_text: str) -> frozenset[str]:
    """The entries a whole trial names (once per trial: its criteria share the text)."""
    return frozenset(m.key for m in vocab.find(trial_text))
