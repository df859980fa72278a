"""The concept registry: concepts, synonyms, units, codes and drug classes, loaded from data.

The packaged `data/registry.toml` is the default; users extend it with files of
the same shape (entries with a known id replace ours).  Everything that names a
clinical thing — the grammar's terminals, CSV header matching, code mapping —
reads from here, so adding a concept is a data change, not a code change.
"""
from __future__ import annotations

import re
import threading
import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eligibility.core.errors import RegistryError
from eligibility.registry.files import PACKAGED_FILES, is_pack_name, pack_names, registry_path


class Affine(BaseModel):
    model_config = ConfigDict(frozen=True)
    unit: str
    scale: float
    offset: float = 0.0
    source: str = ""


class Concept(BaseModel):
    """A numeric concept (a measurement, or a value derived by the readers)."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    canonical_unit: str
    synonyms: tuple[str, ...] = ()
    plausible: tuple[float, float] | None = None
    loinc: tuple[str, ...] = ()
    omop: tuple[int, ...] = ()
    molar_mass: float | None = None
    affine: tuple[Affine, ...] = ()
    unit_context: Literal["insulin", "enzyme"] | None = None
    uln: float | None = None
    derived_from: str | None = None
    bare_units: tuple[str, ...] = ()   # read a number written without a unit in these when implausible as canonical
    # how to estimate the value when the data reports none: {"method": ..., role: concept id, ...}
    # (eligibility.evaluate.estimates; e.g. creatinine clearance by Cockcroft-Gault)
    estimate: dict[str, str] | None = None


class Category(BaseModel):
    """A categorical concept: a condition, a status (pregnancy), or a drug class."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    category: Literal["condition", "status", "medication", "procedure"]
    synonyms: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    icd10: tuple[str, ...] = ()
    omop: tuple[int, ...] = ()
    atc: tuple[str, ...] = ()
    rxnorm: tuple[str, ...] = ()
    icd10pcs: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    broader: tuple[str, ...] = ()      # ids of broader entries of the same file (kidney -> organ transplant)
    # sexes the category can apply to (empty: any); a patient of another known sex is FALSE
    # unless the data says otherwise (docs/patient-data.md §4)
    sexes: tuple[Literal["female", "male"], ...] = ()


