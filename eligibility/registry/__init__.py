"""What the compiler, readers and evaluators know: concepts, units, codes (data files under eligibility/data/).

- `concepts`: loading the registry (`default_registry`, `build_registry`, `Registry`, `normalize_phrase`).
- `units`: unit spellings and pint conversions, resolved once per (concept, unit).
- `conversion`: the `Conversion` result (an affine map) and `convcache`, its on-disk cache.

Imports only `eligibility.core`.
"""
__all__ = ["concepts", "conversion", "convcache", "units"]
