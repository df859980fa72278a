"""The result of resolving a unit: an affine map to the concept's canonical unit.

Kept apart from `units` (which computes conversions with pint) so that the
on-disk cache (`convcache`) can rebuild conversions without importing pint.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Conversion:
    """canonical = scale * value + offset; `unit` is the spelling as given, normalized."""

    unit: str
    canonical_unit: str
    scale: float
    offset: float = 0.0
    source: str = "pint"

    def apply(self, value: float) -> float:
        return self.scale * value + self.offset

    def invert(self, canonical: float) -> float:
        return (canonical - self.offset) / self.scale

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0
