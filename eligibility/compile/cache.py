"""Compiled trials persisted across processes, so a repeated `screen` needs neither lark nor pydantic.

Compiling a trial builds the grammar's lexer (~0.2 s) and imports pydantic
(~0.1 s) at every start-up.  What screening needs of the result is small: the
compiled trial's JSON, the criterion ids, the title and the compile problems'
one-line texts.  They are kept in the user's cache directory (the directory and
switches of eligibility.registry.convcache: `ELIGIBILITY_CACHE_DIR`,
`ELIGIBILITY_NO_CACHE=1`) under a fingerprint of everything the compile reads:
the trial file's path and bytes, the registry files' bytes (packaged and
`--registry`) and the package's sources, grammar and dependency versions.  Any
change there means another file, never a stale trial.  Each entry carries a
checksum of its content, so a damaged file is recompiled, never trusted.

`PreparedTrial` hands the DuckDB engine what it needs as plain data and builds
the pydantic `Trial` and `Registry` only when something asks for them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from eligibility.core.errors import TrialInputError
from eligibility.registry.files import PACKAGED_FILES, registry_path

if TYPE_CHECKING:
    from eligibility.core.errors import EligibilityError
    from eligibility.core.ir import Trial
    from eligibility.registry.concepts import Registry

_FORMAT = 1
_KEEP = 64   # cached trials kept (each about the size of the trial's JSON)


class PreparedTrial:
    """A compiled trial as screening uses it; `trial` and `registry` are built on first use."""

    def __init__(self, json_text: str, ids: list[str], title: str, problems: list[str], *,
                 registry_files=(), registry_key: str | None = None, trial: Trial | None = None,
                 registry: Registry | None = None) -> None:
        self.json = json_text
        self.ids = ids
        self.title = title
        self.problems = problems            # one-line texts of the compile problems
        self._registry_files = tuple(registry_files)
        self._registry_key = registry_key
        self._trial = trial
        self._registry = registry

    @classmethod
    def of(cls, trial: Trial, registry: Registry, name) -> PreparedTrial:
        """Wrap objects built elsewhere (the registry is then keyed by its content, not its files)."""
        return cls(trial.to_json(), [c.id for c in trial.criteria], title_of(trial, name), [],
                   trial=trial, registry=registry)

    @property
    def trial(self) -> Trial:
        if self._trial is None:
            from eligibility.core.ir import Trial

            self._trial = Trial.from_json(self.json)
        return self._trial

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            from eligibility.registry.concepts import build_registry, default_registry

            files = self._registry_files
            self._registry = build_registry(*map(Path, files)) if files else default_registry()
        return self._registry

    @property
    def registry_key(self) -> str:
        """A digest naming the registry's content (for the query cache)."""
        if self._registry_key is None:
            key = _registry_digest(self._registry_files) if self._registry is None else None
            if key is None:
                key = "model:" + hashlib.sha256(self.registry.model_dump_json().encode("utf-8")).hexdigest()
            self._registry_key = key
        return self._registry_key


def as_prepared(trial: Trial | PreparedTrial, registry: Registry | None, name) -> PreparedTrial:
    if isinstance(trial, PreparedTrial):
        return trial
    if registry is None:
        from eligibility.registry.concepts import default_registry

        registry = default_registry()
    return PreparedTrial.of(trial, registry, name)


def title_of(trial: Trial, path) -> str:
    return trial.trial.title or next(iter(trial.trial.ids.values()), None) or Path(path).name


def load_trial(path: str | Path, registry_files=()) -> tuple[Trial, list[EligibilityError]]:
    """Compile a trial file (always: no cache); a trial without criteria is an error."""
    from eligibility.compile.trials import compile_trial_file

    trial, problems = compile_trial_file(path, registry_files=registry_files)
    if not trial.criteria:
        raise TrialInputError("no criteria to screen against", code="E-TRIAL-EMPTY", file=str(path))
    return trial, list(problems)


def prepare_trial(path: str | Path, registry_files=()) -> PreparedTrial:
    """The trial compiled, from the cache when its inputs are unchanged (else compiled and stored)."""
    registry_key = _registry_digest(registry_files)
    key = _key(path, registry_key)
    cached = _load(key) if key else None
    if cached is not None:
        json_text, ids, title, problems = cached
        return PreparedTrial(json_text, ids, title, problems, registry_files=registry_files,
                             registry_key=registry_key)
    trial, errors = load_trial(path, registry_files)
    prepared = PreparedTrial(trial.to_json(), [c.id for c in trial.criteria], title_of(trial, path),
                             [e.one_line() for e in errors]   # and what the compile assumed (no headings)
                             + [f"{path}: warning {w.code}: {w.message}" for w in trial.warnings],
                             registry_files=registry_files,
                             registry_key=registry_key, trial=trial)
    if key:
        _save(key, prepared)
    return prepared


# -- keys --------------------------------------------------------------------------------

def _registry_digest(registry_files) -> str | None:
    """Digest of the packaged registry's bytes and each extra file's; None when one cannot be read
    (the compile then reports it)."""
    digest = hashlib.sha256(f"registry/{_FORMAT}".encode())
    try:
        data_dir = Path(__file__).resolve().parents[1] / "data"
        # races.toml is read by the compiler apart from the registry (eligibility.registry.races)
        packaged = [data_dir / name for name in (*PACKAGED_FILES, "races.toml") if (data_dir / name).exists()]
        for path in (*packaged, *map(registry_path, registry_files)):
            data = path.read_bytes()
            digest.update(f"\0{len(data)}\0".encode() + data)
    except OSError:
        return None
    return "files:" + digest.hexdigest()


def _key(path, registry_key: str | None) -> str | None:
    from eligibility.core.cache import package_sources

    if registry_key is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None   # the compile reports it
    digest = hashlib.sha256()
    for part in (f"trial/{_FORMAT}".encode(), str(path).encode("utf-8", "surrogateescape"), data,
                 registry_key.encode(), package_sources().encode()):
        digest.update(f"{len(part)}\0".encode() + part)
    return digest.hexdigest()[:32]


# -- storage -----------------------------------------------------------------------------

def _load(key: str) -> tuple[str, list[str], str, list[str]] | None:
    from eligibility.core.cache import read_checked

    body = read_checked("trial", key)
    if body is None:
        return None
    json_text, ids, title, problems = (body.get(k) for k in ("trial", "ids", "title", "problems"))
    if not (isinstance(json_text, str) and isinstance(title, str) and _strings(ids) and ids
            and _strings(problems)):
        return None
    return json_text, ids, title, problems


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _save(key: str, prepared: PreparedTrial) -> None:
    from eligibility.core.cache import write_checked

    write_checked("trial", key, {"trial": prepared.json, "ids": prepared.ids, "title": prepared.title,
                                 "problems": prepared.problems}, _KEEP)
