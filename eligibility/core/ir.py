"""The intermediate representation: criteria as trees of frozen pydantic nodes.

Nodes are data only — a `kind` tag, fields, and a `span` ([start, end) offsets
into the trial's criteria text as given).  Behaviour (evaluation, SQL, text
rendering, scoring) lives in the passes that walk them.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Span = tuple[int, int]
Op = Literal["<", "<=", ">", ">=", "==", "!="]


class Duration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: float
    unit: Literal["a", "mo", "wk", "d", "h"]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    span: Span
    # e.g. {"duration_at_least": {"value": 3, "unit": "mo"}}: a condition on
    # how long the node has held, which one current value cannot show.
    qualifiers: dict[str, Duration] = Field(default_factory=dict)


class All(_Node):
    kind: Literal["all"] = "all"
    children: tuple["Tree", ...]


class AnyOf(_Node):
    kind: Literal["any"] = "any"
    children: tuple["Tree", ...]


class Not(_Node):
    kind: Literal["not"] = "not"
    child: "Tree"


class Compare(_Node):
    kind: Literal["compare"] = "compare"
    concept: str
    op: Op
    value: float
    unit: str | None
    canonical_value: float
    canonical_unit: str


class Range(_Node):
    kind: Literal["range"] = "range"
    concept: str
    low: float | None
    high: float | None
    low_inclusive: bool = True
    high_inclusive: bool = True
    unit: str | None
    canonical_low: float | None
    canonical_high: float | None
    canonical_unit: str


class Has(_Node):
    kind: Literal["has"] = "has"
    category: Literal["condition", "medication", "procedure", "status"]
    code: str
    label: str
    within: Duration | None = None
    # the code sets the node matches, by system ("icd10cm", "snomed", "atc", "rxnorm", "omop",
    # "icd10pcs"); in a hierarchical system (ICD-10-CM, ATC) a code stands for everything below it
    codes: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class Manual(_Node):
    kind: Literal["manual"] = "manual"
    text: str
    reason: str


Tree = Annotated[Union[All, AnyOf, Not, Compare, Range, Has, Manual], Field(discriminator="kind")]

All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


class CriterionProblem(BaseModel):
    """Something in the criterion text the compiler had to report (e.g. an unknown unit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    message: str
    span: Span


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    section: Literal["inclusion", "exclusion"]
    text: str
    span: Span
    status: Literal["compiled", "partial", "manual"]
    unparsed: tuple[Span, ...] = ()
    tree: Tree
    problems: tuple[CriterionProblem, ...] = ()


class TrialInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    title: str | None = None
    ids: dict[str, str] = Field(default_factory=dict)
    source: str | None = None


class OtherText(BaseModel):
    """Criteria text that is no criterion: a section heading, a note, a narrative section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["heading", "note", "narrative"]
    section: Literal["inclusion", "exclusion"] | None = None   # the section it stands in
    text: str
    span: Span


class TrialWarning(BaseModel):
    """Something the compiler assumed about the whole trial (e.g. no section headings: all inclusion)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    message: str


class Trial(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    schema_: Literal["eligibility.trial/1"] = Field("eligibility.trial/1", alias="schema")
    trial: TrialInfo
    # The criteria text the spans point into (after extraction from JSON/XML,
    # before any unescaping).  Kept so spans stay checkable after a round trip.
    criteria_text: str = ""
    criteria: tuple[Criterion, ...]
    # Every other stretch of the criteria text, so none is dropped unseen.
    other_text: tuple[OtherText, ...] = ()
    warnings: tuple[TrialWarning, ...] = ()

    # The document's key is "schema" (DESIGN §3), whichever way it is dumped (pydantic's own
    # serialize_by_alias needs pydantic 2.11; this works with every 2.x).
    def model_dump(self, *, by_alias: bool | None = True, **kwargs) -> dict:
        return super().model_dump(by_alias=by_alias, **kwargs)

    def model_dump_json(self, *, by_alias: bool | None = True, **kwargs) -> str:
        return super().model_dump_json(by_alias=by_alias, **kwargs)

    def to_json(self, **kwargs) -> str:
        return self.model_dump_json(**kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Trial":
        return cls.model_validate_json(text)


def walk(node: Tree):
    """Every node of a tree, parents before children."""
    yield node
    if isinstance(node, (All, AnyOf)):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)
