"""Per-run facts that are not about one patient, gathered by every reader for the summary."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ReadStats:
    rows: int = 0
    unknown_codes: Counter = field(default_factory=Counter)   # e.g. "LOINC 8302-2" -> rows skipped
    notes: list[str] = field(default_factory=list)            # file-level notes for the summary
