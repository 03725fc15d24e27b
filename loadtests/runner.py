"""One bounded Locust run as a subprocess, and the report folder it leaves behind.

The folder `reports/loadtest/<run id>/` holds Locust's HTML report (`report.html`), its CSV files with
full history (`locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`,
`locust_exceptions.csv`), `summary.json`, `summary.txt`, `junit.xml`, `run.json` (how the run was made),
`cleanup.json` and `locust.log`; `reports/loadtest/latest` points at the newest run.

Locust always stops by itself (every shape ends); as a second bound it is sent SIGINT (its clean stop)
at the shape's duration plus a grace period, and its process group SIGKILL 30 s later.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import report, shapes
from loadtests.common.ledger import Ledger
from loadtests.thresholds import Threshold

PROJECT = Path(__file__).resolve().parent.parent
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
CSV_PREFIX = "locust"
EXIT_PASSED, EXIT_THRESHOLDS, EXIT_ERROR = 0, 1, 2
WORKER_WAIT_S = 60  # a master gives up when its workers have not all connected by then


def new_run_id(now: datetime | None = None) -> str:
    """`YYMMDD-HHMMSS-xx` in UTC: sortable, unique enough, short enough for usernames (16 chars)."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%y%m%d-%H%M%S-") + secrets.token_hex(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunPlan:
    """Everything that defines a run; `run.json` records it."""

    host: str
    shape: str = "smoke"
    profile: str = "local"
    target: str = "local"
    run_time_s: float | None = None
    users: int | None = None
    processes: int = 1
    expect_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_port: int | None = None
    run_id: str = field(default_factory=new_run_id)
    reports_dir: Path = PROJECT / "reports" / "loadtest"
    ledger_dir: Path = PROJECT / ".local" / "loadtest-ledgers"
    baseline_dir: Path = PROJECT / "reports" / "loadtest" / "baseline"
    """Where the accepted baselines are (loadtests/regression/baseline.py)."""
    users_file: Path | None = None
    overrides: list[Threshold] = field(default_factory=list)
    grace_s: float = 120.0

    @property
    def run_dir(self) -> Path:
        return self.reports_dir / self.run_id

    @property
    def ledger_path(self) -> Path:
        return self.ledger_dir / f"{self.run_id}.jsonl"

    def shape_plan(self) -> shapes.Shape:
        return shapes.build(self.shape, self.run_time_s, self.users)

    @property
    def timeout_s(self) -> float:
        return self.shape_plan().duration_s + self.grace_s

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            reports_dir=str(self.reports_dir),
            ledger_dir=str(self.ledger_dir),
            baseline_dir=str(self.baseline_dir),
            users_file=str(self.users_file) if self.users_file else None,
            overrides=[t.as_dict() for t in self.overrides],
        )
        return data


def locust_command(plan: RunPlan) -> list[str]:
    """The Locust command line: headless, CSV with full history, HTML report, bounded by the shape."""
    run_dir = plan.run_dir
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        plan.host,
        "--csv",
        str(run_dir / CSV_PREFIX),
        "--csv-full-history",
        "--html",
        str(run_dir / "report.html"),
        "--only-summary",
        "--loglevel",
        "INFO",
    ]
    if plan.processes > 1 or plan.expect_workers:
        port = str(plan.master_port or free_port())
        # Forked workers (--processes) connect to --master-port, so it must name the bound port too.
        command += ["--master-bind-host", plan.master_bind_host, "--master-bind-port", port]
        command += ["--master-port", port, "--expect-workers-max-wait", str(WORKER_WAIT_S)]
    if plan.processes > 1:
        command += ["--processes", str(plan.processes)]
    elif plan.expect_workers:
        command += ["--master", "--expect-workers", str(plan.expect_workers)]
    return command


TUNING = ("LOADTEST_RENDITION_TIMEOUT", "LOADTEST_POLL_INTERVAL", "LOADTEST_IMAGE_EDGE")


