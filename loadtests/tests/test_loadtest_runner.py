"""The run wrapper without running Locust: command line, environment, bounds, report folder."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadtests import report, runner
from loadtests.cli import build_parser
from loadtests.thresholds import Threshold


def plan(tmp_path: Path, **changes: object) -> runner.RunPlan:
    base = runner.RunPlan(
        host="http://127.0.0.1:9",
        run_id="r1",
        reports_dir=tmp_path / "reports",
        ledger_dir=tmp_path / "ledgers",
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_run_ids_sort_by_time_and_fit_usernames() -> None:
    run_id = runner.new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert re.fullmatch(r"260102-030405-[0-9a-f]{2}", run_id)


def test_the_locust_command_is_headless_with_csv_history_and_html_in_the_run_folder(tmp_path: Path) -> None:
    command = runner.locust_command(plan(tmp_path))
    assert command[:3] == [sys.executable, "-m", "locust"]
    assert "--headless" in command and "--csv-full-history" in command
    assert command[command.index("--csv") + 1] == str(tmp_path / "reports" / "r1" / "locust")
    assert command[command.index("--html") + 1] == str(tmp_path / "reports" / "r1" / "report.html")
    assert command[command.index("--host") + 1] == "http://127.0.0.1:9"
    assert "--processes" not in command and "--master" not in command


def test_processes_make_a_loopback_master_whose_workers_find_its_port(tmp_path: Path) -> None:
    command = runner.locust_command(plan(tmp_path, processes=2, master_port=45678))
    assert command[command.index("--processes") + 1] == "2"
    assert command[command.index("--master-bind-host") + 1] == "127.0.0.1"
    assert command[command.index("--master-bind-port") + 1] == "45678"
    assert command[command.index("--master-port") + 1] == "45678"
    assert "--expect-workers-max-wait" in command


def test_external_workers_make_a_master_that_waits_for_them(tmp_path: Path) -> None:
    command = runner.locust_command(plan(tmp_path, expect_workers=4, master_bind_host="0.0.0.0"))  # noqa: S104
    assert "--master" in command and command[command.index("--expect-workers") + 1] == "4"


def test_the_environment_carries_the_run_and_drops_stale_loadtest_variables(tmp_path: Path) -> None:
    p = plan(tmp_path, run_time_s=20.0, users=3, overrides=[Threshold("Aggregated", "min_rps", 5)])
    env = runner.locust_env(
        p,
        {
            "PATH": "/bin",
            "LOADTEST_PEAK_USERS": "999",
            "LOADTEST_RUN_DIR": "/old",
            "LOADTEST_POLL_INTERVAL": "2",
        },
    )
    assert env["LOADTEST_RUN_ID"] == "r1" and env["LOADTEST_RUN_DIR"] == str(tmp_path / "reports" / "r1")
    assert env["LOADTEST_PEAK_USERS"] == "3" and env["LOADTEST_RUN_TIME"] == "20.0"
    assert env["LOADTEST_POLL_INTERVAL"] == "2"  # tuning variables pass through
    assert json.loads(env["LOADTEST_THRESHOLDS"]) == [
        {"group": "Aggregated", "metric": "min_rps", "limit": 5}
    ]
    assert env["LOADTEST_LEDGER"] == str(tmp_path / "ledgers" / "r1.jsonl")
    assert env["PATH"] == "/bin"
    assert "LOADTEST_USERS" not in runner.locust_env(plan(tmp_path), {"LOADTEST_USERS": "/old/pool"})


def test_the_time_bound_is_the_shape_plus_the_grace(tmp_path: Path) -> None:
    assert plan(tmp_path, run_time_s=20.0, grace_s=30.0).timeout_s == 50.0
    assert plan(tmp_path, shape="step", grace_s=120.0).timeout_s == 1800 + 120


def test_latest_points_at_the_newest_run(tmp_path: Path) -> None:
    for run_id in ("r1", "r2"):
        (tmp_path / run_id).mkdir()
        runner.update_latest(tmp_path, run_id)
    assert (tmp_path / "latest").resolve() == (tmp_path / "r2").resolve()
    assert (tmp_path / "latest").readlink() == Path("r2")  # relative: the folder can be moved or archived


def test_a_run_that_died_without_a_summary_gets_a_failing_one(tmp_path: Path) -> None:
    p = plan(tmp_path)
    p.run_dir.mkdir(parents=True)
    summary = runner.ensure_summary(p, exit_code=-9, stopped="stopped 120 s after its planned end")
    assert summary["passed"] is False and "was stopped 120 s after its planned end" in summary["problem"]
    assert (p.run_dir / "junit.xml").exists() and (p.run_dir / "summary.txt").exists()


def test_a_run_stopped_early_fails_even_when_its_thresholds_held(tmp_path: Path) -> None:
    p = plan(tmp_path)
    report.write(p.run_dir, report.build_summary({"run_id": "r1"}, [], []))
    assert runner.ensure_summary(p, exit_code=0, stopped=None)["passed"] is True
    summary = runner.ensure_summary(p, exit_code=0, stopped="interrupted")
    assert summary["passed"] is False and "interrupted, before its shape ended" in summary["problem"]
    assert "PROBLEM: the run was interrupted" in (p.run_dir / "summary.txt").read_text()


def test_stopping_kills_the_whole_process_group_quickly() -> None:
    process = subprocess.Popen(
        ["sh", "-c", "trap '' INT TERM; sleep 60 & sleep 60"],  # ignores the polite signals
        start_new_session=True,
    )
    started = time.monotonic()
    runner._stop_group(process, grace=1.0)
    assert process.returncode is not None and time.monotonic() - started < 10


def test_progress_line_reads_the_newest_aggregated_row(tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    header = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count"
    rows = [
        "1,2,,Aggregated,1.5,0.0,5,6,7,8,9,10,11,12,13,14,15,30",
        "2,4,GET,/x,2,0,5,6,7,8,9,10,11,12,13,14,15,9",
        "2,4,,Aggregated,3.25,0.5,5,6,7,8,9,42,11,12,13,14,15,60",
    ]
    history.write_text("\n".join([header, *rows]) + "\n")
    assert (
        runner.latest_progress(history)
        == "users 4, 3.2 req/s, 0.50 failures/s, p95 42 ms, 60 requests so far"
    )
    assert runner.latest_progress(tmp_path / "missing.csv") is None


def test_the_cli_refuses_bad_options_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["run", "--host", "staging.example.com", "--reports-dir", "/nonexistent/x"])
    from loadtests.cli import command_run

    assert command_run(args) == runner.EXIT_ERROR
    assert "must be a URL" in capsys.readouterr().err
    args = parser.parse_args(["run", "--host", "http://127.0.0.1:9", "--threshold", "nonsense"])
    assert command_run(args) == runner.EXIT_ERROR
    assert "GROUP:METRIC=LIMIT" in capsys.readouterr().err


def test_nothing_outside_the_locust_process_imports_gevent() -> None:
    code = (
        "import sys, loadtests.cli, loadtests.runner, loadtests.cleanup, loadtests.report, loadtests.shapes;"
        "import loadtests.thresholds, devstack.background;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust'));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
