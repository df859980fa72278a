"""Trial assembly: a trial file -> a compiled `Trial` plus the problems found on the way.

Files that cannot be used at all (missing, empty, undecodable, invalid JSON/XML,
no criteria) raise TrialInputError.  Problems inside one criterion (an unknown
unit, an unreadable age field) are collected as CriterionError with the file's
own line and column, and every other criterion still compiles.

Choices documented here (DESIGN §2-§3 leave them open):
- `age` and `sex` come first, both in the inclusion section, with the empty
  span [0, 0] (they are not in the criteria text).  No age limit at all ->
  no `age` criterion (an unbounded range would only turn missing ages into
  "unknown").  No sex field -> no `sex` criterion; ALL -> `all()` (true).
- An item with sub-items is one criterion whose span covers them; its tree
  combines the sub-items' trees: `all` in inclusion (each is a requirement),
  `any` in exclusion (each one excludes), unless the lead says "at least one
  of / any of / either" (any) or "all of / each of the following / both"
  (all).  A lead that is only a connector ("meets the following criteria:")
  is absorbed into that node; any other lead is kept and must hold too.
  When every part is manual the criterion is one manual node.
See docs/trial-input.md.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from eligibility.core.errors import CriterionError, EligibilityError, TrialInputError, position
from eligibility.core.ir import (
    All, AnyOf, Compare, Criterion, CriterionProblem, Has, Manual, OtherText, Range, Trial, TrialInfo, TrialWarning,
)
from eligibility.registry.concepts import Registry, build_registry, default_registry
from eligibility.compile.segment import Item, Segmentation, segment
from eligibility.compile.sources import TrialSource, json_string_map, parse_json, read_ctgov, read_text, read_xml
from eligibility.registry.units import conversion

SCHEMA = "eligibility.trial/1"
SCHEMA_PREFIX = "eligibility.trial/"
NO_HEADINGS = "W-NO-SECTIONS"


def read_trial_file(path) -> str:
    """A trial file's text as decoded (UTF-8, a leading BOM removed, line ends kept)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise TrialInputError("is a directory, not a trial file", code="E-TRIAL-READ", file=name) from None
    except OSError as exc:
        raise TrialInputError(f"cannot read trial file: {exc.strerror or exc}", code="E-TRIAL-READ", file=name) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TrialInputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", code="E-TRIAL-ENCODING",
                              file=name, line=line, column=column) from None


def compile_trial_file(path, registry_files=(), registry: Registry | None = None
                       ) -> tuple[Trial, list[EligibilityError]]:
    text = read_trial_file(path)
    if registry is None:
        registry = build_registry(*map(Path, registry_files)) if registry_files else default_registry()
    return compile_trial_text(text, "auto", str(path), registry)


def compile_ctgov_record(data, registry: Registry | None = None, source_name: str | None = None
                         ) -> tuple[Trial, list[EligibilityError]]:
    """A ClinicalTrials.gov API v2 study already parsed (a dict).

    There is no file: a problem's line and column count in the
    `eligibilityCriteria` string itself, which the spans index too.
    """
    src = read_ctgov("", source_name, data)
    src = replace(src, file_text=src.criteria_text, base=0, table=None)
    return _assemble(src, registry or default_registry())


def detect_format(text: str) -> str:
    head = text.lstrip()[:1]
    return "json" if head in "{[" and head else "xml" if head == "<" else "text"


def compile_trial_text(text: str, fmt: str = "auto", source_name: str | None = None,
                       registry: Registry | None = None) -> tuple[Trial, list[EligibilityError]]:
    """Compile a trial given as text; fmt is auto, text, ctgov, xml or compiled."""
    if not text.strip():
        raise TrialInputError("trial file is empty", code="E-TRIAL-EMPTY", file=source_name)
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt in ("json", "compiled"):
        data = parse_json(text, source_name)
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            return _load_compiled(text, source_name)
        _check_schema(data, source_name)
        if fmt == "compiled":
            raise TrialInputError(f"JSON has no \"schema\": \"{SCHEMA}\"", code="E-TRIAL-JSON-SHAPE", file=source_name)
        src = read_ctgov(text, source_name, data)
    elif fmt == "ctgov":
        src = read_ctgov(text, source_name)
    elif fmt == "xml":
        src = read_xml(text, source_name)
    elif fmt == "text":
        src = read_text(text, source_name)
    else:
        raise ValueError(f"unknown trial format {fmt!r}")
    return _assemble(src, registry or default_registry())


