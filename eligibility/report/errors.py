"""The one error the report raises for input it cannot use.

It mirrors the shape of the project's EligibilityError (code, file, line,
column, one-line rendering) without importing it, so that the report package
stays independent of the package layout while that moves; the CLI can catch it
as a ValueError today and the error hierarchy can adopt it later unchanged.
"""
from __future__ import annotations


class ReportInputError(ValueError):
    """A results, details or trial document the report cannot read, with where and why."""

    code = "E-REPORT"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.file = file
        self.line = line
        self.column = column

    def location(self) -> str:
        return ":".join(str(p) for p in (self.file, self.line, self.column) if p is not None)

    def one_line(self) -> str:
        where = self.location()
        return f"{where + ': ' if where else ''}error {self.code}: {self.message}"

    def __str__(self) -> str:
        return self.one_line()
