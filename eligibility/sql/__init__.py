"""Compiled trial -> one SQL query (sqlglot; DuckDB, PostgreSQL, Spark and more).

`nodes` is the core (expression helpers, the node compiler); `cells` parses
wide-CSV cells in SQL; `wide` and `omop` build the per-patient feature layer
from a wide table or OMOP CDM tables; `reasons` builds the explanation column;
`query` assembles the whole query (`screening_query`, `trial_to_sql`).
Imports `core`, `registry`, `readers` and `evaluate` only.
"""
__all__ = ["cells", "nodes", "omop", "query", "reasons", "wide"]
