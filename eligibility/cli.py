"""Command line: a thin layer over the public API.

Exit codes: 0 ran, 1 bad input (one line naming file, line and problem),
2 usage.  Heavy modules are imported inside each command so `--help` and
`compile` start fast.
"""
from __future__ import annotations

import sys
from datetime import date

import click

from eligibility.core.errors import EligibilityError


def _fail(error: EligibilityError) -> None:
    click.echo(str(error), err=True)
    sys.exit(1)


def _parse_date(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _parse_lookback(_ctx, _param, value: str) -> int:
    text = value.strip().lower()
    scale = {"d": 1, "w": 7, "m": 30, "y": 365}.get(text[-1:], None)
    digits = text[:-1] if scale else text
    if not digits.isdigit():
        raise click.BadParameter(f"{value!r}: expected days such as 365 or 180d, 26w, 6m, 1y")
    return int(digits) * (scale or 1)


registry_option = click.option(
    "--registry", "registry_files", multiple=True, type=click.Path(dir_okay=False),
    help="Extra registry TOML file(s) extending the packaged concepts, units and codes.",
)
as_of_option = click.option(
    "--as-of", callback=_parse_date, default=None, metavar="YYYY-MM-DD",
    help="Date at which ages, durations and latest values are taken (default: today).",
)
lookback_option = click.option(
    "--lookback", callback=_parse_lookback, default="365d", show_default=True,
    help="How far back an observation may be to count (e.g. 180d, 6m, 1y).",
)
input_format_option = click.option(
    "--input-format", type=click.Choice(["auto", "wide", "synthea", "omop", "fhir"]), default="auto",
    show_default=True, help="Patient data format (auto-detected from the path by default).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eligibility")
def main() -> None:
    """Compile clinical-trial eligibility criteria and screen patients against them."""


@main.command("compile")
@click.argument("trials", metavar="TRIAL [PATHS]...", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--report", is_flag=True,
              help="Compile every trial under the PATHS (files, folders, CSV with an eligibility_criteria column) "
                   "and print a coverage summary instead of the trees.")
@click.option("--report-format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Worker processes for --report (default: CPUs).")
@click.option("--top", type=click.IntRange(min=0), default=20, show_default=True,
              help="Manual phrases listed by --report.")
@registry_option
@click.pass_context
def compile_command(ctx, trials: tuple[str, ...], fmt: str, report: bool, report_format: str, jobs: int | None,
                    top: int, registry_files: tuple[str, ...]) -> None:
    """Compile TRIAL (plain text, CT.gov JSON/XML, or compiled JSON) into predicate trees.

    With --report: compile every trial under the PATHS in parallel and summarise the coverage
    (exit 0 when any trial compiled, 1 when none could be read).
    """
    from pathlib import Path

    if report:
        from eligibility import coverage_report

        try:
            result = coverage_report(trials, jobs=jobs, registry_files=registry_files, top=top)
        except EligibilityError as error:
            _fail(error)
        click.echo(result.render(report_format))
        if not result.read:
            click.echo(f"error E-COVERAGE-NONE: no trial could be read ({len(result.failures)} failed)", err=True)
            sys.exit(1)
        return
    if len(trials) > 1:
        raise click.UsageError("compile takes one TRIAL; several paths need --report")
    trial = click.Path(dir_okay=False).convert(trials[0], ctx.command.params[0], ctx)

    from eligibility import compile_trial_with_problems, trial_text

    try:
        result, problems = compile_trial_with_problems(Path(trial), registry_files=registry_files)
    except EligibilityError as error:
        _fail(error)
    click.echo(result.to_json(indent=1) if fmt == "json" else trial_text(result, registry_files=registry_files))
    for warning in result.warnings:   # an assumption, not an error: the exit code stays 0
        click.echo(f"{trial}: warning {warning.code}: {warning.message}", err=True)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(1)


@main.command("screen")
@click.argument("trial", type=click.Path(dir_okay=False))
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Output file (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "parquet"]), default=None,
              help="Output format (default: by the output's extension, .parquet or .jsonl, else csv).")
@click.option("--columns", type=click.Choice(["reasons", "outcomes"]), default="reasons", show_default=True,
              help="reasons: verdict, reasons and every criterion's outcome; outcomes: without the reasons column.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the HTML report of the run (needs -o).")
