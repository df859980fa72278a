"""eligibility: compile clinical-trial eligibility criteria into predicate trees and screen patients.

    import datetime as dt, eligibility
    trial = eligibility.compile_trial("trial.txt")     # a path, the criteria text, or a CT.gov dict
    r = eligibility.evaluate(trial, {"patient_id": "P1", "age": 54, "hba1c": "58 mmol/mol"},
                             as_of=dt.date(2025, 1, 1))
    r.verdict, r.outcomes["I5"].outcome, r.outcomes["I5"].explanation

This module is the public face (docs/api.md); every other module is internal.
Importing it loads nothing heavy: the names below are resolved on first use,
so the command line starts fast.
"""
from __future__ import annotations

from eligibility.core.errors import (
    CriterionError,
    DataInputError,
    EligibilityError,
    RegistryError,
    TrialInputError,
    UnitError,
)

# `evaluate` names both the public function and the evaluator subpackage.  Importing a subpackage
# binds its name on this package, which would replace the function the first time the evaluator
# loads; so the subpackage (whose __init__ imports nothing) is imported here, once, and its binding
# dropped.  `eligibility.evaluate` is then the function; `eligibility.evaluate.plan` and the other
# modules stay importable by their full names.
import eligibility.evaluate  # noqa: E402,F401  (bound here only to be unbound)

del globals()["evaluate"]

TYPE_CHECKING = False   # typing.TYPE_CHECKING without importing typing (16 ms): type checkers read it alike
if TYPE_CHECKING:
    from typing import Any

    from eligibility.api import (
        compile_trial, compile_trial_with_problems, coverage_report, evaluate, load_trial, screen, trial_schema,
    )
    from eligibility.core.ir import Criterion, Trial
    from eligibility.core.patient import Patient
    from eligibility.results import CriterionResult, PatientResult, Screening

__all__ = [
    "compile_trial",
    "compile_trial_with_problems",
    "load_trial",
    "trial_schema",
    "trial_text",
    "evaluate",
    "screen",
    "coverage_report",
    "Trial",
    "Criterion",
    "Patient",
    "PatientResult",
    "CriterionResult",
    "Screening",
    "EligibilityError",
    "TrialInputError",
    "CriterionError",
    "DataInputError",
    "RegistryError",
    "UnitError",
    "__version__",
]

# name -> module that defines it, imported when the name is first asked for
_LAZY = {
    "compile_trial": "eligibility.api",
    "compile_trial_with_problems": "eligibility.api",
    "load_trial": "eligibility.api",
    "trial_schema": "eligibility.api",
    "trial_text": "eligibility.api",
    "evaluate": "eligibility.api",
    "screen": "eligibility.api",
    "coverage_report": "eligibility.api",
    "Trial": "eligibility.core.ir",
    "Criterion": "eligibility.core.ir",
    "Patient": "eligibility.core.patient",
    "PatientResult": "eligibility.results",
    "CriterionResult": "eligibility.results",
    "Screening": "eligibility.results",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value: Any = version("eligibility")
        except PackageNotFoundError:
            value = "0+unknown"
    elif name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'eligibility' has no attribute {name!r}")
    globals()[name] = value   # resolved once: later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
