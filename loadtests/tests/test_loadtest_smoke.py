"""The load test against a real local stack: the smoke that `make test` requires, and its failure mode.

Locust runs as a subprocess (`python -m loadtests run`), as `make loadtest` runs it; each run is bounded
by the shape, the wrapper's time limit and the subprocess timeout here.
"""

# ruff: noqa: S314 - the XML parsed here is what our own code just wrote

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.background import LocalStack
from loadtests.common.api import API
from loadtests.minutes import read_csv

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2]


def run_loadtest(
    stack: LocalStack, tmp_path: Path, *extra: str, timeout: float = 240
) -> tuple[int, Path, str]:
    """`python -m loadtests run` against the stack; returns (exit code, run folder, console output)."""
    reports = tmp_path / "reports"
    log = tmp_path / "console.log"
    with log.open("wb") as out:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "loadtests",
                "run",
                "--host",
                stack.base_url,
                "--shape",
                "smoke",
                "--profile",
                "local",
                "--reports-dir",
                str(reports),
                "--ledger-dir",
                str(tmp_path / "ledgers"),
                "--baseline-dir",
                str(tmp_path / "baseline"),
                "--grace",
                "60",
                *extra,
            ],
            cwd=PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    return result.returncode, (reports / "latest").resolve(), log.read_text()


def load(run_dir: Path, name: str) -> Any:
    return json.loads((run_dir / name).read_text())


def test_a_smoke_run_with_two_worker_processes_passes_and_leaves_a_full_report(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    code, run_dir, console = run_loadtest(
        local_stack, tmp_path, "--run-time", "20s", "--users", "10", "--processes", "2"
    )
    assert code == 0, console + (run_dir / "locust.log").read_text()[-3000:]
    for name in (
        "report.html",
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "summary.json",
        "summary.txt",
        "junit.xml",
        "run.json",
        "cleanup.json",
        "locust.log",
    ):
        assert (run_dir / name).is_file(), name
    summary = load(run_dir, "summary.json")
    assert summary["passed"] is True and summary["problem"] is None
    assert summary["worker_processes"] == 2
    assert summary["thresholds_total"] >= 15 and summary["thresholds_failed"] == 0
    assert all(v["status"] in ("pass", "no data") and "observed" in v for v in summary["thresholds"])
    groups = {g["name"]: g for g in summary["groups"]}
    # Every persona did its work: anonymous reads, sign-in, private reads, the whole upload flow.
    for name in (
        "/feed/latest",
        "image [public]",
        "/auth/login/",
        "image [private, signed]",
        "S3 upload POST",
        "/images/upload/[id]/confirm",
        "time to rendition",
        "image [rendition]",
    ):
        assert groups[name]["requests"] >= 1, name
    assert summary["aggregated"]["failures"] == 0
    [suite] = ET.parse(run_dir / "junit.xml").getroot().findall("testsuite[@name='loadtest.local']")
    assert len(suite.findall("testcase")) == summary["thresholds_total"]
    # The regression gate ran, and said that a first run has nothing to compare with.
    assert "vs baseline: no comparable baseline: nothing accepted yet for target local" in console
    assert load(run_dir, "regression.json")["passed"] is True and summary["target"] == "local"
    # minutes.csv counts every request once, although two worker processes made them.
    minutes = read_csv(run_dir / "minutes.csv")
    assert sum(r.requests for r in minutes if r.group == "All") == summary["aggregated"]["requests"]
    assert sum(r.requests for r in minutes if r.group == "API") == sum(
        g["requests"] for g in summary["groups"] if g["name"].startswith("/")
    )
    html = (run_dir / "report.html").read_text()
    assert "<title>Locust</title>" in html and "window.templateArgs" in html and "/feed/latest" in html
    history = (run_dir / "locust_stats_history.csv").read_text().splitlines()
    assert len(history) > 20 and ",/feed/latest," in "\n".join(history)  # full history: one row per group
    # The run cleaned up after itself: its images are gone and its ledger is removed.
    cleanup = load(run_dir, "cleanup.json")["run"]
    assert cleanup["ok"] and cleanup["ledger_removed"]
    assert cleanup["images_deleted"] + cleanup["images_already_gone"] >= groups["S3 upload POST"]["requests"]
    feed = requests.get(f"{local_stack.base_url}{API}/feed/latest?limit=100", timeout=10).json()
    assert not [i for i in feed["results"] if i["creator_username"].startswith(f"lt-{summary['run_id']}-")]
    assert "PASSED" in console and str(run_dir / "report.html") in console


def test_an_impossible_threshold_fails_the_run_and_the_summary_says_by_how_much(
    local_stack: LocalStack, tmp_path: Path
) -> None:
    code, run_dir, console = run_loadtest(
        local_stack,
        tmp_path,
        "--run-time",
        "10s",
        "--users",
        "4",
        "--threshold",
        "Aggregated:min_rps=1000000",
    )
    assert code == 1, console
    summary = load(run_dir, "summary.json")
    assert summary["passed"] is False
    missed = {v["label"]: v for v in summary["thresholds"] if v["status"] == "fail"}
    impossible = missed["Aggregated: min_rps >= 1000000.00 req/s"]
    assert impossible["limit"] == 1_000_000 and impossible["margin"] < -999_000
    assert "MISSED Aggregated: min_rps >= 1000000.00 req/s" in console and "short by" in console
    failures = [c for c in ET.parse(run_dir / "junit.xml").iter("testcase") if c.find("failure") is not None]
    assert "loadtest.local.Aggregated" in {c.get("classname") for c in failures}
