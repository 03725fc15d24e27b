"""Thresholds belong to a target (docs/design.md): the `local` and `staging` profiles, and their evaluation.

- `local` is a 2-core laptop running the whole stack *and* the load generator: it gates on failures and
  on sanity bounds (every persona did its work; nothing took seconds), never on speed.
- `staging` holds the real gates: p95 latency per request group, failure ratios, and a minimum request
  rate that the `step` shape (200 users at its peak) must reach.

A metric is either a ceiling (`p95_ms`, `failure_ratio`) or a floor (`min_rps`, `min_requests`). A group
without a single request fails its floors (it observed 0) and passes its ceilings as "not exercised" (said
so in the summary); `min_requests` floors are how a profile demands that a path was exercised at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadtests.common.api import Group
from loadtests.results import GroupStats

CEILINGS = ("p95_ms", "failure_ratio")
FLOORS = ("min_rps", "min_requests")
METRICS = CEILINGS + FLOORS
UNITS = {"p95_ms": "ms", "failure_ratio": "", "min_rps": "req/s", "min_requests": "requests"}


@dataclass(frozen=True)
class Threshold:
    group: str
    metric: str
    limit: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}: choose one of {', '.join(METRICS)}")

    @property
    def op(self) -> str:
        return "<=" if self.metric in CEILINGS else ">="

    @property
    def label(self) -> str:
        return f"{self.group}: {self.metric} {self.op} {format_value(self.metric, self.limit)}"

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "metric": self.metric, "limit": self.limit}


def format_value(metric: str, value: float) -> str:
    if metric == "failure_ratio":
        return f"{value:.2%}"
    if metric == "min_requests":
        return f"{value:.0f} requests"
    if metric == "min_rps":
        return f"{value:.2f} req/s"
    return f"{value:.0f} ms"


def _each(groups: Iterable[str], metric: str, limit: float) -> list[Threshold]:
    return [Threshold(group, metric, limit) for group in groups]


_PERSONA_WORK = (Group.FEED, Group.LOGIN, Group.S3_POST, Group.TIME_TO_RENDITION, Group.IMAGE_PRIVATE)
_API_READS = (Group.FEED, Group.FEED_NEXT, Group.CREATOR, Group.OWN_POSTS, Group.ME, Group.PROFILE)

PROFILES: dict[str, tuple[Threshold, ...]] = {
    "local": (
        Threshold(Group.AGGREGATED, "failure_ratio", 0.01),
        Threshold(Group.AGGREGATED, "min_rps", 1.0),
        # Every persona must have done its work at least once (the smoke is short and light).
        *_each(_PERSONA_WORK, "min_requests", 1),
        # Sanity bounds, not speed goals: the machine also runs PostgreSQL, S3, the API, the compressor
        # and the load generator on 2 shared cores; a bound is missed only when something hangs.
        *_each((*_API_READS, Group.GENERATE, Group.CONFIRM, Group.MEDIA, Group.S3_POST), "p95_ms", 5000),
        # argon2 is deliberately slow, and every simulated user signs up at once at the start.
        *_each((Group.LOGIN, Group.REGISTER), "p95_ms", 15_000),
        Threshold(Group.TIME_TO_RENDITION, "p95_ms", 30_000),
        Threshold(Group.TIME_TO_RENDITION, "failure_ratio", 0.10),
    ),
    "staging": (
        Threshold(Group.AGGREGATED, "failure_ratio", 0.005),
        Threshold(Group.AGGREGATED, "min_rps", 40.0),
        *_each(_PERSONA_WORK, "min_requests", 10),
        *_each(_API_READS, "p95_ms", 300),
        *_each(_API_READS, "failure_ratio", 0.01),
        Threshold(Group.LOGIN, "p95_ms", 800),  # argon2 hashing is deliberately slow
        Threshold(Group.REGISTER, "p95_ms", 1000),
        Threshold(Group.GENERATE, "p95_ms", 300),
        Threshold(Group.CONFIRM, "p95_ms", 300),
        Threshold(Group.MEDIA, "p95_ms", 200),
        Threshold(Group.S3_POST, "p95_ms", 2000),
        Threshold(Group.S3_POST, "failure_ratio", 0.01),
        Threshold(Group.IMAGE_PUBLIC, "p95_ms", 400),
        Threshold(Group.IMAGE_PRIVATE, "p95_ms", 600),
        Threshold(Group.TIME_TO_RENDITION, "p95_ms", 10_000),
        Threshold(Group.TIME_TO_RENDITION, "failure_ratio", 0.01),
    ),
}

_OVERRIDE = re.compile(r"^(?P<group>[^=]+):(?P<metric>[a-z0-9_]+)=(?P<limit>[0-9.eE+-]+)$")


def parse_override(text: str) -> Threshold:
    """`GROUP:METRIC=LIMIT`, e.g. `Aggregated:min_rps=50` or `/feed/latest:p95_ms=250`."""
    match = _OVERRIDE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r}: write a threshold as GROUP:METRIC=LIMIT, e.g. 'Aggregated:p95_ms=500'")
    try:
        limit = float(match["limit"])
    except ValueError:
        raise ValueError(f"{text!r}: {match['limit']!r} is not a number") from None
    return Threshold(match["group"].strip(), match["metric"], limit)


def resolve(profile: str, overrides: Iterable[Threshold | Mapping[str, Any]] = ()) -> list[Threshold]:
    """The profile's thresholds with overrides applied: same group and metric replaces, else adds."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    merged = {(t.group, t.metric): t for t in PROFILES[profile]}
    for item in overrides:
        threshold = item if isinstance(item, Threshold) else Threshold(**item)
        merged[(threshold.group, threshold.metric)] = threshold
    return list(merged.values())