def _assemble(src: TrialSource, registry: Registry) -> tuple[Trial, list[EligibilityError]]:
    from eligibility.compile.compiler import compile_criterion   # the grammar loads on first use

    seg = segment(src.criteria_text, source=src.info.source)
    if not seg.items:
        raise TrialInputError("no criteria found under the section headings", code="E-TRIAL-NO-CRITERIA",
                              file=src.info.source)
    problems: list[EligibilityError] = []
    criteria = [c for c in _structured(src, problems)]
    for item in seg.items:
        status, tree, unparsed, found = _compile_item(src.criteria_text, item, compile_criterion, registry)
        criteria.append(Criterion(
            id=item.id, section=item.section, text=src.criteria_text[item.start:item.end], span=item.span,
            status=status, unparsed=tuple(unparsed), tree=tree, problems=tuple(found),
        ))
        problems.extend(_located(src, _owner(item, p.span).id, p) for p in found)
    return Trial(trial=src.info, criteria_text=src.criteria_text, criteria=tuple(criteria),
                 other_text=_other_text(src.criteria_text, seg), warnings=_warnings(seg)), problems


_BLOCK_KINDS = {"section": "heading", "note": "note", "narrative": "narrative"}


def _other_text(text: str, seg: Segmentation) -> tuple[OtherText, ...]:
    """Headings, notes and narrative sections: text kept out of the criteria, listed so none is lost."""
    return tuple(OtherText(kind=_BLOCK_KINDS[h.kind], section=h.section, text=text[h.start:h.end], span=(h.start, h.end))
                 for h in seg.headings if h.kind in _BLOCK_KINDS)


def _warnings(seg: Segmentation) -> tuple[TrialWarning, ...]:
    if any(h.kind == "section" for h in seg.headings):
        return ()
    # criteria pasted without headings (or a registry that drops them) are still a list of requirements
    return (TrialWarning(code=NO_HEADINGS, message="no 'Inclusion Criteria' or 'Exclusion Criteria' heading: "
                                                   "every item is read as an inclusion criterion"),)


def _check_schema(data, source: str | None) -> None:
    """A compiled-trial document of another schema version is refused by name, not read as a CT.gov record."""
    schema = data.get("schema") if isinstance(data, dict) else None
    if isinstance(schema, str) and schema.startswith(SCHEMA_PREFIX):
        raise TrialInputError(
            f"compiled-trial document of schema {schema!r}; this version of eligibility reads {SCHEMA!r} "
            "(recompile the trial, or upgrade eligibility)", code="E-TRIAL-SCHEMA-VERSION", file=source)


# -- items with sub-items ---------------------------------------------------------------

_ANY_LEAD = re.compile(r"\b(at least (one|1)|any (one )?of|one or more of|either|one of the following)\b", re.I)
_ALL_LEAD = re.compile(r"\b(all (of )?the following|each of the following|both)\b", re.I)
_CONNECTOR = re.compile(r"(following|below|as follows)\b[^.;]*:?\s*$|^\W*[^.;]{0,60}:\s*$", re.I)


def _parts(text: str, item: Item) -> list[tuple[int, int, Item | None]]:
    """The item's own text pieces (lead, text after sub-items) and its sub-items, in order."""
    parts, pos = [], item.start
    for child in item.children:
        begin = child.marker[0] if child.marker else child.start
        parts.append((pos, begin, None))
        parts.append((child.start, child.end, child))
        pos = child.end
    parts.append((pos, item.end, None))
    out = []
    for start, end, child in parts:
        if child is None:
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
            if start == end:
                continue
        out.append((start, end, child))
    return out


