"""The concept registry: concepts, synonyms, units, codes and drug classes, loaded from data.

The packaged `data/registry.toml` is the default; users extend it with files of
the same shape (entries with a known id replace ours).  Everything that names a
clinical thing — the grammar's terminals, CSV header matching, code mapping —
reads from here, so adding a concept is a data change, not a code change.
"""
from __future__ import annotations

import re
import tomllib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eligibility.core.errors import RegistryError


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


class Category(BaseModel):
    """A categorical concept: a condition, a status (pregnancy), or a drug class."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    category: Literal["condition", "status", "medication"]
    synonyms: tuple[str, ...] = ()
    snomed: tuple[str, ...] = ()
    icd10: tuple[str, ...] = ()
    omop: tuple[int, ...] = ()
    atc: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    # sexes the category can apply to (empty: any); a patient of another known sex is FALSE
    # unless the data says otherwise (docs/patient-data.md §4)
    sexes: tuple[Literal["female", "male"], ...] = ()


class Ingredient(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    atc: str
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


_SECTIONS = {"condition": "condition", "status": "status", "drug_class": "medication"}


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            index = {item.get("id", item.get("name")): n for n, item in enumerate(merged[key]) if isinstance(item, dict)}
            items = list(merged[key])
            for item in value:
                ident = item.get("id", item.get("name")) if isinstance(item, dict) else None
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


def _read_toml(path: Path | None) -> dict:
    try:
        if path is None:
            text = resources.files("eligibility").joinpath("data/registry.toml").read_text("utf-8")
            source = "registry.toml"
        else:
            text = Path(path).read_text("utf-8")
            source = str(path)
        return tomllib.loads(text)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry file ({exc.strerror})", code="E-REGISTRY-READ") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: invalid TOML: {exc}", code="E-REGISTRY-TOML") from None


def build_registry(*extra_files: Path) -> Registry:
    data = _read_toml(None)
    for path in extra_files:
        data = _merge(data, _read_toml(path))
    try:
        concepts = {c["id"]: Concept(**c) for c in data.get("concept", [])}
        categories = {}
        for section, category in _SECTIONS.items():
            for entry in data.get(section, []):
                categories[entry["id"]] = Category(category=category, **entry)
        ingredients = {i["name"]: Ingredient(**i) for i in data.get("ingredient", [])}
        units = {normalize_phrase(k): v for k, v in data.get("units", {}).items()}
        return Registry(
            concepts=concepts,
            categories=categories,
            ingredients=ingredients,
            units=units,
            canonical_units=data.get("canonical_units", {}),
            omop_units=data.get("omop_units", {}),
            omop_operators=data.get("omop_operators", {}),
            omop_genders=data.get("omop_genders", {}),
            medication_forms=data.get("medication_forms", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"invalid registry entry: {exc}".splitlines()[0], code="E-REGISTRY-ENTRY") from None


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The packaged registry, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_registry()
    return _DEFAULT