class Ingredient(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    atc: str
    atc_other: tuple[str, ...] = ()
    rxnorm: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()


def normalize_phrase(text: str) -> str:
    """Case- and spacing-insensitive key used for synonyms and headers."""
    text = text.lower().replace("\u2010", "-").replace("\u2011", "-").replace("\u2013", "-")
    return re.sub(r"\s+", " ", text).strip()


class Registry(BaseModel):
    model_config = ConfigDict(frozen=True)
    concepts: dict[str, Concept]
    categories: dict[str, Category]
    ingredients: dict[str, Ingredient]
    # abbreviations with several clinical senses ("ms"): resolved from the trial's own words
    ambiguous: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    units: dict[str, str] = Field(description="unit spelling (lower case) -> pint expression")
    canonical_units: dict[str, str]
    omop_units: dict[int, str] = Field(default_factory=dict, description="OMOP unit_concept_id -> unit spelling")
    omop_operators: dict[int, str] = Field(default_factory=dict, description="OMOP operator_concept_id -> comparator")
    omop_genders: dict[int, str] = Field(default_factory=dict, description="OMOP gender_concept_id -> female/male")
    medication_forms: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="dose-form groups")

    # Registries are compared by identity: caches key on the instance.
    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    # -- lookups -------------------------------------------------------------
    def concept(self, concept_id: str) -> Concept:
        try:
            return self.concepts[concept_id]
        except KeyError:
            raise RegistryError(f"unknown concept {concept_id!r}", code="E-REGISTRY-CONCEPT") from None

    @cached_property
    def concept_synonyms(self) -> dict[str, tuple[str, ...]]:
        """normalized synonym -> concept ids that it may name (a unit then decides)."""
        table: dict[str, list[str]] = {}
        for concept in self.concepts.values():
            for phrase in (concept.id.replace("_", " "), *concept.synonyms):
                table.setdefault(normalize_phrase(phrase), []).append(concept.id)
        return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}

    @cached_property
    def category_synonyms(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for cat in self.categories.values():
            for phrase in (cat.name, *cat.synonyms):
                table.setdefault(normalize_phrase(phrase), cat.id)
        return table

    @cached_property
    def ingredient_by_name(self) -> dict[str, Ingredient]:
        table: dict[str, Ingredient] = {}
        for ing in self.ingredients.values():
            for phrase in (ing.name, *ing.synonyms):
                table[normalize_phrase(phrase)] = ing
        return table

    @cached_property
    def ingredient_by_rxnorm(self) -> dict[str, Ingredient]:
        return {code: ing for ing in self.ingredients.values() for code in ing.rxnorm}

    @cached_property
    def concept_by_loinc(self) -> dict[str, str]:
        return {code: c.id for c in self.concepts.values() for code in c.loinc}

    @cached_property
    def concept_by_omop(self) -> dict[int, str]:
        return {code: c.id for c in self.concepts.values() for code in c.omop}

    @cached_property
    def broader(self) -> dict[str, frozenset[str]]:
        """id -> every broader condition/status/procedure entry (transitively).

        Stated (`broader = [...]`) or implied by the code book: an entry all of whose ICD-10-CM codes
        lie under codes of another entry is a kind of it (type 2 diabetes E11 under diabetes
        mellitus E08-E13; breast cancer C50 under malignancy C).
        """
        by_code: dict[str, set[str]] = {}
        for cat in self.categories.values():
            if cat.category != "medication":
                for code in cat.icd10:
                    by_code.setdefault(code.replace(".", "").upper(), set()).add(cat.id)
        direct: dict[str, set[str]] = {}
        for cat in self.categories.values():
            if cat.category == "medication":
                continue
            found = set(cat.broader)
            if cat.icd10:
                covers = None
                for code in cat.icd10:
                    flat = code.replace(".", "").upper()
                    owners = {o for n in range(1, len(flat) + 1) for o in by_code.get(flat[:n], ())}
                    covers = owners if covers is None else covers & owners
                # an entry with the very same codes is a synonym, not a broader entry
                # of the same kind only: a miscarriage (O03) is in the pregnancy chapter, but a
                # pregnancy *status* is about now, not a history of any O-code
                found |= {o for o in covers or () if o != cat.id and self.categories[o].category == cat.category
                          and set(self.categories[o].icd10) != set(cat.icd10)}
            direct[cat.id] = found
        closed: dict[str, frozenset[str]] = {}
        for start in direct:
            seen: set[str] = set()
            todo = list(direct[start])
            while todo:
                nxt = todo.pop()
                if nxt not in seen and nxt != start:
                    seen.add(nxt)
                    todo.extend(direct.get(nxt, ()))
            closed[start] = frozenset(seen)
        return closed

    def drug_class_contains(self, class_id: str, atc_code: str, ingredient: str | None = None) -> bool:
        """Is a drug (by ATC code, or ingredient name) a member of the class?"""
        cls = self.categories[class_id]
        if any(atc_code.upper().startswith(prefix) for prefix in cls.atc):
            return True
        return ingredient is not None and normalize_phrase(ingredient) in cls.members

    def categories_of(self, category: str) -> list[Category]:
        return [c for c in self.categories.values() if c.category == category]

    def unit_spellings(self) -> list[str]:
        """Every unit spelling the grammar should recognise, longest first."""
        return sorted(self.units, key=lambda s: (-len(s), s))


_SECTIONS = {"condition": "condition", "status": "status", "drug_class": "medication", "procedure": "procedure"}


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            index = {_ident(item): n for n, item in enumerate(merged[key]) if isinstance(item, dict)}
            items = list(merged[key])
            for item in value:
                ident = _ident(item) if isinstance(item, dict) else None
                if ident in index:
                    items[index[ident]] = item
                else:
                    items.append(item)
            merged[key] = items
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _ident(item: dict):
    return item.get("id", item.get("name", item.get("text")))


def _read_toml(path: Path | None, packaged: str = "registry.toml") -> tuple[dict, str, str]:
    """(data, source name, text) of one registry file; a packaged file when `path` is None."""
    try:
        if path is None:
            resource = resources.files("eligibility").joinpath("data", packaged)
            if not resource.is_file():
                return {}, packaged, ""
            text, source = resource.read_text("utf-8"), packaged
        else:
            text, source = Path(path).read_text("utf-8"), str(path)
        data = tomllib.loads(text)
    except OSError as exc:
        hint = f"; packaged packs: {', '.join(pack_names())}" if is_pack_name(path) else ""
        raise RegistryError(f"{path}: cannot read registry file ({exc.strerror}{hint})", code="E-REGISTRY-READ",
                            file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = int(where.group(1)) if where else text.count("\n") + 1     # "at end of document"
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise RegistryError(f"invalid TOML: {reason}", code="E-REGISTRY-TOML", file=source, line=line) from None
    for section, items in data.items():
        if section in (*_SECTIONS, "concept", "ingredient", "ambiguous") and isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    item["__source__"] = source     # the line is looked up only for an error message
    _TEXTS[source] = text
    return data, source, text


_TEXTS: dict[str, str] = {}


def _line_of(text: str, item: dict) -> int | None:
    """Line of the entry's id (or name) in its file, for error messages."""
    ident = _ident(item)
    if not isinstance(ident, str):
        return None
    m = re.search(r'^\s*(id|name|text)\s*=\s*"' + re.escape(ident) + '"', text, flags=re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _entry(model, item: dict, **extra):
    fields = {k: v for k, v in item.items() if k != "__source__"}
    try:
        return model(**fields, **extra)
    except (TypeError, ValueError) as exc:
        source = item.get("__source__", "registry")
        line = _line_of(_TEXTS.get(source, ""), item)
        first = str(exc).splitlines()
        detail = f"{first[1].strip()}: {first[2].strip().split(' [type=')[0]}" if len(first) > 2 else \
            (first[0] if first else type(exc).__name__)
        raise RegistryError(f"invalid entry {_ident(item)!r}: {detail}", code="E-REGISTRY-ENTRY",
                            file=source, line=line) from None


def build_registry(*extra_files: Path) -> Registry:
    data: dict = {}
    for name in PACKAGED_FILES:
        data = _merge(data, _read_toml(None, name)[0])
    for path in extra_files:
        data = _merge(data, _read_toml(registry_path(path))[0])
    try:
        concepts = {c["id"]: _entry(Concept, c) for c in data.get("concept", [])}
        categories = {}
        for section, category in _SECTIONS.items():
            for entry in data.get(section, []):
                categories[entry["id"]] = _entry(Category, entry, category=category)
        ingredients = {i["name"]: _entry(Ingredient, i) for i in data.get("ingredient", [])}
        ambiguous = {normalize_phrase(a["text"]): tuple(a["senses"]) for a in data.get("ambiguous", [])}
        units = {normalize_phrase(k): v for k, v in data.get("units", {}).items()}
        for text, senses in ambiguous.items():
            unknown = [s for s in senses if s not in categories]
            if unknown:
                raise RegistryError(f"ambiguous {text!r}: unknown senses {', '.join(unknown)}",
                                    code="E-REGISTRY-ENTRY")
        return Registry(
            concepts=concepts,
            categories=categories,
            ingredients=ingredients,
            ambiguous=ambiguous,
            units=units,
            canonical_units=data.get("canonical_units", {}),
            omop_units=data.get("omop_units", {}),
            omop_operators=data.get("omop_operators", {}),
            omop_genders=data.get("omop_genders", {}),
            medication_forms=data.get("medication_forms", {}),
        )
    except KeyError as exc:
        raise RegistryError(f"invalid registry entry: missing {exc}", code="E-REGISTRY-ENTRY") from None


_DEFAULT: Registry | None = None


_DEFAULT_LOCK = threading.Lock()


def default_registry() -> Registry:
    """The packaged registry, loaded once per process (from the disk cache when it is there)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                from eligibility.registry.vocabulary_cache import cached_registry
                _DEFAULT = cached_registry(build_registry)
    return _DEFAULT


def is_packaged(registry: Registry) -> bool:
    """Is this the packaged registry (no user files)?"""
    return registry is _DEFAULT
