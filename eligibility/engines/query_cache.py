"""Generated DuckDB query text persisted across processes, so a repeated run needs neither sqlglot nor query building.

Building the screening query imports sqlglot (~0.07 s) and walks the trial
(~0.1 s); both are start-up cost of every `eligibility screen` run.  The text
depends only on the compiled trial, the file's header and delimiter, the as-of
date, the lookback, the registry and the code that generates it, so it is kept
in the user's cache directory (eligibility.convcache's directory and switches:
`ELIGIBILITY_CACHE_DIR`, `ELIGIBILITY_NO_CACHE=1`) under a fingerprint of all of
those: any change there means a new file, never a stale query.  The data files'
paths are not part of it: the cached text holds a placeholder for the scan.
The trial enters as its JSON text and the registry as a digest (of its files'
bytes, eligibility.trial_cache), so a hit needs neither a Trial nor a Registry.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

_FORMAT = 1
_KEEP = 64   # cached queries kept (each a few tens of kB)
_SOURCES: str | None = None


def _package_sources() -> str:
    """Digest of the eligibility package (version, every source file) and the versions it renders with (computed once)."""
    global _SOURCES
    if _SOURCES is None:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        # the query text also depends on sqlglot (rendering), pint (conversion factors) and duckdb, a
        # compiled trial (eligibility.trial_cache) on lark and pydantic; their installed versions are
        # read from the dist-info names (importlib.metadata costs ~10 ms each)
        wanted = ("eligibility-", "sqlglot-", "pint-", "duckdb-", "lark-", "pydantic-", "pydantic_core-")
        for entry in sys.path:
            try:
                names = os.listdir(entry or ".")
            except OSError:
                continue
            digest.update("\0".join(sorted(n for n in names if n.lower().startswith(wanted)
                                             and n.endswith((".dist-info", ".egg-info")))).encode())
        # source files and the grammar (in the package when installed, beside it in a checkout) by
        # size and modification time (ns): an edit or a checkout changes them, and stat costs far
        # less than reading every file at each start-up
        sources = []
        for top in (root, root.parent / "grammars"):
            for folder, dirs, files in os.walk(top):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                sources += [os.path.join(folder, f) for f in files if f.endswith((".py", ".lark"))]
        for path in sorted(sources):
            info = os.stat(path)
            digest.update(f"{path[len(str(root.parent)):]}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        _SOURCES = digest.hexdigest()
    return _SOURCES


def fingerprint(trial_json: str, header: list[str], delimiter: str, *, as_of: date, lookback_days: int,
                registry_key: str, variant: str = "") -> str:
    """registry_key: a digest naming the registry's content (eligibility.trial_cache.PreparedTrial)."""
    digest = hashlib.sha256()
    for part in (str(_FORMAT), variant, trial_json, json.dumps(header), delimiter, as_of.isoformat(),
                 str(lookback_days), registry_key, _package_sources()):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:32]


def entry_path(kind: str, key: str) -> Path | None:
    """Where the cache entry `kind-key.json` lives; None when caching is off."""
    from ..convcache import _directory

    directory = _directory()
    return directory / f"{kind}-{key}.json" if directory else None


def read_entry(kind: str, key: str):
    """The entry's JSON value, or None (absent, unreadable, not JSON: the caller recomputes)."""
    path = entry_path(kind, key)
    if path is None:
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def write_entry(kind: str, key: str, value, keep: int) -> None:
    """Write atomically, keeping the `keep` most recent entries of this kind.

    An unwritable cache directory only costs speed.
    """
    path = entry_path(kind, key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{kind}-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(value, out)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        # inputs that vary (an as-of date defaulting to today, an edited trial) make new entries
        entries = sorted(path.parent.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[keep:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def load(key: str) -> tuple[str, list[str]] | None:
    """(query text with the scan placeholder, notes) when cached."""
    data = read_entry("query", key)
    if isinstance(data, dict) and isinstance(data.get("sql"), str) and isinstance(data.get("notes"), list):
        return data["sql"], [str(n) for n in data["notes"]]
    return None


def save(key: str, sql: str, notes: list[str]) -> None:
    write_entry("query", key, {"sql": sql, "notes": notes}, _KEEP)
