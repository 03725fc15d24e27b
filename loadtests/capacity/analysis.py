"""The figures of the capacity review, computed from a run folder and metric series. Pure: no AWS here.

Definitions (the page repeats them):

- A *minute* is a wall-clock minute (CloudWatch's one-minute periods) that lies entirely inside the run.
- Its *API rate* is the number of `/api/v1` requests Locust completed in it, divided by 60; its *p95* is
  the exact 95th percentile of those requests' response times (minutes.csv).
- A minute *met the target* when its p95 is at most the p95 target, at most `max_failure_ratio` of its
  API requests failed, and the running task count is known.
- *Requests per task* = the best API rate divided by the running task count (CloudWatch's maximum in
  that minute), over the minutes that met the target.
- *Tasks needed* for a traffic T = ceil(T x (1 + headroom) / requests per task of the task size asked
  for). Requests per task of another task size are scaled by its CPU (the service is CPU-bound: Python
  workers, `WEB_CONCURRENCY` scaled with the CPU); that assumption is stated on the page.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.capacity import config
from loadtests.capacity.cloudwatch import Series
from loadtests.minutes import ALL_ROW, API_ROW, MinuteRow, read_csv

MINUTES_CSV = "minutes.csv"
HISTORY_CSV = "locust_stats_history.csv"


class RunFolderError(ValueError):
    """The folder is not a load-test run folder; the message says what is missing."""


@dataclass
class RunData:
    folder: Path
    summary: dict[str, Any]
    minute_rows: list[MinuteRow]
    users_by_minute: dict[int, int]
    users_timeline: list[tuple[float, int]] = field(default_factory=list)
    """(epoch second, simulated users) from Locust's history, one per second."""
    missing: list[str] = field(default_factory=list)

    @property
    def started(self) -> float:
        return float(self.summary["started_epoch"])

    @property
    def finished(self) -> float:
        return float(self.summary["finished_epoch"])


