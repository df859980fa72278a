"""Unit conversions persisted across processes, so compiling a trial need not start pint.

pint takes ~0.15 s to import and ~0.5 s to build its registry; a compiled trial
needs only a handful of (concept, unit) conversions, each a plain affine map.
They are computed once (by eligibility.registry.units) and kept in a small JSON file in
the user's cache directory, named by a fingerprint of everything a conversion
depends on: the registry's concepts and unit tables, the units module's code
and pint's version.  Any change there means a new file, never a stale answer.

`ELIGIBILITY_CACHE_DIR` chooses the directory; `ELIGIBILITY_NO_CACHE=1` turns
persistence off.  An unwritable directory only costs speed.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from eligibility.core.cache import cache_directory
from eligibility.registry.conversion import Conversion

_FORMAT = 1


def _fingerprint(registry) -> str:
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    digest.update(str(_FORMAT).encode())
    digest.update(registry.model_dump_json(include={"concepts", "units", "canonical_units"}).encode())
    digest.update(Path(__file__).with_name("units.py").read_bytes())
    try:
        digest.update(version("pint").encode())
    except PackageNotFoundError:
        pass
    return digest.hexdigest()[:24]


class ConversionCache:
    def __init__(self, registry) -> None:
        directory = cache_directory()
        self.path = directory / f"conversions-{_fingerprint(registry)}.json" if directory else None
        self.entries: dict[str, list] = self._load()
        self.added: dict[str, list] = {}
        self.objects: dict = {}

    def _load(self) -> dict[str, list]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, concept_id: str, unit: str | None, compute: Callable):
        """The cached conversion (or re-raised UnitError) for (concept, normalised unit)."""
        from eligibility.core.errors import UnitError

        key = f"{concept_id}|{'' if unit is None else unit}"
        done = self.objects.get(key)
        if done is not None:
            return done
        entry = self.entries.get(key)
        if entry is None:
            try:
                conv = compute()
                entry = ["ok", conv.unit, conv.canonical_unit, conv.scale, conv.offset, conv.source]
            except UnitError as exc:
                entry = ["error", exc.code, exc.message]
            self.entries[key] = entry
            if not self.added:
                atexit.register(self.save)
            self.added[key] = entry
        if entry[0] == "error":
            raise UnitError(entry[2], code=entry[1])
        done = self.objects[key] = Conversion(entry[1], entry[2], float(entry[3]), float(entry[4]), entry[5])
        return done

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            merged = {**self._load(), **self.added}
            handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".conversions-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(merged, out)
            os.replace(tmp, self.path)
            self.added = {}
        except OSError:
            pass


_CACHES: dict = {}


def cached_conversion(registry, concept_id: str, unit: str | None, compute: Callable):
    cache = _CACHES.get(registry)
    if cache is None:
        cache = _CACHES[registry] = ConversionCache(registry)
    return cache.get(concept_id, unit, compute)
