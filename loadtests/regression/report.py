"""The regression verdict for people and CI: the "vs baseline" text, `regression.json`, the JUnit suite.

`regression.json` holds everything the capacity page shows (verdicts, and both runs' windows for the
side-by-side charts), so the page never needs the baseline's files.
"""

# ruff: noqa: S314 - the only XML parsed here is the run's own junit.xml, written by our code

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from loadtests.regression.compare import IMPROVED, NOT_JUDGED, REGRESSED, SAME, Comparison
from loadtests.regression.metrics import OVERALL, THROUGHPUT, RunMetrics

REGRESSION_JSON = "regression.json"
JUNIT_XML = "junit.xml"
SUITE = "loadtest.regression"
CHART_METRICS = ("p95_ms", THROUGHPUT)


def render_text(comparison: Comparison, *, limit: int = 12) -> str:
    """The "vs baseline" section: the outcome, then every regressed and improved metric."""
    lines = [f"vs baseline: {comparison.headline}"]
    if comparison.comparable and comparison.baseline is not None:
        base = comparison.baseline
        lines.append(
            f"  baseline {base.run_id} ({base.started_at}, {base.host}); run-to-run spread from "
            f"{len(comparison.history)} accepted run(s): {', '.join(comparison.history)}"
        )
        for verdict in [*comparison.regressed, *comparison.improved][:limit]:
            mark = "REGRESSED" if verdict.verdict == REGRESSED else "improved"
            lines.append(f"  {mark:<10} {verdict.explain()}")
        shown = len(comparison.regressed) + len(comparison.improved)
        if shown > limit:
            lines.append(f"  ... and {shown - limit} more (regression.json, capacity.html)")
        overall = [v for v in comparison.verdicts if v.scope == OVERALL and v.verdict in (SAME, NOT_JUDGED)]
        for verdict in overall:
            lines.append(f"  {verdict.verdict:<10} {verdict.explain()}")
    return "\n".join(lines) + "\n"


def _windows(run: RunMetrics | None, metric: str) -> list[list[float]]:
    sample = run.get(OVERALL, metric) if run else None
    return [[w.end_s, w.value] for w in sample.windows] if sample else []


def _per_scope(run: RunMetrics | None, metric: str) -> dict[str, float]:
    if run is None:
        return {}
    return {s.scope: s.value for s in run.samples.values() if s.metric == metric and s.scope != OVERALL}


def as_dict(comparison: Comparison) -> dict[str, Any]:
    run, base = comparison.run, comparison.baseline
    counts = {
        name: sum(1 for v in comparison.verdicts if v.verdict == name)
        for name in (REGRESSED, IMPROVED, SAME, NOT_JUDGED)
    }
    return {
        "headline": comparison.headline,
        "passed": comparison.passed,
        "comparable": comparison.comparable,
        "reason": comparison.reason,
        "counts": counts,
        "run": {"run_id": run.run_id, "target": run.target, "profile": run.profile, "shape": run.shape},
        "baseline": None
        if base is None
        else {
            "run_id": base.run_id,
            "started_at": base.started_at,
            "host": base.host,
            "peak_users": base.peak_users,
            "planned_duration_s": base.planned_duration_s,
        },
        "history": comparison.history,
        "verdicts": [v.as_dict() for v in comparison.verdicts],
        "missing": run.missing,
        "charts": {
            "windows": {
                metric: {"baseline": _windows(base, metric), "run": _windows(run, metric)}
                for metric in CHART_METRICS
            },
            "groups": {
                metric: {"baseline": _per_scope(base, metric), "run": _per_scope(run, metric)}
                for metric in ("p95_ms",)
            },
        },
    }


def update_junit(path: Path, comparison: Comparison) -> None:
    """Add (or replace) the regression suite of the run's junit.xml: one failing test case per regressed
    metric; with none, one passing test case that says what was compared (or that nothing could be)."""
    if path.is_file():
        root = ET.parse(path).getroot()
    else:
        root = ET.Element("testsuites", name="loadtest", tests="0", failures="0")
    for old in root.findall(f"testsuite[@name='{SUITE}']"):
        root.remove(old)
    regressed = comparison.regressed
    suite = ET.SubElement(
        root,
        "testsuite",
        name=SUITE,
        tests=str(max(1, len(regressed))),
        failures=str(len(regressed)),
        errors="0",
        skipped="0",
    )
    properties = ET.SubElement(suite, "properties")
    base = comparison.baseline.run_id if comparison.baseline else ""
    for name, value in (("baseline", base), ("history", ",".join(comparison.history))):
        ET.SubElement(properties, "property", name=name, value=value)
    for verdict in regressed:
        case = ET.SubElement(
            suite, "testcase", classname=f"{SUITE}.{verdict.scope}", name=verdict.metric, time="0"
        )
        failure = ET.SubElement(case, "failure", message=verdict.explain(), type="Regressed")
        failure.text = verdict.explain()
    if not regressed:
        case = ET.SubElement(suite, "testcase", classname=SUITE, name="vs baseline", time="0")
        ET.SubElement(case, "system-out").text = comparison.headline
    suites = root.findall("testsuite")
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in suites)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in suites)))
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def write(run_dir: Path, comparison: Comparison) -> dict[str, Any]:
    """regression.json and the JUnit suite, in the run folder; returns what regression.json holds."""
    data = as_dict(comparison)
    (run_dir / REGRESSION_JSON).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    update_junit(run_dir / JUNIT_XML, comparison)
    return data


def read(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / REGRESSION_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