def load_run(folder: Path) -> RunData:
    """Read summary.json, minutes.csv and the users column of Locust's history CSV."""
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise RunFolderError(
            f"{folder} has no summary.json: give the folder of a run of `python -m loadtests run` "
            "(e.g. reports/loadtest/latest)"
        )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if "started_epoch" not in summary or "finished_epoch" not in summary:
        raise RunFolderError(
            f"{summary_path} does not say when the run started and ended (did Locust finish?)"
        )
    missing: list[str] = []
    minute_rows: list[MinuteRow] = []
    if (folder / MINUTES_CSV).is_file():
        minute_rows = read_csv(folder / MINUTES_CSV)
    else:
        missing.append(f"{MINUTES_CSV} (per-minute latencies): the rates and p95 per minute are unknown")
    users: dict[int, int] = {}
    timeline: list[tuple[float, int]] = []
    history = folder / HISTORY_CSV
    if history.is_file():
        with history.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") != "Aggregated":
                    continue
                second, count = int(row["Timestamp"]), int(row["User Count"])
                timeline.append((float(second), count))
                users[second // 60 * 60] = max(users.get(second // 60 * 60, 0), count)
    else:
        missing.append(f"{HISTORY_CSV}: the user count over time is unknown")
    return RunData(folder, summary, minute_rows, users, timeline, missing)


@dataclass(frozen=True)
class Settings:
    p95_target_ms: float = field(default_factory=config.default_p95_target_ms)
    target_rps: float = config.DEFAULT_TARGET_RPS
    headroom: float = config.DEFAULT_HEADROOM
    peak_factor: float = config.DEFAULT_PEAK_FACTOR
    max_failure_ratio: float = config.DEFAULT_MAX_FAILURE_RATIO
    measured_task: config.TaskSize = config.STAGING_TASK
    prod_task: config.TaskSize = config.PROD_TASK
    cpu_target_percent: float = config.STAGING_SCALING_CPU_TARGET_PERCENT
    requests_per_target: float = config.STAGING_SCALING_REQUESTS_PER_TARGET
    prod_aurora_instances: int = config.PROD_AURORA_INSTANCES
    assume_tasks: int | None = None
    """Running tasks to assume when CloudWatch has no task count (e.g. 1 for the local stack)."""


@dataclass
class Minute:
    minute: int
    offset_min: float
    seconds: float
    full: bool
    users: int | None = None
    api_requests: int = 0
    api_failures: int = 0
    api_p50_ms: float | None = None
    api_p95_ms: float | None = None
    all_requests: int = 0
    tasks: float | None = None
    tasks_assumed: bool = False
    cpu: float | None = None
    alb_requests: float | None = None
    alb_p95_ms: float | None = None
    alb_avg_ms: float | None = None
    alb_5xx: float | None = None
    elb_5xx: float | None = None
    acu: float | None = None
    db_connections: float | None = None
    met_target: bool = False
    why_not: str = ""

    @property
    def api_rps(self) -> float:
        return self.api_requests / self.seconds if self.seconds else 0.0

    @property
    def all_rps(self) -> float:
        return self.all_requests / self.seconds if self.seconds else 0.0

    @property
    def api_failure_ratio(self) -> float:
        return self.api_failures / self.api_requests if self.api_requests else 0.0

    @property
    def rps_per_task(self) -> float | None:
        return self.api_rps / self.tasks if self.tasks else None


@dataclass
class Headline:
    requests_per_task: float
    """Measured on the task size of the run (staging's)."""
    prod_requests_per_task: float
    best: Minute
    minutes_met: int
    tasks_needed_target: int
    tasks_needed_peak: int
    lower_bound: bool
    """True when the best minute's CPU stayed under the scaling target: a task could carry more."""


@dataclass
class ScaleOut:
    known: bool
    happened: bool = False
    initial_tasks: float | None = None
    peak_tasks: float | None = None
    first_increase_min: float | None = None
    trigger_min: float | None = None
    trigger: str = ""
    reaction_min: float | None = None
    steps: list[tuple[float, float]] = field(default_factory=list)
    acu_min: float | None = None
    acu_max: float | None = None
    verdict: str = ""


@dataclass
class Recommendation:
    min_tasks: int
    max_tasks: int
    aurora_min_acu: float | None
    aurora_max_acu: float | None
    monthly_usd: dict[str, dict[str, float]]
    notes: list[str]


@dataclass
class Review:
    run: RunData
    settings: Settings
    minutes: list[Minute]
    headline: Headline | None
    headline_missing: str
    scale_out: ScaleOut
    recommendation: Recommendation | None
    missing: list[str]
    cloudwatch_used: bool

    @property
    def summary(self) -> dict[str, Any]:
        return self.run.summary

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        return list(self.summary.get("thresholds", []))

    @property
    def gates_held(self) -> bool:
        return bool(self.summary.get("passed"))


def _round_up_half(value: float) -> float:
    return math.ceil(value * 2 - 1e-9) / 2


def build_minutes(run: RunData, series: Mapping[str, Series], settings: Settings) -> list[Minute]:
    """One row per wall-clock minute the run touched, with Locust's and CloudWatch's figures."""
    first = int(run.started // 60 * 60)
    last = int(run.finished // 60 * 60)
    rows: dict[tuple[int, str], MinuteRow] = {(r.minute, r.group): r for r in run.minute_rows}
    minutes = []
    for minute in range(first, last + 1, 60):
        seconds = min(minute + 60, run.finished) - max(minute, run.started)
        if seconds <= 0:
            continue
        m = Minute(
            minute=minute,
            offset_min=(minute - first) / 60,
            seconds=seconds,
            full=minute >= run.started and minute + 60 <= run.finished,
            users=run.users_by_minute.get(minute),
        )
        api, total = rows.get((minute, API_ROW)), rows.get((minute, ALL_ROW))
        if api:
            m.api_requests, m.api_failures = api.requests, api.failures
            m.api_p50_ms, m.api_p95_ms = api.p50_ms, api.p95_ms
        if total:
            m.all_requests = total.requests

        def value(key: str, minute: int = minute) -> float | None:
            return series.get(key, {}).get(minute)

        m.tasks, m.cpu = value("tasks"), value("cpu")
        if m.tasks is None and settings.assume_tasks:
            m.tasks, m.tasks_assumed = float(settings.assume_tasks), True
        m.alb_requests, m.alb_5xx, m.elb_5xx = value("alb_requests"), value("alb_5xx"), value("elb_5xx")
        p95, avg = value("alb_response_p95"), value("alb_response_avg")
        m.alb_p95_ms = p95 * 1000 if p95 is not None else None
        m.alb_avg_ms = avg * 1000 if avg is not None else None
        m.acu, m.db_connections = value("acu"), value("db_connections")
        m.met_target, m.why_not = _judge(m, settings)
        minutes.append(m)
    return minutes


def _judge(m: Minute, settings: Settings) -> tuple[bool, str]:
    if not m.full:
        return False, "partial minute"
    if not m.api_requests or m.api_p95_ms is None:
        return False, "no API request"
    if m.api_p95_ms > settings.p95_target_ms:
        return False, f"p95 {m.api_p95_ms:.0f} ms > {settings.p95_target_ms:.0f} ms"
    if m.api_failure_ratio > settings.max_failure_ratio:
        return False, f"{m.api_failure_ratio:.1%} failed"
    if not m.tasks:
        return False, "task count unknown"
    return True, ""


def tasks_needed(rate: float, headroom: float, per_task: float) -> int:
    """ceil(rate x (1 + headroom) / per_task), at least 1."""
    return max(1, math.ceil(rate * (1 + headroom) / per_task - 1e-9))


def headline(minutes: list[Minute], settings: Settings) -> tuple[Headline | None, str]:
    met = [m for m in minutes if m.met_target]
    if not met:
        full = [m for m in minutes if m.full]
        if not full:
            why = "the run has no whole minute (run it for 3 minutes or more)"
        elif all(m.tasks is None for m in full):
            why = "the running task count is unknown (no CloudWatch data; --assume-tasks sets it)"
        else:
            why = f"no whole minute met the target (p95 <= {settings.p95_target_ms:.0f} ms)"
        return None, why
    best = max(met, key=lambda m: m.rps_per_task or 0.0)
    per_task = best.rps_per_task or 0.0
    if per_task <= 0:
        return None, "the minutes that met the target carried no traffic"
    prod_per_task = per_task * settings.prod_task.cpu_units / settings.measured_task.cpu_units
    return (
        Headline(
            requests_per_task=per_task,
            prod_requests_per_task=prod_per_task,
            best=best,
            minutes_met=len(met),
            tasks_needed_target=tasks_needed(settings.target_rps, settings.headroom, prod_per_task),
            tasks_needed_peak=tasks_needed(
                settings.target_rps * settings.peak_factor, settings.headroom, prod_per_task
            ),
            lower_bound=best.cpu is not None and best.cpu < settings.cpu_target_percent,
        ),
        "",
    )


def scale_out(minutes: list[Minute], settings: Settings) -> ScaleOut:
    """Did the task count rise, when, and how long after a scaling target was crossed."""
    observed = [m for m in minutes if m.tasks is not None and not m.tasks_assumed]
    acus = [m.acu for m in minutes if m.acu is not None]
    result = ScaleOut(known=bool(observed), acu_min=min(acus, default=None), acu_max=max(acus, default=None))
    if not observed:
        result.verdict = "unknown: no running task count from CloudWatch"
        return result
    result.initial_tasks = observed[0].tasks
    result.peak_tasks = max(m.tasks or 0.0 for m in observed)
    previous = None
    for m in observed:
        if m.tasks != previous:
            result.steps.append((m.offset_min, m.tasks or 0.0))
            previous = m.tasks
    for m in observed:
        per_target = (m.alb_requests or 0.0) / (m.tasks or 1.0)
        if m.cpu is not None and m.cpu > settings.cpu_target_percent:
            result.trigger_min, result.trigger = (
                m.offset_min,
                f"CPU {m.cpu:.0f}% > {settings.cpu_target_percent:.0f}%",
            )
            break
        if m.alb_requests is not None and per_target > settings.requests_per_target:
            result.trigger_min = m.offset_min
            result.trigger = (
                f"{per_target:.0f} requests per task per minute > {settings.requests_per_target:.0f}"
            )
            break
    increase = next((m for m in observed if (m.tasks or 0) > (result.initial_tasks or 0)), None)
    result.happened = increase is not None
    if increase is not None:
        result.first_increase_min = increase.offset_min
        if result.trigger_min is not None:
            result.reaction_min = increase.offset_min - result.trigger_min
    if result.happened:
        after = (
            f", {result.reaction_min:.0f} min after {result.trigger} (minute +{result.trigger_min:.0f})"
            if result.reaction_min is not None
            else ""
        )
        result.verdict = (
            f"scaled out from {result.initial_tasks:.0f} to {result.peak_tasks:.0f} tasks; "
            f"first new task at minute +{result.first_increase_min:.0f}{after}"
        )
    elif result.trigger_min is not None:
        result.verdict = (
            f"did NOT scale out: {result.trigger} at minute +{result.trigger_min:.0f}, "
            f"yet the service stayed at {result.initial_tasks:.0f} task(s)"
        )
    else:
        result.verdict = (
            f"no scale-out, and none was due: the load never crossed the scaling targets "
            f"(CPU {settings.cpu_target_percent:.0f}%, {settings.requests_per_target:.0f} requests per task per minute)"
        )
    return result


def recommend(minutes: list[Minute], top: Headline, settings: Settings) -> Recommendation:
    """min/max tasks and ACUs for stages/config.py (prod), and what they cost per month."""
    notes = []
    min_tasks = max(config.PROD_MIN_TASKS_FLOOR, top.tasks_needed_target)
    max_tasks = max(min_tasks, top.tasks_needed_peak)
    full = [m for m in minutes if m.full and m.api_requests]
    with_acu = [m for m in full if m.acu is not None]
    aurora_min = aurora_max = None
    if with_acu:
        # ACUs as a straight line from the quietest minute to the busiest one, extrapolated.
        rest = min(m.acu or 0.0 for m in with_acu)
        busiest = max(with_acu, key=lambda m: m.api_rps)
        slope = ((busiest.acu or rest) - rest) / busiest.api_rps if busiest.api_rps else 0.0

        def acu_at(rate: float) -> float:
            return rest + slope * rate

        aurora_min = max(config.AURORA_MIN_ACU, _round_up_half(acu_at(settings.target_rps)))
        aurora_max = _round_up_half(
            acu_at(settings.target_rps * settings.peak_factor) * (1 + settings.headroom)
        )
        aurora_max = min(config.AURORA_MAX_ACU_LIMIT, max(aurora_min + 0.5, aurora_max))
        if busiest.api_rps < settings.target_rps:
            notes.append(
                f"ACUs are extrapolated from {busiest.api_rps:.1f} req/s to {settings.target_rps:.0f} req/s "
                "along a straight line; a run closer to the target traffic makes them firmer."
            )
    else:
        notes.append("No Aurora ACU data: the database values are not computed.")
    task = settings.prod_task
    instances = settings.prod_aurora_instances
    monthly = {
        "baseline": {"tasks": float(min_tasks), "fargate": task.monthly_usd(min_tasks)},
        "ceiling": {"tasks": float(max_tasks), "fargate": task.monthly_usd(max_tasks)},
    }
    if aurora_min is not None and aurora_max is not None:
        monthly["baseline"]["acu"] = aurora_min
        monthly["baseline"]["aurora"] = config.aurora_monthly_usd(aurora_min, instances)
        monthly["ceiling"]["acu"] = aurora_max
        monthly["ceiling"]["aurora"] = config.aurora_monthly_usd(aurora_max, instances)
    for column in monthly.values():
        column["total"] = column["fargate"] + column.get("aurora", 0.0)
    if settings.prod_task.cpu_units != settings.measured_task.cpu_units:
        notes.append(
            f"Measured on {settings.measured_task.cpu_units} CPU-unit tasks, sized for "
            f"{settings.prod_task.cpu_units}: requests per task scaled by CPU (a CPU-bound service)."
        )
    if top.best.tasks_assumed:
        notes.append(
            "The task count was assumed (--assume-tasks), not measured: these figures describe the machine "
            "the run targeted (e.g. the local stack), not a Fargate task."
        )
    if top.lower_bound:
        notes.append(
            f"At the best minute the tasks ran at {top.best.cpu:.0f}% CPU, under the {settings.cpu_target_percent:.0f}% "
            "target: a task could carry more, so these task counts are on the safe side."
        )
    return Recommendation(min_tasks, max_tasks, aurora_min, aurora_max, monthly, notes)


def analyse(
    run: RunData,
    series: Mapping[str, Series],
    settings: Settings,
    cloudwatch_missing: list[str] | None = None,
) -> Review:
    """Everything the page shows. `cloudwatch_missing` says why metrics are absent (for the page)."""
    minutes = build_minutes(run, series, settings)
    missing = list(run.missing) + list(cloudwatch_missing or [])
    cloudwatch_used = any(series.get(key) for key in series)
    labels = {
        "tasks": "ECS running task count",
        "cpu": "ECS service CPU",
        "alb_requests": "ALB request count",
        "alb_response_p95": "ALB target response time p95",
        "alb_5xx": "ALB target 5xx",
        "acu": "Aurora ServerlessDatabaseCapacity (ACUs)",
        "db_connections": "Aurora DatabaseConnections",
    }
    if cloudwatch_used:
        window = {m.minute for m in minutes}
        for key, label in labels.items():
            if key in series and not (set(series[key]) & window):
                missing.append(f"{label}: no datapoints in the run's window")
    top, why = headline(minutes, settings)
    return Review(
        run=run,
        settings=settings,
        minutes=minutes,
        headline=top,
        headline_missing=why,
        scale_out=scale_out(minutes, settings),
        recommendation=recommend(minutes, top, settings) if top else None,
        missing=missing,
        cloudwatch_used=cloudwatch_used,
    )