@click.option("--engine", type=click.Choice(["auto", "duckdb", "python"]), default="auto", show_default=True)
@as_of_option
@lookback_option
@input_format_option
@registry_option
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
def screen_command(trial, data, output, fmt, columns, report_path, engine, as_of, lookback, input_format,
                   registry_files, progress) -> None:
    """Screen patients in DATA against TRIAL; one output row per input patient."""
    from eligibility.screening import OutputOptionError, screen, screen_with_report

    options = dict(output=output, fmt=fmt, columns=columns, engine=engine, as_of=as_of or date.today(),
                   lookback_days=lookback, input_format=input_format, registry_files=registry_files,
                   progress=sys.stderr.isatty() if progress is None else progress)
    try:
        if report_path is None:
            summary, stats = screen(trial, list(data), **options), None
        else:
            summary, stats = screen_with_report(trial, list(data), report_path, **options)
    except OutputOptionError as error:
        raise click.UsageError(error.message) from None
    except EligibilityError as error:
        _fail(error)
    click.echo(summary.render(), err=True)
    if stats is not None:
        click.echo(stats.summary_line(report_path), err=True)


@main.command("report")
@click.argument("results", type=click.Path(dir_okay=False))
@click.option("--trial", required=True, type=click.Path(dir_okay=False),
              help="The trial the results were screened with (as given to `screen`, or its compiled JSON).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write (default: RESULTS with the extension .html).")
@click.option("--details", type=click.Path(dir_okay=False), default=None,
              help="The JSONL of the same run (--format jsonl): full explanations in the patient table.")
@click.option("--patient-cap", type=click.IntRange(min=0), default=5000, show_default=True,
              help="Patients listed in the table; the counts and charts cover every patient.")
@registry_option
def report_command(results, trial, output, details, patient_cap, registry_files) -> None:
    """Write one self-contained HTML page about RESULTS (CSV, JSONL or Parquet from `screen`)."""
    from pathlib import Path

    from eligibility.screening import OutputOptionError, report

    output = output or str(Path(results).with_suffix(".html"))
    try:
        stats = report(trial, results, output, details=details, patient_cap=patient_cap,
                       registry_files=registry_files)
    except OutputOptionError as error:
        raise click.UsageError(error.message) from None
    except EligibilityError as error:
        _fail(error)
    click.echo(stats.summary_line(output), err=True)


@main.command("explain")
@click.argument("trial", type=click.Path(dir_okay=False))
@click.argument("data", nargs=-1, required=True, type=click.Path())
@click.option("--patient", "patient_id", required=True, help="Patient id to explain.")
@as_of_option
@lookback_option
@input_format_option
@registry_option
def explain_command(trial, data, patient_id, as_of, lookback, input_format, registry_files) -> None:
    """Explain, criterion by criterion, how one patient fares against TRIAL."""
    from eligibility.screening import explain

    try:
        text = explain(
            trial, list(data), patient_id, as_of=as_of or date.today(), lookback_days=lookback,
            input_format=input_format, registry_files=registry_files,
        )
    except EligibilityError as error:
        _fail(error)
    click.echo(text)


@main.command("sql")
@click.argument("trial", type=click.Path(dir_okay=False))
@click.option("--dialect", type=click.Choice(["duckdb", "postgres", "spark", "bigquery", "snowflake", "tsql"]), default="duckdb", show_default=True)
@click.option("--schema", "schema", type=click.Choice(["wide", "omop"]), default="wide", show_default=True)
@click.option("--table", default=None, help="Source table for --schema wide (default: patients).")
@as_of_option
@lookback_option
@registry_option
def sql_command(trial, dialect, schema, table, as_of, lookback, registry_files) -> None:
    """Print one SQL query that screens a warehouse table (or OMOP CDM) against TRIAL."""
    from pathlib import Path

    from eligibility import compile_trial
    from eligibility.sql.query import trial_to_sql

    try:
        compiled = compile_trial(Path(trial), registry_files=registry_files)
        click.echo(trial_to_sql(compiled, dialect=dialect, schema=schema, table=table,
                                as_of=as_of or date.today(), lookback_days=lookback))
    except EligibilityError as error:
        _fail(error)


@main.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the compiled-trial document (`compile --format json`)."""
    import json

    from eligibility import trial_schema

    click.echo(json.dumps(trial_schema(), indent=1, ensure_ascii=False))