@dataclass(frozen=True)
class Verdict:
    threshold: Threshold
    observed: float | None  # None: the group saw no request (only for ceilings; floors observe 0)
    passed: bool

    @property
    def status(self) -> str:
        """`pass`, `fail`, or `no data` (a ceiling on a group that saw no request)."""
        if self.observed is None:
            return "no data"
        return "pass" if self.passed else "fail"

    @property
    def margin(self) -> float | None:
        """Headroom (positive) or shortfall (negative), in the metric's unit."""
        if self.observed is None:
            return None
        if self.threshold.op == "<=":
            return self.threshold.limit - self.observed
        return self.observed - self.threshold.limit

    @property
    def margin_pct(self) -> float | None:
        """The margin relative to the limit, in percent (None when the limit is 0)."""
        if self.margin is None or self.threshold.limit == 0:
            return None
        return 100.0 * self.margin / self.threshold.limit

    @property
    def explanation(self) -> str:
        t = self.threshold
        if self.observed is None:
            return f"{t.label}: not exercised (no request in this group)"
        observed = format_value(t.metric, self.observed)
        margin = self.margin or 0.0
        pct = f" ({abs(self.margin_pct):.1f}%)" if self.margin_pct is not None else ""
        amount = format_value(t.metric, abs(margin))
        if self.passed:
            return f"{t.label}: observed {observed}, headroom {amount}{pct}"
        word = "over" if t.op == "<=" else "short"
        return f"{t.label}: observed {observed}, {word} by {amount}{pct}"

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.threshold.as_dict(),
            "op": self.threshold.op,
            "label": self.threshold.label,
            "observed": self.observed,
            "passed": self.passed,
            "status": self.status,
            "margin": self.margin,
            "margin_pct": self.margin_pct,
            "explanation": self.explanation,
        }


def observe(threshold: Threshold, group: GroupStats | None) -> float | None:
    """The value of the threshold's metric in a group; for a group without requests, 0 for a floor and
    None (nothing to judge) for a ceiling."""
    if group is None or group.requests == 0:
        return 0.0 if threshold.op == ">=" else None
    return {
        "p95_ms": group.p95_ms,
        "failure_ratio": group.failure_ratio,
        "min_rps": group.rps,
        "min_requests": float(group.requests),
    }[threshold.metric]


def evaluate(thresholds: Iterable[Threshold], groups: Mapping[str, GroupStats]) -> list[Verdict]:
    """One verdict per threshold, in order."""
    verdicts = []
    for threshold in thresholds:
        observed = observe(threshold, groups.get(threshold.group))
        if observed is None:
            passed = True
        elif threshold.op == "<=":
            passed = observed <= threshold.limit
        else:
            passed = observed >= threshold.limit
        verdicts.append(Verdict(threshold, observed, passed))
    return verdicts
