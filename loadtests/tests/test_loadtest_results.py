"""Per-group statistics from Locust's CSV and from its live entries."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from loadtests.results import by_name, from_locust_entry, read_stats_csv

DATA = Path(__file__).parent / "data"


def test_the_stats_csv_of_a_real_run_parses_into_groups() -> None:
    groups = by_name(read_stats_csv(DATA / "locust_stats.csv"))
    feed = groups["/feed/latest"]
    assert (feed.method, feed.requests, feed.failures, feed.p95_ms) == ("GET", 83, 0, 96.0)
    assert feed.rps == pytest.approx(2.7728918888543643)
    flow = groups["time to rendition"]
    assert flow.method == "FLOW" and flow.requests == 7 and flow.p95_ms == 1100
    total = groups["Aggregated"]
    assert total.requests == 353 and total.failure_ratio == 0
    assert sum(g.requests for g in groups.values() if g.name != "Aggregated") == total.requests


def test_a_locust_entry_is_read_without_importing_locust() -> None:
    entry = SimpleNamespace(
        name="/users/me",
        method="GET",
        num_requests=10,
        num_failures=1,
        avg_response_time=12.5,
        max_response_time=80,
        total_rps=2.0,
        get_response_time_percentile=lambda q: {0.5: 10, 0.95: 40, 0.99: 70}[q],
    )
    group = from_locust_entry(entry)
    assert (group.median_ms, group.p95_ms, group.p99_ms) == (10, 40, 70)
    assert group.failure_ratio == pytest.approx(0.1)
    assert group.as_dict()["failure_ratio"] == 0.1
