"""Generated DuckDB query text persisted across processes, so a repeated run needs neither sqlglot nor query building.

Building the screening query imports sqlglot (~0.07 s) and walks the trial
(~0.1 s); both are start-up cost of every `eligibility screen` run.  The text
depends only on the compiled trial, the file's header and delimiter, the as-of
date, the lookback, the registry and the code that generates it, so it is kept
in the user's cache directory (eligibility.convcache's directory and switches:
`ELIGIBILITY_CACHE_DIR`, `ELIGIBILITY_NO_CACHE=1`) under a fingerprint of all of
those: any change there means a new file, never a stale query.  The data files'
paths are not part of it: the cached text holds a placeholder for the scan.
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
        # the query text also depends on sqlglot (rendering), pint (conversion factors) and duckdb;
        # their installed versions are read from the dist-info names (importlib.metadata costs ~10 ms each)
        wanted = ("eligibility-", "sqlglot-", "pint-", "duckdb-")
        for entry in sys.path:
            try:
                names = os.listdir(entry or ".")
            except OSError:
                continue
            digest.update("\0".join(sorted(n for n in names if n.lower().startswith(wanted)
                                             and n.endswith((".dist-info", ".egg-info")))).encode())
        # source files by size and modification time (ns): an edit or a checkout changes them,
        # and stat costs far less than reading every file at each start-up
        sources = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            sources += [os.path.join(folder, f) for f in files if f.endswith(".py")]
        for path in sorted(sources):
            info = os.stat(path)
            digest.update(f"{path[len(str(root)):]}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
        _SOURCES = digest.hexdigest()
    return _SOURCES


def fingerprint(trial_json: str, header: list[str], delimiter: str, *, as_of: date, lookback_days: int,
                registry, variant: str = "") -> str:
    digest = hashlib.sha256()
    for part in (str(_FORMAT), variant, trial_json, json.dumps(header), delimiter, as_of.isoformat(),
                 str(lookback_days), registry.model_dump_json(), _package_sources()):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:32]


def _path(key: str) -> Path | None:
    from ..convcache import _directory

    directory = _directory()
    return directory / f"query-{key}.json" if directory else None


def load(key: str) -> tuple[str, list[str]] | None:
    """(query text with the scan placeholder, notes) when cached."""
    path = _path(key)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        if isinstance(data, dict) and isinstance(data.get("sql"), str) and isinstance(data.get("notes"), list):
            return data["sql"], [str(n) for n in data["notes"]]
    except (OSError, ValueError):
        pass
    return None


def save(key: str, sql: str, notes: list[str]) -> None:
    """Write atomically; an unwritable cache directory only costs speed."""
    path = _path(key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".query-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"sql": sql, "notes": notes}, out)
        os.replace(tmp, path)
        # an as-of date defaulting to today makes a new entry every day: keep the most recent ones
        entries = sorted(path.parent.glob("query-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[_KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
