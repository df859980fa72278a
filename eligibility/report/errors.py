"""The one error the report raises for input it cannot use.

A member of the project's error hierarchy (eligibility.core.errors), so the
`eligibility` CLI prints it as one line naming the file and line, and callers
catching EligibilityError or ValueError catch it too.
"""
from __future__ import annotations

from eligibility.core.errors import EligibilityError


class ReportInputError(EligibilityError):
    """A results, details or trial document the report cannot read, with where and why."""

    code = "E-REPORT"
