"""Screening runs: the Python engine (reference, explains in full) and the DuckDB engine (batch SQL).

- `python_engine.screen_python`: readers -> plan -> rows, streamed.
- `duckdb_engine.screen_duckdb`: wide CSVs through one generated query; `long_views`
  shapes Synthea/OMOP/FHIR-like long tables for it; `query_cache` keeps query text;
  `arrow_output` writes Arrow batches as CSV.

Imports every package below it (core, registry, compile, readers, evaluate, sql).
"""
__all__ = ["arrow_output", "duckdb_engine", "long_views", "python_engine", "query_cache"]
