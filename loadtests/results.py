"""The statistics of a run per request group, in one plain shape whatever they were read from.

`GroupStats` comes from Locust's live statistics (in the `quitting` listener) or from the `_stats.csv`
file of a finished run; thresholds and reports only ever see `GroupStats`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class GroupStats:
    """One request group (Locust's name + method), or the `Aggregated` row of all of them."""

    name: str
    method: str
    requests: int
    failures: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    max_ms: float
    rps: float

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failure_ratio": round(self.failure_ratio, 6)}


def from_locust_entry(entry: Any) -> GroupStats:
    """A GroupStats from a Locust `StatsEntry` (duck-typed, so this module never imports Locust)."""
    requests = int(entry.num_requests)

    def pct(q: float) -> float:
        return float(entry.get_response_time_percentile(q)) if requests else 0.0

    return GroupStats(
        name=str(entry.name),
        method=str(entry.method or ""),
        requests=requests,
        failures=int(entry.num_failures),
        median_ms=pct(0.5),
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
        avg_ms=float(entry.avg_response_time) if requests else 0.0,
        max_ms=float(entry.max_response_time or 0.0),
        rps=float(entry.total_rps),
    )


def _number(row: dict[str, str], column: str) -> float:
    raw = (row.get(column) or "").strip()
    if raw in ("", "N/A"):
        return 0.0
    return float(raw)


def read_stats_csv(path: Path) -> list[GroupStats]:
    """Parse Locust's `<prefix>_stats.csv` (one row per group and the Aggregated row)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        out.append(
            GroupStats(
                name=row["Name"],
                method=row.get("Type") or "",
                requests=int(_number(row, "Request Count")),
                failures=int(_number(row, "Failure Count")),
                median_ms=_number(row, "50%") or _number(row, "Median Response Time"),
                p95_ms=_number(row, "95%"),
                p99_ms=_number(row, "99%"),
                avg_ms=_number(row, "Average Response Time"),
                max_ms=_number(row, "Max Response Time"),
                rps=_number(row, "Requests/s"),
            )
        )
    return out


def by_name(groups: Iterable[GroupStats]) -> dict[str, GroupStats]:
    """Groups keyed by name (our names are unique across methods; the Aggregated row is `Aggregated`)."""
    return {group.name: group for group in groups}
