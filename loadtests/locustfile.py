"""The Locust entry point: personas, the configured shape, and the thresholds that set the exit code.

Run it through `python -m loadtests run` (which sets the `LOADTEST_*` variables, the report folder and
the bounds); a distributed worker on another machine runs `locust -f loadtests/locustfile.py --worker
--master-host MASTER` with the same variables (loadtests/README.md).

At the end of a run, the master (or the only process) evaluates the profile's thresholds against the
final statistics in a `quitting` listener, writes summary.json / summary.txt / junit.xml into the run
folder and sets the exit code: 0 when every threshold held, 1 when one was missed or the load-test code
itself raised.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests import report, shapes
from loadtests.common.accounts import AccountSource, PoolError, read_pool
from loadtests.common.config import ConfigError, LoadTestConfig
from loadtests.common.images import make_png
from loadtests.common.ledger import Ledger
from loadtests.minutes import MinuteStats
from loadtests.results import by_name, from_locust_entry
from loadtests.thresholds import evaluate, resolve
from loadtests.users import Member, Uploader, Visitor
from loadtests.users.base import ApiUser, RunContext

__all__ = ["ConfiguredShape", "Member", "Uploader", "Visitor"]

log = logging.getLogger("loadtests")

# Ctrl-C (SIGINT) is Locust's clean stop at any time of a headless shape run, and the wrapper stops an
# overdue run with it. A process started in the background by a non-interactive shell inherits SIGINT
# as ignored; take Python's default handler back so that the stop always works.
signal.signal(signal.SIGINT, signal.default_int_handler)

try:
    CONFIG = LoadTestConfig.from_env(os.environ)
    SHAPE = shapes.build(CONFIG.shape, CONFIG.run_time_s, CONFIG.peak_users)
    POOL = read_pool(CONFIG.users_file) if CONFIG.users_file else None
    THRESHOLDS = resolve(CONFIG.profile, CONFIG.threshold_overrides)
except (ConfigError, PoolError, ValueError, TypeError) as error:
    sys.stderr.write(f"loadtests: {error}\n")
    sys.exit(2)

ApiUser.run_context = RunContext(
    config=CONFIG,
    accounts=AccountSource(CONFIG.run_id, POOL),
    ledger=Ledger(CONFIG.ledger_path) if CONFIG.ledger_path else None,
    images=[make_png(CONFIG.image_edge_px, seed=seed) for seed in range(4)],
)


class ConfiguredShape(LoadTestShape):
    """The shape named by LOADTEST_SHAPE; it ends by itself after its duration."""

    def tick(self) -> tuple[int, float] | None:
        return SHAPE.tick(self.get_run_time())


WORKERS = {"count": 0}
MINUTES = MinuteStats()
MINUTES_CSV = "minutes.csv"


@events.request.add_listener
def record_minute(
    request_type: str, name: str, response_time: float, exception: Exception | None = None, **_kwargs: Any
) -> None:
    """Per-minute histograms for the capacity review (loadtests/minutes.py)."""
    MINUTES.add(time.time(), request_type, name, response_time or 0.0, exception is not None)


@events.report_to_master.add_listener
def ship_minutes(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    data["loadtest_minutes"] = MINUTES.drain()


@events.worker_report.add_listener
def merge_minutes(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    MINUTES.merge(data.get("loadtest_minutes") or {})


@events.test_start.add_listener
def count_workers(environment: Environment, **_kwargs: Any) -> None:
    """Remember how many worker processes took part (they have left by the time the run quits)."""
    if isinstance(environment.runner, MasterRunner):
        WORKERS["count"] = environment.runner.worker_count


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _problem(environment: Environment) -> str | None:
    runner = environment.runner
    if runner is None:
        return "the Locust runner never started"
    count = sum(int(e.get("count", 1)) for e in runner.exceptions.values())
    if count:
        return f"{count} unhandled exception(s) in the load-test code (see locust_exceptions.csv)"
    return None


@events.quitting.add_listener
def evaluate_thresholds(environment: Environment, **_kwargs: Any) -> None:
    """Judge the run against its profile, write the verdict files and set the exit code."""
    if isinstance(environment.runner, WorkerRunner):
        return
    stats = environment.stats
    groups = [from_locust_entry(entry) for entry in stats.entries.values()]
    groups.append(from_locust_entry(stats.total))
    verdicts = evaluate(THRESHOLDS, by_name(groups))
    finished = time.time()
    meta = {
        "run_id": CONFIG.run_id,
        "host": environment.host,
        "target": CONFIG.target,
        "shape": SHAPE.name,
        "profile": CONFIG.profile,
        "peak_users": SHAPE.peak_users,
        "planned_duration_s": SHAPE.duration_s,
        "started_at": _iso(stats.start_time),
        "finished_at": _iso(finished),
        "duration_s": round(finished - stats.start_time, 1),
        "started_epoch": round(stats.start_time, 3),
        "finished_epoch": round(finished, 3),
        "worker_processes": WORKERS["count"],
        "problem": _problem(environment),
    }
    summary = report.build_summary(meta, groups, verdicts)
    if meta["problem"]:
        summary["passed"] = False
    if CONFIG.run_dir:
        MINUTES.write_csv(CONFIG.run_dir / MINUTES_CSV)
    text = report.write(CONFIG.run_dir, summary) if CONFIG.run_dir else report.render_text(summary)
    log.info("thresholds of profile %s:\n%s", CONFIG.profile, text)
    environment.process_exit_code = 0 if summary["passed"] else 1
