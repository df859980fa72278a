"""Many trials compiled in parallel, and their coverage summary as a document, readable text or markdown.

`run_coverage` compiles every record in worker processes (`jobs`); the
results come back in input order, so the summary does not depend on the
number of workers.

`CoverageReport.summary()` is the machine-readable document (schema
`eligibility.coverage/1`); only its `throughput` part depends on timing and on
the number of workers, so two runs over the same records agree on the rest.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from time import perf_counter

from eligibility.compile.coverage import STATUSES, Record, TrialCoverage, find_records, trial_coverage, warm

SCHEMA = "eligibility.coverage/1"
SHOWN = 80   # characters of a phrase shown in text and markdown (the JSON keeps it whole)


# -- many records ---------------------------------------------------------------------------

def run_coverage(paths, jobs: int | None = None, registry_files=(), top: int = 20) -> CoverageReport:
    """Compile every record under `paths` with `jobs` worker processes (default: one per CPU)."""
    start = perf_counter()
    entries, skipped = find_records(paths)
    files = tuple(map(os.fspath, registry_files))
    todo = [e for e in entries if isinstance(e, Record)]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    if todo:
        warm(files)   # here once: forked workers inherit what it loaded
    if workers == 1:
        done = [trial_coverage(r, files) for r in todo]
    else:
        with ProcessPoolExecutor(workers, initializer=warm, initargs=(files,)) as pool:
            futures = [pool.submit(trial_coverage, r, files) for r in todo]
            done = [_result(r, f) for r, f in zip(todo, futures)]
    results = iter(done)
    trials = [next(results) if isinstance(e, Record) else e for e in entries]
    return CoverageReport(trials, skipped=skipped, wall=perf_counter() - start, jobs=workers, top=top)


def _result(record: Record, future) -> TrialCoverage:
    try:
        return future.result()
    except Exception as exc:   # the worker died (killed, out of memory): this record failed, the rest go on
        return TrialCoverage(record.name, error=f"{record.name}: error E-INTERNAL: worker failed: "
                                                f"{type(exc).__name__}: {exc}".splitlines()[0])


@dataclass
class CoverageReport:
    trials: list[TrialCoverage]      # every record, in input order, failures included
    skipped: list[str] = field(default_factory=list)   # what was left out on purpose, one line each
    wall: float = 0.0
    jobs: int = 1
    top: int = 20

    @property
    def read(self) -> list[TrialCoverage]:
        return [t for t in self.trials if t.error is None]

    @property
    def failures(self) -> list[str]:
        return [t.error for t in self.trials if t.error is not None]

    def _sum(self, name: str) -> Counter:
        total: Counter = Counter()
        for t in self.read:
            total.update(getattr(t, name))
        return total

    def summary(self) -> dict:
        read = self.read
        statuses = self._sum("statuses")
        n = sum(statuses[s] for s in STATUSES)
        criteria = {"total": n, **{s: _share(statuses[s], n) for s in STATUSES},
                    "computable": _share(statuses["compiled"] + statuses["partial"], n),
                    "with_manual_part": _share(statuses["with_manual_part"], n)}
        phrases = Counter(p for t in read for p in t.phrases)
        problems = [p for t in read for p in t.problems]
        compile_seconds = sum(t.seconds for t in read)
        has: Counter = Counter()
        labels: dict[tuple[str, str], str] = {}
        for (category, code, label), count in sorted(self._sum("codes").items()):
            has[category, code] += count
            labels.setdefault((category, code), label)   # one code, several wordings: the first in order
        return {
            "schema": SCHEMA,
            "trials": {"records": len(self.trials), "read": len(read), "failed": len(self.failures),
                       "skipped": len(self.skipped)},
            "failures": self.failures,
            "skipped": self.skipped,
            "criteria": criteria,
            "fields": {s: self._sum("fields")[s] for s in STATUSES},
            "problems": {"count": len(problems), "lines": problems},
            "warnings": dict(_ranked(Counter(w for t in read for w in t.warnings))),
            "manual_phrases": {"total": sum(phrases.values()), "distinct": len(phrases),
                               "top": [{"phrase": p, "count": c} for p, c in _ranked(phrases)[:self.top]]},
            "concepts": {
                "numeric": [{"concept": k, "count": c} for k, c in _ranked(self._sum("numeric"))],
                "has": [{"category": k[0], "code": k[1], "label": labels[k], "count": c}
                        for k, c in _ranked(has)],
            },
            "per_trial": [{"name": t.name, "criteria": t.criteria, **{s: t.statuses[s] for s in STATUSES}}
                          for t in read],
            "throughput": {
                "jobs": self.jobs, "wall_seconds": round(self.wall, 3),
                "criteria_per_second": round(n / self.wall, 1) if self.wall else None,
                "compile_seconds": round(compile_seconds, 3),
                "criteria_per_compile_second": round(n / compile_seconds, 1) if compile_seconds else None,
            },
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.summary(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        return _render(self.summary(), False, self.top)

    def to_markdown(self) -> str:
        return _render(self.summary(), True, self.top)

    def render(self, fmt: str = "text") -> str:
        return {"text": self.to_text, "json": self.to_json, "markdown": self.to_markdown}[fmt]()


def _share(count: int, total: int) -> dict:
    return {"count": count, "share": round(count / total, 4) if total else 0.0}


def _ranked(counts: Counter) -> list[tuple]:
    """Most frequent first; ties in key order, so the result does not depend on arrival order."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def _pct(part: dict) -> str:
    return f"{part['count']} ({100 * part['share']:.1f} %)"


