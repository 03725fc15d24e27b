"""The verdict files: summary.json, summary.txt and junit.xml (one test case per threshold)."""

# ruff: noqa: S314 - the XML parsed here is what our own code just wrote

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from loadtests import report
from loadtests.results import GroupStats
from loadtests.thresholds import Threshold, evaluate

META = {
    "run_id": "r1",
    "host": "http://127.0.0.1:9",
    "shape": "smoke",
    "profile": "local",
    "duration_s": 20.5,
}
GROUPS = [
    GroupStats("/feed/latest", "GET", 100, 1, 10, 40, 60, 12, 90, 5.0),
    GroupStats("Aggregated", "", 100, 1, 10, 40, 60, 12, 90, 5.0),
]
THRESHOLDS = [
    Threshold("Aggregated", "failure_ratio", 0.05),
    Threshold("/feed/latest", "p95_ms", 30),
    Threshold("Aggregated", "min_rps", 10),
    Threshold("time to rendition", "p95_ms", 1000),
]


def summary() -> dict:
    return report.build_summary(META, GROUPS, evaluate(THRESHOLDS, {g.name: g for g in GROUPS}))


def test_summary_counts_missed_thresholds_and_separates_the_aggregated_row() -> None:
    s = summary()
    assert s["passed"] is False
    assert (s["thresholds_total"], s["thresholds_failed"]) == (4, 2)
    assert [g["name"] for g in s["groups"]] == ["/feed/latest"]
    assert s["aggregated"]["failure_ratio"] == 0.01
    assert [v["status"] for v in s["thresholds"]] == ["pass", "fail", "fail", "no data"]
    assert s["run_id"] == "r1" and s["profile"] == "local"


def test_text_summary_lists_missed_thresholds_first_with_their_shortfall() -> None:
    lines = report.render_text(summary()).splitlines()
    assert lines[0].endswith("FAILED (2 of 4 thresholds missed)")
    assert "100 requests, 1 failures (1.00%), 5.00 req/s, p95 40 ms" in lines[1]
    assert lines[2].strip().startswith("MISSED /feed/latest: p95_ms <= 30 ms: observed 40 ms, over by 10 ms")
    assert (
        lines[3]
        .strip()
        .startswith("MISSED Aggregated: min_rps >= 10.00 req/s: observed 5.00 req/s, short by")
    )
    assert lines[4].strip().startswith("ok")
    assert lines[5].strip().startswith("n/a") and "not exercised" in lines[5]


def test_junit_has_one_case_per_threshold_and_a_failure_for_each_missed_one() -> None:
    root = ET.fromstring(report.render_junit(summary()))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "loadtest.local"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "1")
    cases = suite.findall("testcase")
    assert len(cases) == 4
    failed = {f"{c.get('classname')} {c.get('name')}" for c in cases if c.find("failure") is not None}
    assert failed == {"loadtest.local./feed/latest p95_ms <= 30", "loadtest.local.Aggregated min_rps >= 10"}
    failure = next(c for c in cases if c.find("failure") is not None).find("failure")
    assert failure is not None and "over by 10 ms" in str(failure.get("message"))
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["host"] == "http://127.0.0.1:9"


def test_a_run_that_failed_by_itself_is_a_junit_error_and_says_so() -> None:
    broken = {
        **META,
        "passed": False,
        "problem": "Locust exited with code 2",
        "thresholds_total": 0,
        "thresholds_failed": 0,
        "thresholds": [],
        "groups": [],
        "aggregated": None,
    }
    text = report.render_text(broken)
    assert "FAILED (the run itself failed)" in text and "PROBLEM: Locust exited with code 2" in text
    suite = ET.fromstring(report.render_junit(broken)).find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and error.get("message") == "Locust exited with code 2"


def test_write_puts_the_three_files_in_the_run_folder(tmp_path: Path) -> None:
    text = report.write(tmp_path / "run", summary())
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["thresholds_failed"] == 2
    assert (tmp_path / "run" / "summary.txt").read_text() == text
    assert ET.parse(tmp_path / "run" / "junit.xml").getroot().tag == "testsuites"