def _compile_item(text: str, item: Item, compile_criterion, registry: Registry):
    if not item.children:
        r = compile_criterion(text, item.start, item.end, section=item.section, registry=registry)
        return r.status, r.tree, list(r.unparsed), list(r.problems)
    # Each sub-item is a requirement (inclusion: all must hold) or a reason to
    # exclude (exclusion: any one excludes), unless the lead says otherwise.
    mode = "any" if item.section == "exclusion" else "all"
    own, subs, first = [], [], True      # own text parts (kept leads, trailing notes) and sub-items
    for start, end, child in _parts(text, item):
        if child is not None:
            subs.append(_compile_item(text, child, compile_criterion, registry) + (child.span,))
            first = False
            continue
        r = compile_criterion(text, start, end, section=item.section, registry=registry)
        lead = text[start:end]
        if _ANY_LEAD.search(lead) and first:
            mode = "any"
        elif _ALL_LEAD.search(lead) and first:
            mode = "all"
        if not (first and r.status == "manual" and not r.problems and _CONNECTOR.search(lead)):
            own.append((r.status, r.tree, list(r.unparsed), list(r.problems), (start, end)))
        first = False      # a connector lead only says how the sub-items combine: absorbed
    results = own + subs
    unparsed = [s for res in results for s in res[2]]
    problems = [p for res in results for p in res[3]]
    if all(res[0] == "manual" for res in results):
        reason = "no computable part in the criterion or its sub-items"
        return "manual", Manual(span=item.span, text=text[item.start:item.end], reason=reason), [], problems
    sub_trees = tuple(res[1] for res in subs)
    if not own:
        node = (AnyOf if mode == "any" else All)(span=item.span, children=sub_trees)
    elif mode == "all":
        ordered = sorted(results, key=lambda res: res[4])
        node = All(span=item.span, children=tuple(res[1] for res in ordered))
    else:   # own text must hold, and any one of the sub-items
        inner = AnyOf(span=(subs[0][4][0], subs[-1][4][1]), children=sub_trees)
        node = All(span=item.span, children=tuple(res[1] for res in own) + (inner,))
    # as for one item: manual parts are nodes (they decide by review); only unparsed text makes it partial
    status = "partial" if unparsed else "compiled"
    return status, node, unparsed, problems


def _owner(item: Item, span: tuple[int, int]) -> Item:
    """The innermost (sub-)item holding a span, so a problem names `I3.2`, not `I3`."""
    for child in item.children:
        if child.start <= span[0] and span[1] <= child.end:
            return _owner(child, span)
    return item


def _located(src: TrialSource, crit_id: str, problem: CriterionProblem) -> CriterionError:
    start, end = problem.span
    offset = src.file_offset(start)
    kwargs = {}
    if offset is not None:
        line, column, line_text = position(src.file_text, offset)
        end_offset = src.file_offset(end) if end > start else None
        width = (end_offset - offset) if end_offset is not None and end_offset > offset else 1
        kwargs = dict(line=line, column=column, source_line=line_text,
                      width=min(width, len(line_text) - column + 1))
    return _WindowedError(f"{crit_id}: {problem.message}", code=problem.code, file=src.info.source, **kwargs)