def locust_env(plan: RunPlan, base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables the locustfile reads (common/config.py); of the caller's LOADTEST_* variables only
    the tuning ones pass through, so nothing stale reaches the run."""
    source = dict(os.environ if base is None else base)
    env = {k: v for k, v in source.items() if not k.startswith("LOADTEST_") or k in TUNING}
    env.update(
        {
            "LOADTEST_RUN_ID": plan.run_id,
            "LOADTEST_PROFILE": plan.profile,
            "LOADTEST_SHAPE": plan.shape,
            "LOADTEST_TARGET": plan.target,
            "LOADTEST_RUN_DIR": str(plan.run_dir),
            "LOADTEST_LEDGER": str(plan.ledger_path),
            "LOADTEST_THRESHOLDS": json.dumps([t.as_dict() for t in plan.overrides]),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), source.get("PYTHONPATH", "")])),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if plan.run_time_s is not None:
        env["LOADTEST_RUN_TIME"] = str(plan.run_time_s)
    if plan.users is not None:
        env["LOADTEST_PEAK_USERS"] = str(plan.users)
    if plan.users_file is not None:
        env["LOADTEST_USERS"] = str(plan.users_file)
    return env


def _stop_group(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """Stop Locust with its reports written, then make sure nothing of its process group is left.

    SIGINT goes to the master only: in a headless shape run Locust installs its SIGTERM handler only
    after the shape ends, but it treats Ctrl-C as a clean stop (quitting listeners, HTML, CSV) at any
    time, and it stops its own workers. Whatever still runs after `grace` seconds is killed.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Forked workers may outlive the master by a moment; never leave them behind.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def latest_progress(history_csv: Path) -> str | None:
    """A one-line view of the newest Aggregated row of the history CSV (for the console)."""
    try:
        with history_csv.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        cells = line.split(",")
        if len(cells) > 17 and cells[3] == "Aggregated":
            return (
                f"users {cells[1]}, {float(cells[4]):.1f} req/s, {float(cells[5]):.2f} failures/s, "
                f"p95 {cells[11]} ms, {cells[17]} requests so far"
            )
    return None


def run_locust(
    plan: RunPlan, say: Callable[[str], None] = print, progress_every_s: float = 30.0
) -> tuple[int, str | None, list[str]]:
    """Run Locust bounded in time; return (exit code, why it was stopped early or None, command line)."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = plan.run_dir / "locust.log"
    command = locust_command(plan)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter running Locust
            command,
            cwd=PROJECT,
            env=locust_env(plan),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + plan.timeout_s
    next_progress = time.monotonic() + progress_every_s
    stopped: str | None = None
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                say(f"Locust is still running {plan.grace_s:.0f} s after the shape's end: stopping it")
                stopped = f"stopped {plan.grace_s:.0f} s after its planned end"
                _stop_group(process)
                break
            if time.monotonic() >= next_progress:
                line = latest_progress(plan.run_dir / f"{CSV_PREFIX}_stats_history.csv")
                if line:
                    say(line)
                next_progress += progress_every_s
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("Interrupted: stopping Locust (it writes its reports first)")
        stopped = "interrupted"
        _stop_group(process)
    finally:
        if process.poll() is None:
            _stop_group(process)
        else:  # the master is gone; make sure no forked worker is left
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    return int(process.returncode), stopped, command


def update_latest(reports_dir: Path, run_id: str) -> None:
    """Point `reports_dir/latest` at the run (atomically: a new link renamed over the old one)."""
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_id, target_is_directory=True)
    tmp.replace(link)


def ensure_summary(plan: RunPlan, exit_code: int, stopped: str | None) -> dict[str, Any]:
    """The run's summary. A run stopped early fails, whatever its thresholds say (its figures cover only
    part of the shape); when Locust died before writing a summary, a failing one says so."""
    path = plan.run_dir / report.SUMMARY_JSON
    if path.exists():
        summary = dict(json.loads(path.read_text(encoding="utf-8")))
        if stopped:
            summary["passed"] = False
            summary["problem"] = f"the run was {stopped}, before its shape ended: its figures are partial"
            report.write(plan.run_dir, summary)
        return summary
    why = f"was {stopped}" if stopped else f"exited with code {exit_code}"
    summary = {
        "run_id": plan.run_id,
        "host": plan.host,
        "target": plan.target,
        "shape": plan.shape,
        "profile": plan.profile,
        "passed": False,
        "problem": f"Locust {why} before writing a summary; see {plan.run_dir / 'locust.log'}",
        "thresholds_total": 0,
        "thresholds_failed": 0,
        "thresholds": [],
        "groups": [],
        "aggregated": None,
    }
    report.write(plan.run_dir, summary)
    return summary


def start_ledger(plan: RunPlan) -> Ledger:
    ledger = Ledger(plan.ledger_path)
    ledger.run(
        run_id=plan.run_id,
        host=plan.host,
        pid=os.getpid(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return ledger


def write_run_record(plan: RunPlan, record: dict[str, Any]) -> None:
    """`run.json`: the plan and what happened (command, exit code, times, cleanup)."""
    data = {"plan": plan.as_dict(), **record}
    (plan.run_dir / "run.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
