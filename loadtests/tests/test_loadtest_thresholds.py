"""Threshold profiles, overrides and their evaluation (pure: synthetic group statistics)."""

from __future__ import annotations

import pytest

from loadtests.common.api import Group
from loadtests.results import GroupStats
from loadtests.thresholds import PROFILES, Threshold, evaluate, parse_override, resolve


def stats(
    name: str, requests: int = 100, failures: int = 0, p95: float = 100.0, rps: float = 10.0
) -> GroupStats:
    return GroupStats(name, "GET", requests, failures, p95 / 2, p95, p95 * 1.5, p95 / 2, p95 * 2, rps)


def test_a_ceiling_holds_at_its_limit_and_is_missed_above_it() -> None:
    t = Threshold("/feed/latest", "p95_ms", 300)
    held = evaluate([t], {"/feed/latest": stats("/feed/latest", p95=300)})[0]
    missed = evaluate([t], {"/feed/latest": stats("/feed/latest", p95=450)})[0]
    assert held.passed and held.status == "pass" and held.margin == 0
    assert not missed.passed and missed.status == "fail"
    assert missed.margin == -150 and missed.margin_pct == pytest.approx(-50.0)
    assert missed.explanation == "/feed/latest: p95_ms <= 300 ms: observed 450 ms, over by 150 ms (50.0%)"


def test_a_floor_is_missed_below_it_and_says_by_how_much() -> None:
    t = Threshold("Aggregated", "min_rps", 40)
    verdict = evaluate([t], {"Aggregated": stats("Aggregated", rps=30)})[0]
    assert not verdict.passed
    assert verdict.margin == -10 and verdict.margin_pct == pytest.approx(-25.0)
    assert "short by 10.00 req/s (25.0%)" in verdict.explanation


def test_failure_ratio_is_failures_over_requests() -> None:
    t = Threshold("S3 upload POST", "failure_ratio", 0.01)
    ok = evaluate([t], {"S3 upload POST": stats("S3 upload POST", requests=200, failures=2)})[0]
    bad = evaluate([t], {"S3 upload POST": stats("S3 upload POST", requests=200, failures=3)})[0]
    assert ok.passed and ok.observed == pytest.approx(0.01)
    assert not bad.passed and "observed 1.50%" in bad.explanation


def test_a_group_without_requests_fails_floors_and_is_not_exercised_for_ceilings() -> None:
    floor, ceiling = (
        Threshold("time to rendition", "min_requests", 1),
        Threshold("time to rendition", "p95_ms", 10),
    )
    missing_floor, missing_ceiling = evaluate([floor, ceiling], {})
    assert not missing_floor.passed and missing_floor.observed == 0
    assert missing_ceiling.passed and missing_ceiling.status == "no data" and missing_ceiling.observed is None
    assert "not exercised" in missing_ceiling.explanation
    empty = evaluate([floor], {"time to rendition": stats("time to rendition", requests=0)})[0]
    assert not empty.passed


def test_overrides_replace_the_same_group_and_metric_and_add_new_ones() -> None:
    base = resolve("local")
    changed = resolve(
        "local", [parse_override("Aggregated:failure_ratio=0.5"), parse_override("/x:p95_ms=1")]
    )
    assert len(changed) == len(base) + 1
    by_key = {(t.group, t.metric): t.limit for t in changed}
    assert by_key[("Aggregated", "failure_ratio")] == 0.5
    assert by_key[("/x", "p95_ms")] == 1
    # Overrides travel to Locust as JSON dictionaries.
    assert resolve("local", [{"group": "/x", "metric": "min_rps", "limit": 2}])[-1] == Threshold(
        "/x", "min_rps", 2
    )


@pytest.mark.parametrize(
    "text", ["Aggregated:p95=1", "Aggregated p95_ms=1", "Aggregated:p95_ms=fast", ":p95_ms=1"]
)
def test_malformed_overrides_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_override(text)


def test_unknown_profiles_and_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        resolve("prod")
    with pytest.raises(ValueError, match="unknown metric"):
        Threshold("Aggregated", "p50_ms", 1)


def test_both_profiles_gate_failures_traffic_and_every_persona() -> None:
    for name, profile in PROFILES.items():
        keys = {(t.group, t.metric) for t in profile}
        assert ("Aggregated", "failure_ratio") in keys, name
        assert ("Aggregated", "min_rps") in keys, name
        for group in (Group.FEED, Group.LOGIN, Group.S3_POST, Group.TIME_TO_RENDITION):
            assert (group, "min_requests") in keys, (name, group)
        assert len(keys) == len(profile), f"{name} names a threshold twice"


def test_staging_is_at_least_as_strict_as_local_wherever_both_judge() -> None:
    local = {(t.group, t.metric): t for t in PROFILES["local"]}
    for t in PROFILES["staging"]:
        if (t.group, t.metric) in local:
            other = local[(t.group, t.metric)]
            if t.op == "<=":
                assert t.limit <= other.limit, t
            else:
                assert t.limit >= other.limit, t
    staging_p95 = {t.group for t in PROFILES["staging"] if t.metric == "p95_ms"}
    assert {Group.FEED, Group.MEDIA, Group.IMAGE_PUBLIC, Group.TIME_TO_RENDITION} <= staging_p95
