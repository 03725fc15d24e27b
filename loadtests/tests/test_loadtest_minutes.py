"""Per-minute latency statistics (minutes.csv): buckets, exact percentiles, and merging across processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.minutes import MinuteStats, bucket, is_api, percentile, read_csv

T = 1_800_000_000  # a whole minute


def test_buckets_keep_two_significant_digits_above_100_ms() -> None:
    assert [bucket(x) for x in (0.4, 7.6, 99.4, 104, 156, 999, 1049, 23456)] == [
        0,
        8,
        99,
        100,
        160,
        1000,
        1000,
        23000,
    ]


def test_percentile_is_the_smallest_value_covering_the_share() -> None:
    histogram = {10: 90, 200: 5, 900: 5}
    assert percentile(histogram, 0.5) == 10
    assert percentile(histogram, 0.90) == 10
    assert percentile(histogram, 0.95) == 200
    assert percentile(histogram, 0.99) == 900
    assert percentile({}, 0.95) == 0.0


def test_api_requests_are_those_the_service_answers() -> None:
    assert is_api("GET", "/feed/latest") and is_api("DELETE", "/images/[id]")
    assert not is_api("POST", "S3 upload POST") and not is_api("GET", "image [public]")
    assert not is_api("FLOW", "time to rendition")


def test_minutes_split_by_wall_clock_and_summarise_api_and_all() -> None:
    stats = MinuteStats()
    for i in range(100):
        stats.add(T + 1 + i * 0.5, "GET", "/feed/latest", 10 if i < 95 else 500, failed=i == 0)
    stats.add(T + 59.9, "GET", "image [public]", 3000, failed=False)
    stats.add(T + 60.0, "FLOW", "time to rendition", 1200, failed=True)
    rows = {(r["minute"], r["group"]): r for r in stats.rows()}
    feed = rows[(T, "GET /feed/latest")]
    assert (feed["requests"], feed["failures"], feed["p50_ms"], feed["p95_ms"], feed["max_ms"]) == (
        100,
        1,
        10,
        10,
        500,
    )
    assert rows[(T, "API")]["requests"] == 100 and rows[(T, "All")]["requests"] == 101
    assert rows[(T, "All")]["p99_ms"] == 500
    assert rows[(T + 60, "All")]["failures"] == 1 and (T + 60, "API") not in rows
    assert rows[(T, "API")]["time_utc"] == "2027-01-15T08:00+00:00"


def test_what_workers_ship_merges_into_the_same_figures() -> None:
    worker_a, worker_b, master, alone = MinuteStats(), MinuteStats(), MinuteStats(), MinuteStats()
    for i in range(50):
        for collector in (worker_a if i % 2 else worker_b, alone):
            collector.add(T + i, "GET", "/users/me", float(i), failed=i == 7)
    for worker in (worker_a, worker_b):
        master.merge(json.loads(json.dumps(worker.drain())))  # the report travels as msgpack/JSON
    assert worker_a.data == {} and worker_b.data == {}
    assert master.rows() == alone.rows()


def test_the_csv_round_trips(tmp_path: Path) -> None:
    stats = MinuteStats()
    stats.add(T + 5, "POST", "/auth/login/", 640, failed=False)
    stats.write_csv(tmp_path / "minutes.csv")
    rows = read_csv(tmp_path / "minutes.csv")
    assert [(r.minute, r.group, r.requests, r.p95_ms) for r in rows] == [
        (T, "API", 1, 640.0),
        (T, "All", 1, 640.0),
        (T, "POST /auth/login/", 1, 640.0),
    ]
    assert rows[0].p99_ms == pytest.approx(640.0)
