"""The HTML report in a real browser: Debian's chromium, driven headless by playwright.

The inputs are made by the CLI itself (compile, screen) for the demo patients
and for the Synthea sample; the expected numbers are counted here from the
results CSV with the rules of DESIGN §7 and docs/patient-data.md (a fail rules
a patient out at that step; death by the as-of date rules them out first),
then read back from the page's DOM.  Playwright starts /usr/bin/chromium via
`executable_path`: no browser is downloaded.  Screenshots go to tests/artifacts/
(and the demo's to docs/report-screenshot.png).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shared_paths import SHARED

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_SHOT = ROOT / "docs" / "report-screenshot.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="browser test skipped: /usr/bin/chromium is missing (apt-get install chromium; .ci/run does)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="browser test skipped: playwright is not installed")

CASES = {
    # name: trial, patient data, screen options, also write the JSONL for the explanations
    "demo": (ROOT / "trials" / "ucmsc_t2dm.ctgov.json", ROOT / "patients" / "demo_ucmsc.csv",
             ["--as-of", "2026-01-01"], True),
    "synthea": (ROOT / "trials" / "example_t2dm_addon.txt", SHARED / "data" / "synthea",
                ["--as-of", "2022-03-01", "--lookback", "180d"], False),
}


def shown_path(path: object) -> str:
    """Paths under the repository as relative ones: the page names its files as the command was given them."""
    if isinstance(path, Path) and path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    return str(path)


def cli(*args: object, stdout=None) -> None:
    done = subprocess.run([sys.executable, "-m", "eligibility", *map(shown_path, args)], cwd=ROOT,
                          stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module", params=sorted(CASES))
def report(request, tmp_path_factory):
    """(case name, compiled trial, results rows, JSONL rows or None, path of the rendered page)."""
    name = request.param
    trial_file, data, options, with_details = CASES[name]
    work = tmp_path_factory.mktemp(f"report-{name}")
    trial_json = work / "trial.json"
    with trial_json.open("w", encoding="utf-8") as handle:
        cli("compile", trial_file, "--format", "json", stdout=handle)
    cli("screen", trial_file, data, "-o", work / "results.csv", *options)
    page_args = [work / "results.csv", "--trial", trial_json, "-o", work / "report.html"]
    details = None
    if with_details:
        cli("screen", trial_file, data, "-o", work / "results.jsonl", "--format", "jsonl", *options)
        page_args += ["--details", work / "results.jsonl"]
        details = [json.loads(line) for line in (work / "results.jsonl").open(encoding="utf-8")]
    done = subprocess.run([sys.executable, "-m", "eligibility.report", *map(str, page_args)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((work / "results.csv").open(encoding="utf-8", newline="")))
    trial = json.loads(trial_json.read_text("utf-8"))
    return name, trial, rows, details, work / "report.html"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        # Chromium refuses to run as root inside its sandbox; CI containers run as root.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield launched
        launched.close()


def deceased(row: dict) -> bool:
    return any(entry.startswith("deceased") for entry in row["reasons"].split("; "))


def expected_funnel(ids: list[str], rows: list[dict]) -> dict[str, dict[str, int]]:
    steps = {cid: Counter() for cid in ids}
    died = sum(deceased(r) for r in rows)
    for row in rows:
        still_in = not deceased(row)
        for cid in ids:
            if not still_in:
                break
            steps[cid]["entering"] += 1
            steps[cid][row[cid]] += 1
            still_in = row[cid] != "fail"
    funnel = {"screened": {"remaining": len(rows)}}
    if died:
        funnel["deceased"] = {"entering": len(rows), "failed": died, "remaining": len(rows) - died}
    for cid, c in steps.items():
        funnel[cid] = {"entering": c["entering"], "failed": c["fail"], "unknown": c["unknown"],
                       "review": c["review"], "passed": c["pass"], "remaining": c["entering"] - c["fail"]}
    return funnel


def open_page(browser, path: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    return page, errors


def visible_patients(page) -> list[str]:
    return page.eval_on_selector_all("#patient-table > tbody.patient",
                                     "groups => groups.filter(g => !g.hidden).map(g => g.dataset.id)")


def test_funnel_in_the_page_equals_the_counts_of_the_results_csv(browser, report):
    name, trial, rows, _, path = report
    ids = [c["id"] for c in trial["criteria"]]
    page, errors = open_page(browser, path)
    shown = {}
    for step in page.query_selector_all("#funnel-table tr[data-step]"):
        cells = {td.get_attribute("data-count"): td.inner_text().replace(",", "")
                 for td in step.query_selector_all("td[data-count]")}
        shown[step.get_attribute("data-step")] = cells
    want = expected_funnel(ids, rows)
    assert list(shown) == list(want), "funnel steps are the criteria in trial order"
    for step, counts in want.items():
        for field, value in counts.items():
            assert shown[step][field] == str(value), (name, step, field)
    verdicts = Counter(r["verdict"] for r in rows)
    for verdict in ("eligible", "needs_review", "ineligible"):
        tile = page.inner_text(f'.tile[data-verdict="{verdict}"] dd')
        assert tile.split()[0].replace(",", "") == str(verdicts[verdict]), (name, verdict)
    last = want[ids[-1]]["remaining"]
    assert last == verdicts["eligible"] + verdicts["needs_review"]
    assert not errors


def test_every_criterion_appears_with_its_text(browser, report):
    _, trial, _, _, path = report
    page, _ = open_page(browser, path)
    for criterion in trial["criteria"]:
        article = page.locator(f'article[data-criterion="{criterion["id"]}"]')
        assert article.count() == 1, criterion["id"]
        # The text exactly as in the trial, once the words for screen readers around the marks are left out.
        shown = article.locator(".crit-text").evaluate(
            "p => { const c = p.cloneNode(true); c.querySelectorAll('.sr').forEach(s => s.remove()); "
            "return c.textContent; }")
        assert shown == criterion["text"], criterion["id"]
        assert criterion["status"] in article.locator(".status").inner_text()
    headers = page.eval_on_selector_all("#patient-table thead th", "ths => ths.map(t => t.textContent.trim())")
    assert headers[2:] == [c["id"] for c in trial["criteria"]]


def test_filter_search_and_expand_a_patient(browser, report):
    name, trial, rows, details, path = report
    page, errors = open_page(browser, path)
    assert visible_patients(page) == [r["patient_id"] for r in rows]
    page.select_option("#verdict-filter", "ineligible")
    assert visible_patients(page) == [r["patient_id"] for r in rows if r["verdict"] == "ineligible"]
    fragment = rows[-1]["patient_id"][:3].lower()
    page.fill("#id-search", fragment)
    assert visible_patients(page) == [r["patient_id"] for r in rows
                                      if r["verdict"] == "ineligible" and fragment in r["patient_id"].lower()]
    assert page.inner_text("#shown-count").startswith(f"Showing {len(visible_patients(page))} of {len(rows)}")
    page.select_option("#verdict-filter", "")
    page.fill("#id-search", "")
    assert len(visible_patients(page)) == len(rows)

    # Expand, from the keyboard, the first patient with a failed criterion.
    n, row = next((n, r) for n, r in enumerate(rows) if "fail" in [r[c["id"]] for c in trial["criteria"]])
    button = page.locator("#patient-table > tbody.patient").nth(n).locator("button.expand")
    detail = page.locator(f"#{button.get_attribute('aria-controls')}")
    assert button.get_attribute("aria-expanded") == "false" and not detail.is_visible()
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true" and detail.is_visible()
    failed = next(c["id"] for c in trial["criteria"] if row[c["id"]] == "fail")
    text = " ".join(detail.inner_text().split())
    if details is not None:     # the JSONL's full explanation of the failed criterion
        entry = next(c for c in details[n]["criteria"] if c["id"] == failed)
        expected = " · ".join(entry["explanation"])
    else:                       # the CSV's short reason for it
        expected = row["reasons"].split(f"{failed} fail: ", 1)[1].split(f"; ")[0]
    assert f"{failed} fail: {' '.join(expected.split())}" in text, (name, failed)
    page.keyboard.press("Space")
    assert button.get_attribute("aria-expanded") == "false" and not detail.is_visible()
    assert not errors


def test_no_network_request_and_prints_without_controls(browser, report):
    name, _, _, _, path = report
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    others: list[str] = []
    seen: list[str] = []

    def intercept(route):
        if route.request.url == path.as_uri():
            route.continue_()
        else:
            others.append(route.request.url)
            route.abort()

    context.route("**/*", intercept)
    page = context.new_page()
    page.on("request", lambda request: seen.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("networkidle")
    page.locator("#patient-table button.expand").first.click()
    assert others == []
    assert set(seen) <= {path.as_uri()}
    page.emulate_media(media="print")
    assert not page.locator(".controls").is_visible() and page.locator("#funnel-table").is_visible()
    page.emulate_media(media="screen")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
    if name == "demo":   # the top of the page: summary and attrition funnel
        page.screenshot(path=str(DOCS_SHOT), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1150})
    context.close()