def _render(doc: dict, markdown: bool, top: int) -> str:
    t, c, speed = doc["trials"], doc["criteria"], doc["throughput"]
    head = "# Coverage report" if markdown else "Coverage report"
    lines = [head, "",
             f"Trials: {t['read']} read, {t['failed']} failed, of {t['records']} records"
             + (f"; {t['skipped']} skipped on purpose (listed below)" if t["skipped"] else ""),
             f"Criteria: {c['total']} — compiled {_pct(c['compiled'])}, partial {_pct(c['partial'])}, "
             f"manual {_pct(c['manual'])}; computable {_pct(c['computable'])}, "
             f"of which {c['with_manual_part']['count']} hold a manual part",
             "Structured fields (age, sex, not counted above): "
             + (", ".join(f"{n} {s}" for s, n in doc["fields"].items()) if any(doc["fields"].values()) else "none"),
             f"Criterion problems: {doc['problems']['count']}"
             + "".join(f"; warning {k}: {n}" for k, n in doc["warnings"].items()),
             f"Throughput: {c['total']} criteria in {speed['wall_seconds']:.2f} s wall "
             f"({speed['criteria_per_second'] or 0:,.0f} criteria/s, {speed['jobs']} job{'s' if speed['jobs'] != 1 else ''}); "
             f"compile time {speed['compile_seconds']:.2f} s "
             f"({speed['criteria_per_compile_second'] or 0:,.0f} criteria/s per worker)"]
    if markdown:
        lines[2:] = [f"- {line}" for line in lines[2:]]
    phrases, has, top = doc["manual_phrases"], doc["concepts"]["has"], max(top, 1)
    more = f" (top {top} of {len(has)}; --report-format json lists all)" if len(has) > top else ""
    sections = [
        (f"Failures ({len(doc['failures'])})", ["failure"], [[f] for f in doc["failures"]]),
        ("Skipped", ["skipped"], [[f] for f in doc["skipped"]]),
        (f"Most frequent manual phrases (top {len(phrases['top'])} of {phrases['distinct']} distinct, "
         f"{phrases['total']} in all)", ["count", "phrase"], [[p["count"], _cut(p["phrase"])] for p in phrases["top"]]),
        ("Numeric concepts", ["count", "concept"], [[x["count"], x["concept"]] for x in doc["concepts"]["numeric"]]),
        (f"Conditions, medications, procedures and status{more}", ["count", "category", "code", "label"],
         [[x["count"], x["category"], _cut(x["code"]), x["label"]] for x in has[:top]]),
    ]
    for title, header, rows in sections:
        if not rows:
            continue
        lines += ["", f"## {title}" if markdown else f"{title}:"]
        if markdown:
            lines += ["", "| " + " | ".join(header) + " |", "|" + "|".join("---:" if h == "count" else "---"
                                                                       for h in header) + "|"]
            lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
        else:
            lines += ["  " + "  ".join(f"{v:>5}" if isinstance(v, int) else str(v) for v in row) for row in rows]
    return "\n".join(lines)
