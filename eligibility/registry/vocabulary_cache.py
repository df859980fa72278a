"""The packaged registry and its vocabulary automaton, kept on disk between runs.

Loading ~2,600 vocabulary entries into pydantic models and building an automaton
over ~60,000 phrases takes seconds; unpickling both takes tens of milliseconds,
which keeps `eligibility compile` start-up short.  Only the packaged registry is
cached (a user's --registry files make a registry that is built each run).  The
file name is a digest of everything the objects depend on: the packaged data
files' bytes, the package's code and the versions of the libraries it renders
with (eligibility.core.cache.package_sources), pyahocorasick's and the ICD-10-CM
package's versions and this format number: any change means a new file, never a
stale one.  The files live in the user's own cache directory
(ELIGIBILITY_CACHE_DIR; ELIGIBILITY_NO_CACHE=1 turns caching off).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from importlib import resources
from importlib.metadata import PackageNotFoundError, version

from eligibility.core.cache import cache_directory, package_sources
from eligibility.registry.files import PACKAGED_FILES

_FORMAT = 1
_DIGEST: str | None = None


def _digest() -> str:
    global _DIGEST
    if _DIGEST is None:
        digest = hashlib.sha256(f"vocabulary/{_FORMAT}".encode())
        for name in PACKAGED_FILES:
            resource = resources.files("eligibility").joinpath("data", name)
            data = resource.read_bytes() if resource.is_file() else b""
            digest.update(f"\0{name}\0{len(data)}\0".encode() + data)
        for package in ("simple-icd-10-cm", "pyahocorasick"):
            try:
                digest.update(version(package).encode())
            except PackageNotFoundError:
                pass
        digest.update(package_sources().encode())
        _DIGEST = digest.hexdigest()[:24]
    return _DIGEST


def _path(kind: str):
    directory = cache_directory()
    return directory / f"{kind}-{_digest()}.pickle" if directory else None


def _load(kind: str):
    path = _path(kind)
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
        return None      # absent or unreadable: rebuilt


def _save(kind: str, value) -> None:
    path = _path(kind)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{kind}-", suffix=".pickle")
        with os.fdopen(handle, "wb") as out:
            pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        for old in path.parent.glob(f"{kind}-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass            # an unwritable cache directory only costs speed


def cached_registry(build):
    """The packaged registry: from the cache, else `build()` (then saved)."""
    registry = _load("registry")
    if registry is None:
        registry = build()
        _save("registry", registry)
    return registry


def cached_vocabulary(registry, cls, packaged: bool):
    """The vocabulary of `registry`; from the cache when it is the packaged registry."""
    if not packaged:
        return cls(registry)
    automaton = _load("automaton")
    if automaton is None:
        vocab = cls(registry)
        _save("automaton", vocab.automaton)
        return vocab
    return cls(registry, automaton=automaton)
