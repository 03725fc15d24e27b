"""The figures of one run that the regression gate compares, each with the run's own windows.

From a run folder (`python -m loadtests run`):

- per request group (`GET /feed/latest`, ...) and overall (Locust's `Aggregated` row): p50, p95 and p99
  of the response times, the failure ratio and the throughput, as `summary.json` has them for the whole
  run; and the same per 10-second window from `locust_stats_history.csv` (Locust's "current" percentiles
  cover the last 10 seconds, its cumulative counts give each window's requests);
- where the capacity review read CloudWatch (`capacity.json`, its `minutes`), per request for the whole
  service: requests per task, CPU per request, Aurora ACUs per 100 req/s and the cost per million
  requests, with each minute as a window.

A window is labelled with the number of simulated users during it (its *level*); windows in which the
count changed (a ramp) are kept for the charts but tell nothing about noise. `metrics.json` is this in
JSON; the baselines keep one per accepted run, so a comparison never needs the run's bulky CSV files.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtests.capacity import config as prices

FORMAT = 1
METRICS_JSON = "metrics.json"
SUMMARY_JSON = "summary.json"
STATS_CSV = "locust_stats.csv"
HISTORY_CSV = "locust_stats_history.csv"
CAPACITY_JSON = "capacity.json"
WINDOW_S = 10
"""Seconds per window: Locust's current percentiles cover the last 10 s (its CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW)."""
RAMP = -1
"""The level of a window during which the number of simulated users changed."""

OVERALL = "Aggregated"
"""The scope of the whole run's figures (Locust's Aggregated row: every request and flow)."""
SERVICE = "service (CloudWatch)"
"""The scope of the per-request figures of the service, from the capacity review's CloudWatch data."""
LATENCY = ("p50_ms", "p95_ms", "p99_ms")
FAILURES = "failure_ratio"
THROUGHPUT = "rps"
EFFICIENCY = ("requests_per_task", "cpu_ms_per_request", "acu_per_100_rps", "usd_per_million")
HIGHER_IS_BETTER = frozenset({THROUGHPUT, "requests_per_task"})
UNITS = {
    "p50_ms": "ms",
    "p95_ms": "ms",
    "p99_ms": "ms",
    FAILURES: "",
    THROUGHPUT: "req/s",
    "requests_per_task": "req/s per task",
    "cpu_ms_per_request": "vCPU-ms",
    "acu_per_100_rps": "ACU",
    "usd_per_million": "USD",
}
LABELS = {
    "p50_ms": "p50",
    "p95_ms": "p95",
    "p99_ms": "p99",
    FAILURES: "failure ratio",
    THROUGHPUT: "throughput",
    "requests_per_task": "requests per task",
    "cpu_ms_per_request": "CPU per request",
    "acu_per_100_rps": "Aurora ACUs per 100 req/s",
    "usd_per_million": "cost per million requests",
}
_PERCENTILE_COLUMNS = {"p50_ms": "50%", "p95_ms": "95%", "p99_ms": "99%"}
QUANTILE = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
_DISTRIBUTION = (0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0)
"""The percentiles of Locust's stats CSV (its minimum is the 0th)."""
_SUMMARY_FIELDS = {"p50_ms": "median_ms", "p95_ms": "p95_ms", "p99_ms": "p99_ms", THROUGHPUT: "rps"}


class MetricsError(ValueError):
    """The folder is not a finished run folder; the message says what is missing."""


@dataclass(frozen=True)
class Window:
    end_s: float
    """End of the window, seconds after the run started."""
    value: float
    level: int
    """Simulated users throughout the window, or RAMP."""


@dataclass
class Sample:
    """One metric of one scope of a run: the whole run's value and its windows."""

    scope: str
    metric: str
    value: float
    count: int
    """Requests behind the value (for the per-request figures: minutes)."""
    windows: list[Window] = field(default_factory=list)
    distribution: list[tuple[float, float]] = field(default_factory=list)
    """For a latency: (quantile, ms) of the whole run's response times, 0 (the fastest) to 1 (the slowest)."""

    @property
    def key(self) -> str:
        return key(self.scope, self.metric)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["windows"] = [[w.end_s, round(w.value, 6), w.level] for w in self.windows]
        data["distribution"] = [[q, v] for q, v in self.distribution]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        return cls(
            scope=str(data["scope"]),
            metric=str(data["metric"]),
            value=float(data["value"]),
            count=int(data["count"]),
            windows=[Window(float(e), float(v), int(level)) for e, v, level in data.get("windows", [])],
            distribution=[(float(q), float(v)) for q, v in data.get("distribution", [])],
        )


