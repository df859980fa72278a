"""Compiled trial + patient -> outcomes and explanations (three-valued logic, DESIGN §7).

- `plan`: the trial compiled into closures per criterion (`Plan`, `PatientResult`).
- `has`: condition, drug, procedure and status atoms against patient records.
- `ages`: ages against month/day bounds; `logic`: comparisons with rounding allowance.
- `explain`: the wording of explanations; `category_rules`: code and sex rules shared with SQL.
- `summary`: counts of a screening run.

Imports `core`, `registry` and `readers` (the wide-cell vocabulary) only.
"""
__all__ = ["ages", "category_rules", "explain", "has", "logic", "plan", "summary"]
