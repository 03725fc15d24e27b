"""Exact per-minute latency statistics, written as `minutes.csv` next to Locust's own CSV files.

Locust's history CSV has only 10-second sliding-window percentiles, which cannot be combined into the
p95 of a whole minute. The capacity review needs exactly that ("minutes whose p95 met the target"), so
every process also keeps a small latency histogram per wall-clock minute and request group; in
distributed mode workers ship theirs to the master with each stats report (`report_to_master`), and
the master merges them (`worker_report`). Pure Python: the locustfile wires it to Locust's events.

Besides one row per group, every minute gets two summary rows: `API` (requests to the service's
`/api/v1` routes, which the web tasks answer) and `All` (everything, as Locust's Aggregated row).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

API_ROW = "API"
ALL_ROW = "All"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
COLUMNS = ("minute", "time_utc", "group", "requests", "failures", "p50_ms", "p95_ms", "p99_ms", "max_ms")


def bucket(ms: float) -> int:
    """Histogram key of a response time: exact below 100 ms, then 2 significant digits (as Locust)."""
    value = max(0, round(ms))
    if value < 100:
        return value
    digits = int(math.log10(value)) - 1
    return int(round(value, -digits))


def is_api(method: str, name: str) -> bool:
    """True for requests the service's tasks answer (our API group names start with '/')."""
    return method in HTTP_METHODS and name.startswith("/")


def percentile(histogram: Mapping[int, int], q: float) -> float:
    """The smallest recorded value with at least `q` of the samples at or below it."""
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    wanted = q * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted - 1e-9:
            return float(value)
    return float(max(histogram))


class MinuteStats:
    """Histograms keyed by (minute start, group); `drain` hands them over and starts afresh."""

    def __init__(self) -> None:
        # {minute: {group: [requests, failures, {bucket: count}]}}
        self.data: dict[int, dict[str, list[Any]]] = {}

    def add(self, when: float, method: str, name: str, response_ms: float, failed: bool) -> None:
        minute = int(when // 60 * 60)
        group = f"{method} {name}"
        key = bucket(response_ms)
        rows = self.data.setdefault(minute, {})
        for row_name in (group, API_ROW if is_api(method, name) else None, ALL_ROW):
            if row_name is None:
                continue
            entry = rows.setdefault(row_name, [0, 0, {}])
            entry[0] += 1
            entry[1] += int(failed)
            entry[2][key] = entry[2].get(key, 0) + 1

    def drain(self) -> dict[str, Any]:
        """The collected data in a form msgpack and JSON carry (string keys), then empty."""
        out = {
            str(minute): {
                group: [n, f, {str(k): c for k, c in hist.items()}] for group, (n, f, hist) in rows.items()
            }
            for minute, rows in self.data.items()
        }
        self.data = {}
        return out

    def merge(self, shipped: Mapping[str, Any]) -> None:
        """Add what `drain` produced (in another process) to this collector."""
        for minute_text, rows in shipped.items():
            target = self.data.setdefault(int(minute_text), {})
            for group, (n, f, hist) in rows.items():
                entry = target.setdefault(group, [0, 0, {}])
                entry[0] += int(n)
                entry[1] += int(f)
                for key, count in hist.items():
                    entry[2][int(key)] = entry[2].get(int(key), 0) + int(count)

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for minute in sorted(self.data):
            for group in sorted(self.data[minute]):
                n, f, hist = self.data[minute][group]
                out.append(
                    {
                        "minute": minute,
                        "time_utc": datetime.fromtimestamp(minute, UTC).isoformat(timespec="minutes"),
                        "group": group,
                        "requests": n,
                        "failures": f,
                        "p50_ms": percentile(hist, 0.50),
                        "p95_ms": percentile(hist, 0.95),
                        "p99_ms": percentile(hist, 0.99),
                        "max_ms": float(max(hist)) if hist else 0.0,
                    }
                )
        return out

    def write_csv(self, path: Path) -> None:
        write_rows(path, self.rows())


def write_rows(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in COLUMNS})


@dataclass(frozen=True)
class MinuteRow:
    minute: int
    group: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def read_csv(path: Path) -> list[MinuteRow]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            MinuteRow(
                minute=int(row["minute"]),
                group=row["group"],
                requests=int(row["requests"]),
                failures=int(row["failures"]),
                p50_ms=float(row["p50_ms"]),
                p95_ms=float(row["p95_ms"]),
                p99_ms=float(row["p99_ms"]),
                max_ms=float(row["max_ms"]),
            )
            for row in csv.DictReader(handle)
        ]
