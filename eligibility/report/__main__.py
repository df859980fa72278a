"""`python -m eligibility.report RESULTS --trial TRIAL_JSON -o report.html [--details RESULTS.jsonl]`.

Exit codes as the eligibility CLI: 0 written, 1 bad input (one line naming the
file and line), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import DEFAULT_PATIENT_CAP, ReportInputError, write_report
from .trial_view import check_trial


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eligibility.report",
        description="Write one self-contained HTML report (trial, attrition funnel, patients) "
                    "for the results of `eligibility screen`.")
    parser.add_argument("results", type=Path, help="results CSV or JSONL written by `eligibility screen`")
    parser.add_argument("--trial", type=Path, required=True,
                        help="the compiled trial, from `eligibility compile TRIAL --format json`")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    parser.add_argument("--details", type=Path, default=None,
                        help="the JSONL of the same run (--format jsonl), for full explanations with a CSV")
    parser.add_argument("--patient-cap", type=int, default=DEFAULT_PATIENT_CAP,
                        help=f"rows listed in the patient table (default {DEFAULT_PATIENT_CAP}); counts cover all")
    return parser


def _load_trial(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReportInputError("no such trial file", code="E-REPORT-FILE", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"cannot read the trial: {exc}", code="E-REPORT-FILE", file=str(path)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"not JSON: {exc.msg} (give the output of `eligibility compile TRIAL --format json`)",
                               code="E-REPORT-TRIAL", file=str(path), line=exc.lineno, column=exc.colno) from None
    check_trial(doc, str(path))
    return doc


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.patient_cap < 0:
        _parser().error("--patient-cap must be zero or more")
    try:
        stats = write_report(_load_trial(args.trial), args.results, args.output,
                             details_path=args.details, patient_cap=args.patient_cap)
    except ReportInputError as exc:
        print(exc.one_line(), file=sys.stderr)
        return 1
    print(stats.summary_line(args.output), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
