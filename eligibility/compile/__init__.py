"""Trial text -> compiled trial (the pipeline's first half).

sources (files and CT.gov records -> text) -> lines, segment (criteria with ids
and spans) -> normalize -> grammar (Lark) -> transform, measures (comparisons
with units) -> pieces, assemble (conditions, drugs, negation, manual text) ->
compiler (one criterion) -> trials (the whole trial).  `render` prints trees as
text, `scoring` is the corpus scorer, `cache` keeps compiled trials on disk.

Public: `trials.compile_trial_file`, `trials.compile_trial_text`, `cache.prepare_trial`,
`render.render_trial_text`.  Imports `core` and `registry` only.
"""
__all__ = ["cache", "compiler", "render", "scoring", "trials"]