class _WindowedError(CriterionError):
    """A CriterionError whose caret shows only a window of a very long line.

    CT.gov JSON keeps the whole criteria text on one line; the location keeps
    the real column, the caret line shows ~100 characters around it.
    """

    WINDOW = 100

    def caret(self) -> str | None:
        line, column = self.source_line, self.column
        if line is None or column is None or len(line) <= self.WINDOW:
            return super().caret()
        begin = max(0, min(column - 1 - self.WINDOW // 3, len(line) - self.WINDOW))
        shown = ("…" if begin else "") + line[begin:begin + self.WINDOW] + ("…" if begin + self.WINDOW < len(line) else "")
        pad = " " * (column - 1 - begin + (1 if begin else 0))
        width = max(1, min(self.width, self.WINDOW - (column - 1 - begin)))
        return f"    {shown}\n    {pad}{'^' * width}"


# -- structured fields: age and sex ----------------------------------------------------

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
_AGE_UNITS = {"year": "a", "years": "a", "month": "mo", "months": "mo", "week": "wk", "weeks": "wk",
              "day": "d", "days": "d", "hour": "h", "hours": "h"}
_NO_LIMIT = {"", "n/a", "na", "none", "no limit"}


def _structured(src: TrialSource, problems: list[EligibilityError]):
    bounds, texts = {}, []
    for key, label in (("minimum_age", "Minimum Age"), ("maximum_age", "Maximum Age")):
        field = src.fields.get(key)
        if field is None or field.value.strip().lower() in _NO_LIMIT:
            continue
        texts.append(f"{label}: {field.value}")
        m = _AGE.match(field.value)
        unit = _AGE_UNITS.get(m[2].lower()) if m else None
        try:
            if unit is None:
                raise ValueError(f"{label} {field.value!r} is not an age such as '18 Years' or '6 Months'")
            bounds[key] = (float(m[1]), unit, conversion("age", unit).apply(float(m[1])))
        except (ValueError, EligibilityError) as exc:
            problems.append(_field_error(src, field, f"age: {getattr(exc, 'message', exc)}", "E-TRIAL-AGE"))
            bounds[key] = None
    if texts:
        text = "; ".join(texts)
        if None in bounds.values():
            yield _manual("age", text, "the age limits could not be read")
        else:
            yield _age_criterion(text, bounds.get("minimum_age"), bounds.get("maximum_age"), src, problems)
    sex = src.fields.get("sex")
    if sex is not None:
        value = sex.value.strip().lower()
        text = f"Sex: {sex.value}"
        if value in ("all", "both", "any"):
            yield Criterion(id="sex", section="inclusion", text=text, span=(0, 0), status="compiled",
                            tree=All(span=(0, 0), children=()))
        elif value in ("female", "male", "f", "m", "women", "men"):
            label = "female" if value in ("female", "f", "women") else "male"
            tree = Has(span=(0, 0), category="status", code=f"sex_{label}", label=label)
            yield Criterion(id="sex", section="inclusion", text=text, span=(0, 0), status="compiled", tree=tree)
        else:
            problems.append(_field_error(src, sex, f"sex: {sex.value!r} is not ALL, FEMALE or MALE", "E-TRIAL-SEX"))
            yield _manual("sex", text, "the sex field could not be read")


def _age_criterion(text, low, high, src, problems) -> Criterion:
    if low and high and low[2] > high[2]:
        problems.append(_field_error(src, src.fields["minimum_age"],
                                     "age: minimum age is above maximum age", "E-TRIAL-AGE"))
        return _manual("age", text, "minimum age above maximum age")
    if low and high and low[1] != high[1]:
        # "6 Months" to "17 Years": each limit keeps its own unit, since an age is compared in
        # completed units of the unit its bound was written in (docs/patient-data.md "Age")
        tree = All(span=(0, 0), children=tuple(
            Compare(span=(0, 0), concept="age", op=op, value=b[0], unit=b[1], canonical_value=b[2], canonical_unit="a")
            for op, b in ((">=", low), ("<=", high))))
        return Criterion(id="age", section="inclusion", text=text, span=(0, 0), status="compiled", tree=tree)
    unit = (low or high)[1]
    tree = Range(
        span=(0, 0), concept="age", unit=unit, canonical_unit="a",
        low=None if low is None else low[0], high=None if high is None else high[0],
        canonical_low=None if low is None else low[2], canonical_high=None if high is None else high[2],
    )
    return Criterion(id="age", section="inclusion", text=text, span=(0, 0), status="compiled", tree=tree)


def _manual(ident: str, text: str, reason: str) -> Criterion:
    return Criterion(id=ident, section="inclusion", text=text, span=(0, 0), status="manual",
                     tree=Manual(span=(0, 0), text=text, reason=reason))


def _field_error(src: TrialSource, field, message: str, code: str) -> CriterionError:
    if field.offset is None:
        return CriterionError(message, code=code, file=src.info.source)
    line, column, line_text = position(src.file_text, field.offset)
    return CriterionError(message, code=code, file=src.info.source, line=line, column=column,
                          source_line=line_text, width=max(1, len(field.value)))


# -- compiled trials loaded back ---------------------------------------------------------

def _load_compiled(text: str, source: str | None) -> tuple[Trial, list[EligibilityError]]:
    try:
        trial = Trial.from_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise TrialInputError(f"not a valid compiled trial: {where}: {err['msg']}",
                              code="E-TRIAL-COMPILED", file=source) from None
    size = len(trial.criteria_text)
    # without criteria_text (a document written by hand, as DESIGN §3 shows it) spans cannot be checked
    for crit in trial.criteria if size else ():
        if not (0 <= crit.span[0] <= crit.span[1] <= size):
            raise TrialInputError(f"{crit.id}: span {list(crit.span)} lies outside criteria_text ({size} characters)",
                                  code="E-TRIAL-COMPILED", file=source)
    src = TrialSource("compiled", TrialInfo(source=source), trial.criteria_text, {}, text, base=None,
                      table=json_string_map(text, "criteria_text", trial.criteria_text))
    problems = [_located(src, crit.id, p) for crit in trial.criteria for p in crit.problems]
    return trial, problems
