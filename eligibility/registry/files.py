"""The packaged registry data files (eligibility/data/), in the order they are read.

A later entry with the same id replaces an earlier one; users' `--registry`
files come after these.  Kept free of imports beyond pathlib: the compiled-trial
cache digests these files on every start-up without loading the registry.

Packs are packaged registry files a user opts into by name (`--registry labs`):
concepts outside DESIGN §4's fixed starting set (eligibility/data/packs/).
"""
from pathlib import Path

PACKAGED_FILES = ("registry.toml", "conditions.toml", "drugs.toml", "procedures.toml")

PACKS_DIR = Path(__file__).resolve().parents[1] / "data" / "packs"


def pack_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PACKS_DIR.glob("*.toml")))


def is_pack_name(name: object) -> bool:
    """A bare word (no folder, no suffix) names a packaged pack rather than a file."""
    text = str(name)
    return bool(text) and "/" not in text and "\\" not in text and "." not in text


def registry_path(name: object) -> Path:
    """The file behind a `--registry` value: a packaged pack for a bare pack name, else the path given."""
    if is_pack_name(name):
        pack = PACKS_DIR / f"{name}.toml"
        if pack.is_file():
            return pack
    return Path(name)  # type: ignore[arg-type]