def key(scope: str, metric: str) -> str:
    return f"{scope} | {metric}"


@dataclass
class RunMetrics:
    """What a comparison needs of one run."""

    run_id: str
    target: str
    profile: str
    shape: str
    peak_users: int | None
    planned_duration_s: float | None
    started_at: str | None
    host: str | None
    passed: bool
    samples: dict[str, Sample]
    window_s: float = WINDOW_S
    missing: list[str] = field(default_factory=list)

    @property
    def comparable_key(self) -> tuple[str, str, str]:
        """(target, profile, shape): a baseline is only ever one of the same three."""
        return (self.target, self.profile, self.shape)

    def get(self, scope: str, metric: str) -> Sample | None:
        return self.samples.get(key(scope, metric))

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run_id": self.run_id,
            "target": self.target,
            "profile": self.profile,
            "shape": self.shape,
            "peak_users": self.peak_users,
            "planned_duration_s": self.planned_duration_s,
            "started_at": self.started_at,
            "host": self.host,
            "passed": self.passed,
            "window_s": self.window_s,
            "missing": self.missing,
            "samples": [s.as_dict() for s in self.samples.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMetrics:
        if data.get("format") != FORMAT:
            raise MetricsError(f"{METRICS_JSON} has format {data.get('format')}; this code reads {FORMAT}")
        samples = [Sample.from_dict(s) for s in data.get("samples", [])]
        return cls(
            run_id=str(data["run_id"]),
            target=str(data["target"]),
            profile=str(data["profile"]),
            shape=str(data["shape"]),
            peak_users=data.get("peak_users"),
            planned_duration_s=data.get("planned_duration_s"),
            started_at=data.get("started_at"),
            host=data.get("host"),
            passed=bool(data.get("passed")),
            samples={s.key: s for s in samples},
            window_s=float(data.get("window_s", WINDOW_S)),
            missing=list(data.get("missing", [])),
        )


def write(metrics: RunMetrics, path: Path) -> None:
    path.write_text(json.dumps(metrics.as_dict(), indent=1) + "\n", encoding="utf-8")


def read(path: Path) -> RunMetrics:
    return RunMetrics.from_dict(json.loads(path.read_text(encoding="utf-8")))


def infer_target(host: str | None) -> str:
    """`local` for the local stack (a loopback address or localhost), else the target's host name."""
    name = urlsplit(host or "").hostname or ""
    if name in ("", "localhost"):
        return "local"
    try:
        return "local" if ip_address(name).is_loopback else name
    except ValueError:
        return name


def scope_of(group: Mapping[str, Any]) -> str:
    method = str(group.get("method") or "").strip()
    return f"{method} {group['name']}".strip()


# --- the history CSV -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    timestamp: int
    users: int
    requests: int
    failures: int
    percentiles: dict[str, float | None]


def _float(text: str | None) -> float | None:
    raw = (text or "").strip()
    if raw in ("", "N/A"):
        return None
    return float(raw)


_HISTORY_COLUMNS = ("Timestamp", "User Count", "Type", "Name", "Total Request Count", "Total Failure Count")


def read_history(path: Path) -> dict[str, list[_Row]]:
    """Rows of the history CSV per scope, oldest first."""
    rows: dict[str, list[_Row]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not set(_HISTORY_COLUMNS) <= set(reader.fieldnames or []):
            return {}  # not Locust's full history (e.g. a hand-made folder): no windows
        for raw in reader:
            scope = OVERALL if raw["Name"] == OVERALL else f"{raw['Type']} {raw['Name']}".strip()
            rows.setdefault(scope, []).append(
                _Row(
                    timestamp=int(raw["Timestamp"]),
                    users=int(raw["User Count"]),
                    requests=int(raw["Total Request Count"]),
                    failures=int(raw["Total Failure Count"]),
                    percentiles={m: _float(raw.get(c)) for m, c in _PERCENTILE_COLUMNS.items()},
                )
            )
    for scope_rows in rows.values():
        scope_rows.sort(key=lambda r: r.timestamp)
    return rows


def boundaries(start: int, end: int, window_s: int = WINDOW_S) -> list[int]:
    """Window ends after `start`, every `window_s` seconds, up to `end`."""
    return list(range(start + window_s, end + 1, window_s))


def at_or_before(rows: list[_Row], moment: int) -> _Row | None:
    found = None
    for row in rows:
        if row.timestamp > moment:
            break
        found = row
    return found


def history_windows(
    rows: Mapping[str, list[_Row]], start: int, window_s: int = WINDOW_S
) -> dict[str, dict[str, list[Window]]]:
    """{scope: {metric: windows}} of every scope: throughput and the three percentiles per window."""
    overall = rows.get(OVERALL, [])
    if not overall:
        return {}
    ends = boundaries(start, overall[-1].timestamp, window_s)
    out: dict[str, dict[str, list[Window]]] = {}
    for scope, scope_rows in rows.items():
        series: dict[str, list[Window]] = {m: [] for m in (*LATENCY, THROUGHPUT)}
        previous_end = start
        for end in ends:
            before, now = at_or_before(scope_rows, previous_end), at_or_before(scope_rows, end)
            users_before, users_now = at_or_before(overall, previous_end), at_or_before(overall, end)
            previous_end = end
            if now is None or users_now is None:
                continue
            level = users_now.users
            if users_before is None or users_before.users != users_now.users:
                level = RAMP
            requests = now.requests - (before.requests if before else 0)
            offset = float(end - start)
            series[THROUGHPUT].append(Window(offset, requests / window_s, level))
            if requests <= 0 or now.timestamp != end:
                continue  # an empty window has no percentile; a row of another second is another window
            for metric in LATENCY:
                value = now.percentiles[metric]
                if value is not None:
                    series[metric].append(Window(offset, value, level))
        out[scope] = series
    return out


def trim_history(path: Path, start: int, destination: Path, window_s: int = WINDOW_S) -> int:
    """Copy only the rows `history_windows` reads (for small test fixtures); returns how many."""
    rows = read_history(path)
    overall = rows.get(OVERALL, [])
    keep: set[tuple[str, int]] = set()
    moments = [start, *boundaries(start, overall[-1].timestamp if overall else start, window_s)]
    for scope, scope_rows in rows.items():
        for moment in moments:
            row = at_or_before(scope_rows, moment)
            if row is not None:
                keep.add((scope, row.timestamp))
    kept = 0
    with path.open(newline="", encoding="utf-8") as source, destination.open("w", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, fieldnames=list(reader.fieldnames or []), lineterminator="\n")
        writer.writeheader()
        for raw in reader:
            scope = OVERALL if raw["Name"] == OVERALL else f"{raw['Type']} {raw['Name']}".strip()
            if (scope, int(raw["Timestamp"])) in keep:
                writer.writerow(raw)
                kept += 1
    return kept


def read_distributions(path: Path) -> dict[str, list[tuple[float, float]]]:
    """{scope: [(quantile, ms), ...]} from Locust's stats CSV (minimum, 50% ... 100%)."""
    out: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            scope = OVERALL if raw["Name"] == OVERALL else f"{raw['Type']} {raw['Name']}".strip()
            points = [(0.0, _float(raw.get("Min Response Time")))]
            points += [(q, _float(raw.get(f"{q * 100:g}%"))) for q in _DISTRIBUTION]
            out[scope] = [(q, v) for q, v in points if v is not None]
    return out


# --- the capacity review's minutes ---------------------------------------------------------------------
def _efficiency(minutes: Iterable[Mapping[str, Any]], task: prices.TaskSize) -> list[Sample]:
    """The per-request figures of the service from the capacity review's minutes (measured tasks only)."""
    usable = [
        m
        for m in minutes
        if m.get("full") and m.get("api_requests") and m.get("tasks") and not m.get("tasks_assumed")
    ]
    first = min((float(m["minute"]) for m in minutes), default=0.0)
    task_usd_per_s = task.monthly_usd(1) / prices.HOURS_PER_MONTH / 3600
    acu_usd_per_s = prices.AURORA_SERVERLESS_V2_ACU_HOUR_USD / 3600

    def per_minute(m: Mapping[str, Any]) -> dict[str, tuple[float, float] | None]:
        """metric -> (numerator, denominator) of this minute, or None when CloudWatch lacks a figure."""
        seconds, requests, tasks = float(m["seconds"]), float(m["api_requests"]), float(m["tasks"])
        cpu, acu = m.get("cpu"), m.get("acu")
        return {
            "requests_per_task": (requests, tasks * seconds),
            "cpu_ms_per_request": (
                (float(cpu) / 100 * tasks * task.vcpu * seconds * 1000, requests) if cpu is not None else None
            ),
            "acu_per_100_rps": ((float(acu) * seconds * 100, requests) if acu is not None else None),
            "usd_per_million": (
                ((tasks * task_usd_per_s + float(acu) * acu_usd_per_s) * seconds * 1e6, requests)
                if acu is not None
                else None
            ),
        }

    out = []
    for metric in EFFICIENCY:
        top = bottom = 0.0
        windows = []
        for m in usable:
            pair = per_minute(m)[metric]
            if pair is None or not pair[1]:
                continue
            top, bottom = top + pair[0], bottom + pair[1]
            level = int(m["users"]) if m.get("users") is not None else RAMP
            windows.append(Window(float(m["minute"]) - first + 60, pair[0] / pair[1], level))
        if windows and bottom:
            out.append(Sample(SERVICE, metric, top / bottom, len(windows), windows))
    return out


# --- a run folder --------------------------------------------------------------------------------------
def extract(folder: Path) -> RunMetrics:
    """The comparable figures of a finished run folder."""
    summary_path = folder / SUMMARY_JSON
    if not summary_path.is_file():
        raise MetricsError(
            f"{folder} has no {SUMMARY_JSON}: give the folder of a finished run (e.g. reports/loadtest/latest)"
        )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    groups = list(summary.get("groups") or [])
    if summary.get("aggregated"):
        groups.append({**summary["aggregated"], "name": OVERALL, "method": ""})
    if not groups:
        raise MetricsError(f"{summary_path} has no request statistics: the run made no request")
    missing: list[str] = []
    windows: dict[str, dict[str, list[Window]]] = {}
    history = folder / HISTORY_CSV
    start = int(float(summary.get("started_epoch") or 0))
    if history.is_file():
        rows = read_history(history)
        if not start:
            start = min((r[0].timestamp for r in rows.values() if r), default=0)
        windows = history_windows(rows, start)
        if not windows:
            missing.append(f"{HISTORY_CSV} has no rows of Locust's full history: no windows")
    else:
        missing.append(f"{HISTORY_CSV}: no windows, so the run's own noise is unknown")
    distributions = read_distributions(folder / STATS_CSV) if (folder / STATS_CSV).is_file() else {}
    if not distributions:
        missing.append(f"{STATS_CSV}: the spread of each run's response times is unknown")
    samples: dict[str, Sample] = {}
    for group in groups:
        scope = OVERALL if group["name"] == OVERALL else scope_of(group)
        requests = int(group.get("requests") or 0)
        scope_windows = windows.get(scope, {})
        for metric, field_name in _SUMMARY_FIELDS.items():
            sample = Sample(scope, metric, float(group.get(field_name) or 0.0), requests)
            sample.windows = scope_windows.get(metric, [])
            if metric in QUANTILE:
                sample.distribution = distributions.get(scope, [])
            samples[sample.key] = sample
        failures = Sample(scope, FAILURES, float(group.get("failure_ratio") or 0.0), requests)
        samples[failures.key] = failures
    capacity_path = folder / CAPACITY_JSON
    if capacity_path.is_file():
        capacity = json.loads(capacity_path.read_text(encoding="utf-8"))
        measured = capacity.get("measured_task") or {}
        task = prices.TaskSize(
            int(measured.get("cpu_units", prices.STAGING_TASK.cpu_units)),
            int(measured.get("memory_mib", prices.STAGING_TASK.memory_mib)),
        )
        found = _efficiency(capacity.get("minutes") or [], task)
        samples.update({s.key: s for s in found})
        if not found:
            missing.append(
                "CloudWatch: the capacity review has no measured task count, so no per-request figures"
            )
    else:
        missing.append(f"{CAPACITY_JSON}: no capacity review yet, so no per-request figures from CloudWatch")
    return RunMetrics(
        run_id=str(summary.get("run_id") or folder.name),
        target=str(summary.get("target") or infer_target(summary.get("host"))),
        profile=str(summary.get("profile") or "unknown"),
        shape=str(summary.get("shape") or "unknown"),
        peak_users=summary.get("peak_users"),
        planned_duration_s=summary.get("planned_duration_s"),
        started_at=summary.get("started_at"),
        host=summary.get("host"),
        passed=bool(summary.get("passed")),
        samples=samples,
        missing=missing,
    )
