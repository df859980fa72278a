"""Generated DuckDB query text persisted across processes, so a repeated run needs neither sqlglot nor query building.

Building the screening query imports sqlglot (~0.07 s) and walks the trial
(~0.1 s); both are start-up cost of every `eligibility screen` run.  The text
depends only on the compiled trial, the file's header and delimiter, the as-of
date, the lookback, the registry and the code that generates it, so it is kept
in the user's cache directory (eligibility.registry.convcache's directory and switches:
`ELIGIBILITY_CACHE_DIR`, `ELIGIBILITY_NO_CACHE=1`) under a fingerprint of all of
those: any change there means a new file, never a stale query.  The data files'
paths are not part of it: the cached text holds a placeholder for the scan.
The trial enters as its JSON text and the registry as a digest (of its files'
bytes, eligibility.compile.cache), so a hit needs neither a Trial nor a Registry.
Each entry carries a checksum of its content (eligibility.core.cache.write_checked,
as the compiled-trial cache): a damaged or edited file is rebuilt, never run.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date

from eligibility.core.cache import package_sources, read_checked, write_checked

_FORMAT = 2      # 2: entries carry a checksum
_KEEP = 64   # cached queries kept (each a few tens of kB)


def fingerprint(trial_json: str, header: list[str], delimiter: str, *, as_of: date, lookback_days: int,
                registry_key: str, variant: str = "") -> str:
    """registry_key: a digest naming the registry's content (eligibility.compile.cache.PreparedTrial)."""
    digest = hashlib.sha256()
    for part in (str(_FORMAT), variant, trial_json, json.dumps(header), delimiter, as_of.isoformat(),
                 str(lookback_days), registry_key, package_sources()):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:32]


def load(key: str) -> tuple[str, list[str]] | None:
    """(query text with the scan placeholder, notes) when cached."""
    data = read_checked("query", key)
    if isinstance(data, dict) and isinstance(data.get("sql"), str) and isinstance(data.get("notes"), list):
        return data["sql"], [str(n) for n in data["notes"]]
    return None


def save(key: str, sql: str, notes: list[str]) -> None:
    write_checked("query", key, {"sql": sql, "notes": notes}, _KEEP)
