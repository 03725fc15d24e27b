"""The verdict of a run for people and for CI: `summary.json`, `summary.txt` and `junit.xml`.

JUnit holds one test case per threshold (CodeBuild report groups and most CI systems read it); the text
summary says which thresholds were missed and by how much.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtests.results import AGGREGATED, GroupStats
from loadtests.thresholds import Verdict

SUMMARY_JSON = "summary.json"
SUMMARY_TXT = "summary.txt"
JUNIT_XML = "junit.xml"


def build_summary(
    meta: Mapping[str, Any], groups: Sequence[GroupStats], verdicts: Sequence[Verdict]
) -> dict[str, Any]:
    """Everything the summary files hold: run metadata, per-group statistics, one verdict per threshold."""
    failed = [v for v in verdicts if not v.passed]
    return {
        **meta,
        "passed": not failed,
        "thresholds_total": len(verdicts),
        "thresholds_failed": len(failed),
        "thresholds": [v.as_dict() for v in verdicts],
        "groups": [g.as_dict() for g in groups if g.name != AGGREGATED],
        "aggregated": next((g.as_dict() for g in groups if g.name == AGGREGATED), None),
    }


def render_text(summary: Mapping[str, Any]) -> str:
    """A few lines a person reads first: the outcome, then every missed threshold, then the rest."""
    if summary["passed"]:
        outcome = "PASSED"
    elif summary["thresholds_failed"]:
        outcome = (
            f"FAILED ({summary['thresholds_failed']} of {summary['thresholds_total']} thresholds missed)"
        )
    else:
        outcome = "FAILED (the run itself failed)"
    lines = [
        f"Load test {summary.get('run_id')} against {summary.get('host')} "
        f"(shape {summary.get('shape')}, profile {summary.get('profile')}): {outcome}"
    ]
    agg = summary.get("aggregated")
    if agg:
        lines.append(
            f"  {agg['requests']} requests, {agg['failures']} failures ({agg['failure_ratio']:.2%}), "
            f"{agg['rps']:.2f} req/s, p95 {agg['p95_ms']:.0f} ms"
        )
    if summary.get("problem"):
        lines.append(f"  PROBLEM: {summary['problem']}")
    ordered = sorted(summary["thresholds"], key=lambda v: {"fail": 0, "pass": 1, "no data": 2}[v["status"]])
    for verdict in ordered:
        mark = {"fail": "MISSED", "pass": "ok", "no data": "n/a"}[verdict["status"]]
        lines.append(f"  {mark:<6} {verdict['explanation']}")
    return "\n".join(lines) + "\n"


def render_junit(summary: Mapping[str, Any]) -> bytes:
    """JUnit XML: one suite per run, one test case per threshold (a missed one is a `failure`)."""
    profile = summary.get("profile", "unknown")
    suites = ET.Element(
        "testsuites",
        name="loadtest",
        tests=str(summary["thresholds_total"]),
        failures=str(summary["thresholds_failed"]),
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"loadtest.{profile}",
        tests=str(summary["thresholds_total"]),
        failures=str(summary["thresholds_failed"]),
        errors="1" if summary.get("problem") else "0",
        skipped=str(sum(1 for v in summary["thresholds"] if v["status"] == "no data")),
        time=f"{float(summary.get('duration_s') or 0):.1f}",
        timestamp=str(summary.get("started_at") or ""),
    )
    properties = ET.SubElement(suite, "properties")
    for key in ("run_id", "host", "shape", "profile"):
        ET.SubElement(properties, "property", name=key, value=str(summary.get(key, "")))
    for verdict in summary["thresholds"]:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"loadtest.{profile}.{verdict['group']}",
            name=f"{verdict['metric']} {verdict['op']} {verdict['limit']:g}",
            time="0",
        )
        if verdict["status"] == "fail":
            failure = ET.SubElement(case, "failure", message=verdict["explanation"], type="ThresholdMissed")
            failure.text = verdict["explanation"]
        elif verdict["status"] == "no data":
            ET.SubElement(case, "skipped", message=verdict["explanation"])
    if summary.get("problem"):
        case = ET.SubElement(suite, "testcase", classname=f"loadtest.{profile}", name="run", time="0")
        ET.SubElement(case, "error", message=str(summary["problem"]), type="RunError")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def write(run_dir: Path, summary: Mapping[str, Any]) -> str:
    """Write summary.json, summary.txt and junit.xml into the run folder; return the text summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    text = render_text(summary)
    (run_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (run_dir / SUMMARY_TXT).write_text(text, encoding="utf-8")
    (run_dir / JUNIT_XML).write_bytes(render_junit(summary))
    return text
