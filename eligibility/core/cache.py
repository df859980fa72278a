"""The on-disk cache shared by the unit conversions, compiled trials and generated queries.

`ELIGIBILITY_CACHE_DIR` chooses the directory; `ELIGIBILITY_NO_CACHE=1` turns
persistence off.  Entries are JSON files named by a fingerprint of everything
they depend on (package_sources: the package's code and the versions of the
libraries that shape the output), so a change means a new file, never a stale
answer.  An unwritable directory only costs speed.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

_SOURCES: str | None = None


def cache_directory() -> Path | None:
    if os.environ.get("ELIGIBILITY_NO_CACHE"):
        return None
    configured = os.environ.get("ELIGIBILITY_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eligibility"


def package_sources() -> str:
    """Digest of the eligibility package (version, every source file) and the versions it renders with (computed once)."""
    global _SOURCES
    if _SOURCES is None:
        root = Path(__file__).resolve().parents[1]
        digest = hashlib.sha256()
        # the query text also depends on sqlglot (rendering), pint (conversion factors) and duckdb, a
        # compiled trial (eligibility.compile.cache) on lark and pydantic; their installed versions are
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


def entry_path(kind: str, key: str) -> Path | None:
    """Where the cache entry `kind-key.json` lives; None when caching is off."""
    directory = cache_directory()
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


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("ascii")).hexdigest()


def read_checked(kind: str, key: str) -> dict | None:
    """The body of an entry written by write_checked, or None when it is absent, damaged or edited
    (its checksum or its key does not match): the caller rebuilds it, never trusts it."""
    data = read_entry(kind, key)
    if not isinstance(data, dict) or not isinstance(data.get("body"), dict):
        return None
    body = data["body"]
    if data.get("checksum") != _checksum(body) or body.get("key") != key:
        return None
    return body


def write_checked(kind: str, key: str, body: dict, keep: int) -> None:
    """Store `body` (which gets the entry's key) with a checksum of its content (read_checked)."""
    body = {"key": key, **body}
    write_entry(kind, key, {"body": body, "checksum": _checksum(body)}, keep)


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
