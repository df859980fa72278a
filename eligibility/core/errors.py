"""One error hierarchy with stable codes, for everything a user can get wrong.

Each error carries a code (`E-UNIT`, `E-TRIAL-EMPTY`, ...), the file and the
position when known, and renders as one line plus, when the offending text is
known, a caret line under it.  They subclass ValueError so callers that only
know built-ins can still catch them.
"""
from __future__ import annotations


class EligibilityError(ValueError):
    code = "E-ELIGIBILITY"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
        width: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.file = file
        self.line = line
        self.column = column
        self.source_line = source_line
        self.width = max(1, width)

    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def one_line(self) -> str:
        where = self.location()
        return f"{where + ': ' if where else ''}error {self.code}: {self.message}"

    def caret(self) -> str | None:
        if self.source_line is None or self.column is None:
            return None
        pad = "".join(ch if ch == "\t" else " " for ch in self.source_line[: self.column - 1])
        return f"    {self.source_line}\n    {pad}{'^' * self.width}"

    def __str__(self) -> str:
        caret = self.caret()
        return self.one_line() + (f"\n{caret}" if caret else "")


class RegistryError(EligibilityError):
    code = "E-REGISTRY"


class UnitError(EligibilityError):
    code = "E-UNIT"


class TrialInputError(EligibilityError):
    """The trial file cannot be read, is empty, or has no criteria."""

    code = "E-TRIAL"


class CriterionError(EligibilityError):
    """Something in one criterion's text; other criteria still compile."""

    code = "E-CRITERION"


class DataInputError(EligibilityError):
    """Patient data that cannot be read at all (a bad cell is not an error: it is a reason)."""

    code = "E-DATA"


def position(text: str, offset: int) -> tuple[int, int, str]:
    """1-based line and column of `offset` in `text`, and that line's text."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    if line_end == -1:
        line_end = len(text)
    line_no = text.count("\n", 0, offset) + 1
    return line_no, offset - line_start + 1, text[line_start:line_end]
