"""Trial file formats -> criteria text, structured fields and trial info (DESIGN §2).

Each reader also keeps a map from offsets in the criteria text to offsets in
the file, so a problem found in a criterion can be reported at the file's own
line and column (through JSON string escapes and XML entities too).
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from eligibility.compile.lines import line_bounds
from eligibility.core.errors import TrialInputError, position
from eligibility.core.ir import TrialInfo


@dataclass(frozen=True)
class FieldValue:
    value: str
    offset: int | None = None   # file offset of the value, for error positions


@dataclass(frozen=True)
class TrialSource:
    fmt: str                                   # "text", "ctgov" or "xml"
    info: TrialInfo
    criteria_text: str
    fields: dict[str, FieldValue]              # minimum_age, maximum_age, sex, healthy_volunteers
    file_text: str
    base: int | None = 0                       # criteria offset + base = file offset (text files)
    table: tuple[int, ...] | None = field(default=None, repr=False)  # per-character file offsets

    def file_offset(self, offset: int) -> int | None:
        if self.table is not None:
            return self.table[min(max(offset, 0), len(self.table) - 1)]
        return None if self.base is None else self.base + offset


_TEXT_KEYS = {
    "title": "title", "brief title": "title",
    "org study id": "org_study_id", "nct id": "nct_id", "nct number": "nct_id",
    "minimum age": "minimum_age", "maximum age": "maximum_age",
    "sex": "sex", "gender": "sex",
    "accepts healthy volunteers": "healthy_volunteers", "healthy volunteers": "healthy_volunteers",
}
_HEADER_LINE = re.compile(r"[ \t]*(?P<key>[A-Za-z][A-Za-z ]*?)[ \t]*:[ \t]*(?P<value>.*?)[ \t\r]*$")


def read_text(text: str, source: str | None) -> TrialSource:
    """Plain text: optional `Key: value` header lines, then the criteria text.

    The criteria text is the rest of `text` from the first line that is no
    header line, unchanged (any line ends, tabs): spans index it.
    """
    fields: dict[str, FieldValue] = {}
    pos = 1 if text.startswith("\ufeff") else 0   # a BOM left in by the caller is no header text
    for start, end in line_bounds(text[pos:]):
        line = text[pos + start:pos + end]
        m = _HEADER_LINE.match(line)
        key = _TEXT_KEYS.get(re.sub(r"\s+", " ", m["key"].lower())) if m else None
        if line.strip() and key is None:
            pos += start
            break
        if key is not None:
            fields[key] = FieldValue(m["value"], pos + start + m.start("value"))
    else:
        pos = len(text)
    if not fields:
        pos = 0   # no header: the criteria text is the text as given, a BOM included
    return _build("text", text[pos:], fields, text, source, base=pos)


def _build(fmt, criteria, fields, file_text, source, base=None, table=None) -> TrialSource:
    ids = {k: fields.pop(k).value for k in ("org_study_id", "nct_id") if k in fields and fields[k].value}
    title = fields.pop("title").value if "title" in fields else None
    info = TrialInfo(title=title or None, ids=ids, source=source)
    return TrialSource(fmt, info, criteria, fields, file_text, base, table)


# -- ClinicalTrials.gov API v2 JSON -------------------------------------------------

def parse_json(text: str, source: str | None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _, _, line_text = position(text, exc.pos)
        raise TrialInputError(
            f"invalid JSON: {exc.msg}", code="E-TRIAL-JSON", file=source,
            line=exc.lineno, column=exc.colno, source_line=line_text,
        ) from None


def read_ctgov(text: str, source: str | None, data=None) -> TrialSource:
    data = parse_json(text, source) if data is None else data
    if isinstance(data, dict) and isinstance(data.get("studies"), list) and len(data["studies"]) == 1:
        data = data["studies"][0]   # a search response holding one study
    protocol = data.get("protocolSection") if isinstance(data, dict) else None
    if not isinstance(protocol, dict):
        raise TrialInputError("JSON has no 'protocolSection' (not a ClinicalTrials.gov study record)",
                              code="E-TRIAL-JSON-SHAPE", file=source)
    ident = _dict(protocol.get("identificationModule"))
    elig = _dict(protocol.get("eligibilityModule"))
    criteria = elig.get("eligibilityCriteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise TrialInputError("no eligibilityCriteria in protocolSection.eligibilityModule",
                              code="E-TRIAL-NO-CRITERIA", file=source)
    fields: dict[str, FieldValue] = {}
    for key, name in (("minimumAge", "minimum_age"), ("maximumAge", "maximum_age"), ("sex", "sex"),
                      ("healthyVolunteers", "healthy_volunteers")):
        value = elig.get(key)
        if value is not None:
            value = ("Yes" if value else "No") if isinstance(value, bool) else str(value)
            fields[name] = FieldValue(value, _json_value_offset(text, key))
    org = _dict(ident.get("orgStudyIdInfo")).get("id")
    for name, value in (("org_study_id", org), ("nct_id", ident.get("nctId")),
                        ("title", ident.get("briefTitle") or ident.get("officialTitle"))):
        if isinstance(value, str):
            fields[name] = FieldValue(value)
    return _build("ctgov", criteria, fields, text, source, table=json_string_map(text, "eligibilityCriteria", criteria))


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _json_value_offset(text: str, key: str) -> int | None:
    m = re.search(rf'"{re.escape(key)}"\s*:\s*"?', text)
    return m.end() if m else None


_JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def json_string_map(raw: str, key: str, expected: str) -> tuple[int, ...] | None:
    """File offset of each character of the JSON string value of `key` (plus one for its end)."""
    for m in re.finditer(rf'"{re.escape(key)}"\s*:\s*"', raw):
        table, out, i = [], [], m.end()
        while i < len(raw) and raw[i] != '"':
            table.append(i)
            if raw[i] == "\\" and i + 1 < len(raw):
                code = raw[i + 1]
                if code == "u":
                    char = chr(int(raw[i + 2:i + 6], 16))
                    i += 6
                    if 0xD800 <= ord(char) < 0xDC00 and raw[i:i + 2] == "\\u":   # surrogate pair
                        char = (char + chr(int(raw[i + 2:i + 6], 16))).encode("utf-16", "surrogatepass").decode("utf-16")
                        i += 6
                    out.append(char)
                    continue
                out.append(_JSON_ESCAPES.get(code, code))
                i += 2
                continue
            out.append(raw[i])
            i += 1
        if "".join(out) == expected:
            return tuple(table) + (i,)
    return None


# -- legacy ClinicalTrials.gov XML ---------------------------------------------------

def read_xml(text: str, source: str | None) -> TrialSource:
    try:
        parser = ET.XMLParser(encoding="utf-8")
        root = ET.fromstring(text.encode("utf-8"), parser=parser)
    except ET.ParseError as exc:
        line, column = exc.position
        lines = text.splitlines()
        raise TrialInputError(
            f"invalid XML: {str(exc).split(':')[0]}", code="E-TRIAL-XML", file=source, line=line,
            column=column + 1, source_line=lines[line - 1] if 0 < line <= len(lines) else None,
        ) from None
    block = root.find(".//eligibility/criteria/textblock")
    criteria = "".join(block.itertext()) if block is not None else ""
    if not criteria.strip():
        raise TrialInputError("no <eligibility><criteria><textblock> in the XML record",
                              code="E-TRIAL-NO-CRITERIA", file=source)
    fields: dict[str, FieldValue] = {}
    for tag, name in (("gender", "sex"), ("minimum_age", "minimum_age"), ("maximum_age", "maximum_age"),
                      ("healthy_volunteers", "healthy_volunteers")):
        node = root.find(f".//eligibility/{tag}")
        if node is not None and node.text and node.text.strip():
            m = re.search(rf"<{tag}>\s*", text)
            fields[name] = FieldValue(node.text.strip(), m.end() if m else None)
    for path, name in (("id_info/org_study_id", "org_study_id"), ("id_info/nct_id", "nct_id"),
                       ("brief_title", "title")):
        node = root.find(path)
        if node is not None and node.text and node.text.strip():
            fields[name] = FieldValue(node.text.strip())
    return _build("xml", criteria, fields, text, source, table=_xml_text_map(text, criteria))


_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _xml_text_map(raw: str, expected: str) -> tuple[int, ...] | None:
    """File offset of each character of the criteria textblock (entities, CDATA and CRLF decoded)."""
    m = re.search(r"<criteria\b[^>]*>\s*<textblock\b[^>]*>", raw)
    if not m:
        return None
    table: list[int] = []
    out: list[str] = []
    i = m.end()
    while i < len(raw) and not raw.startswith("</textblock", i):
        if raw.startswith("<![CDATA[", i):
            close = raw.find("]]>", i)
            close = len(raw) if close < 0 else close
            for k in range(i + 9, close):
                table.append(k)
                out.append(raw[k])
            i = close + 3
        elif raw[i] == "&" and (e := re.match(r"&(#x[0-9a-fA-F]+|#\d+|\w+);", raw[i:i + 12])):
            name = e[1]
            table.append(i)
            out.append(chr(int(name[2:], 16)) if name.startswith("#x") else chr(int(name[1:])) if name[0] == "#"
                       else _ENTITIES.get(name, e[0]))
            i += e.end()
        elif raw[i] == "\r":
            table.append(i)
            out.append("\n")
            i += 2 if raw.startswith("\r\n", i) else 1
        else:
            table.append(i)
            out.append(raw[i])
            i += 1
    if "".join(out) != expected:
        return None
    return tuple(table) + (i,)
