"""The verdict of a run against its baseline, per metric: improved, same or regressed.

A change counts (improved or regressed, by its direction) only when it exceeds BOTH

1. its **relative bound** (`BOUNDS`: e.g. 15% for latencies, 10% for throughput; failure ratios, whose
   baseline is often 0, have an absolute bound in percentage points instead), and
2. the **noise** the data itself shows, the larger of
   - `Z` standard errors of the difference. Each run's standard error is the larger of what its own
     windows show (the spread of its 10-second windows, minutes for the CloudWatch figures, around the
     mean of the windows with the same number of users, over the square root of their number; ramps are
     left out, so the steps of the `step` shape are not taken for noise) and, for a percentile, what
     its number of requests allows (the distribution-free interval of a quantile: the response times at
     the ranks n*q -/+ Z*sqrt(n*q*(1-q)), read from the run's own percentiles; a p99 of 250 requests
     is little more than its slowest few). For a failure ratio: the binomial standard error of two
     ratios;
   - the range of the metric over the accepted baselines kept (`HISTORY` of them), when there are two or
     more: what the same kind of run has shown from one run to the next.

A metric with too few requests (`min_count`) or too few windows to measure its noise is *not judged*
and says why. A baseline is compared only with a run of the same target, profile and shape, and with
the same peak users and planned duration; otherwise the run "has no comparable baseline" and passes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests.regression.metrics import (
    EFFICIENCY,
    FAILURES,
    HIGHER_IS_BETTER,
    LABELS,
    LATENCY,
    OVERALL,
    QUANTILE,
    RAMP,
    SERVICE,
    THROUGHPUT,
    UNITS,
    RunMetrics,
    Sample,
    Window,
)

IMPROVED, SAME, REGRESSED, NOT_JUDGED = "improved", "same", "regressed", "not judged"
Z = 3.0
"""Standard errors of the difference a change must exceed (about 1 in 370 by chance for one metric)."""
HISTORY = 5
"""Accepted baselines whose spread counts (the newest first)."""
MIN_WINDOWS = 3
"""Steady windows a run needs before its own noise is taken as known."""


@dataclass(frozen=True)
class Bound:
    relative: float
    """The smallest change that counts, as a share of the baseline's value."""
    absolute: float = 0.0
    """...or at least this much (failure ratios: percentage points)."""
    min_count: int = 50
    """Requests (minutes for the CloudWatch figures) each run needs for the metric to be judged."""


BOUNDS: dict[str, Bound] = {
    # A percentile is judged when at least 10 requests lie beyond it: the p99 of 250 requests is the
    # slowest two or three, whatever the code does. Locust records whole milliseconds below 100 ms, so
    # two values each rounded differ by up to 1 ms for nothing: a change must be more than 2 ms.
    "p50_ms": Bound(0.15, absolute=2.0, min_count=50),
    "p95_ms": Bound(0.15, absolute=2.0, min_count=200),
    "p99_ms": Bound(0.15, absolute=2.0, min_count=1000),
    FAILURES: Bound(0.0, absolute=0.005),
    THROUGHPUT: Bound(0.10),
    **{metric: Bound(0.15, min_count=3) for metric in EFFICIENCY},
}


@dataclass(frozen=True)
class Noise:
    """What the runs show of a metric's noise; `band` is the change it must exceed."""

    band: float | None
    run_se: float | None
    baseline_se: float | None
    history_range: float | None
    history_runs: int


@dataclass
class Verdict:
    scope: str
    metric: str
    verdict: str
    baseline: float | None
    current: float | None
    change: float | None
    """current - baseline."""
    relative_bound: float | None
    noise: Noise | None
    note: str = ""

    @property
    def relative_change(self) -> float | None:
        if self.change is None or not self.baseline:
            return None
        return self.change / self.baseline

    @property
    def label(self) -> str:
        return f"{self.scope}: {LABELS.get(self.metric, self.metric)}"

    def explain(self) -> str:
        """One line: the values, the change, and what it had to exceed."""
        if self.baseline is None or self.current is None:
            return f"{self.label}: {self.note}"
        text = (
            f"{self.label}: {fmt(self.metric, self.baseline)} -> {fmt(self.metric, self.current)}"
            f" ({signed(self.metric, self.change or 0.0)}{_pct(self.relative_change)})"
        )
        if self.verdict != NOT_JUDGED and self.relative_bound is not None and self.noise is not None:
            noise = fmt(self.metric, self.noise.band or 0.0)
            text += f"; counts beyond {fmt(self.metric, self.relative_bound)} and the noise {noise}"
        if self.note:
            text += f"; {self.note}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "metric": self.metric,
            "label": self.label,
            "verdict": self.verdict,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "relative_change": self.relative_change,
            "relative_bound": self.relative_bound,
            "noise_band": self.noise.band if self.noise else None,
            "run_se": self.noise.run_se if self.noise else None,
            "baseline_se": self.noise.baseline_se if self.noise else None,
            "history_range": self.noise.history_range if self.noise else None,
            "history_runs": self.noise.history_runs if self.noise else 0,
            "note": self.note,
            "explanation": self.explain(),
        }


@dataclass
class Comparison:
    """The whole verdict; `comparable` is False when there was no baseline of the same kind."""

    run: RunMetrics
    baseline: RunMetrics | None
    comparable: bool
    reason: str
    verdicts: list[Verdict] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    """Run ids of the accepted baselines whose spread was used (the baseline first)."""

    @property
    def regressed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == REGRESSED]

    @property
    def improved(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == IMPROVED]

    @property
    def passed(self) -> bool:
        return not self.regressed

    @property
    def headline(self) -> str:
        if not self.comparable:
            return f"no comparable baseline: {self.reason}; the regression gate passes"
        assert self.baseline is not None
        judged = [v for v in self.verdicts if v.verdict != NOT_JUDGED]
        counts = (
            f"{len(self.regressed)} regressed, {len(self.improved)} improved, "
            f"{len(judged) - len(self.regressed) - len(self.improved)} same, "
            f"{len(self.verdicts) - len(judged)} not judged"
        )
        outcome = "REGRESSED" if self.regressed else "no regression"
        return f"{outcome} against baseline {self.baseline.run_id} ({counts})"


def fmt(metric: str, value: float) -> str:
    if metric == FAILURES:
        return f"{value:.2%}"
    unit = UNITS.get(metric, "")
    digits = 0 if metric in LATENCY and abs(value) >= 10 else 2 if metric != "usd_per_million" else 4
    return f"{value:,.{digits}f} {unit}".strip()


def signed(metric: str, value: float) -> str:
    return ("+" if value >= 0 else "-") + fmt(metric, abs(value))


def _pct(relative: float | None) -> str:
    return "" if relative is None else f", {relative:+.0%}"


def standard_error(windows: Sequence[Window]) -> float | None:
    """The spread of the steady windows around their level's mean, over the square root of their number.

    Windows are grouped by level (users throughout the window); a level needs two windows to say anything.
    None when fewer than MIN_WINDOWS windows remain or they leave no degree of freedom."""
    levels: dict[int, list[float]] = {}
    for window in windows:
        if window.level != RAMP:
            levels.setdefault(window.level, []).append(window.value)
    used = [values for values in levels.values() if len(values) >= 2]
    count = sum(len(values) for values in used)
    freedom = count - len(used)
    if count < MIN_WINDOWS or freedom < 1:
        return None
    squares = sum((v - sum(values) / len(values)) ** 2 for values in used for v in values)
    return math.sqrt(squares / freedom) / math.sqrt(count)


def interpolate(points: Sequence[tuple[float, float]], quantile: float) -> float:
    """The response time at `quantile`, linear between the known percentiles."""
    quantile = min(1.0, max(0.0, quantile))
    for (q0, v0), (q1, v1) in itertools.pairwise(points):
        if q0 <= quantile <= q1:
            return v0 if q1 == q0 else v0 + (v1 - v0) * (quantile - q0) / (q1 - q0)
    return points[-1][1] if quantile > points[-1][0] else points[0][1]


def quantile_se(sample: Sample) -> float | None:
    """What the number of requests allows a percentile to move by chance, as a standard error: half the
    width of its distribution-free Z-interval, over Z. None without the run's distribution."""
    q = QUANTILE.get(sample.metric)
    if q is None or len(sample.distribution) < 2 or sample.count <= 0:
        return None
    half = Z * math.sqrt(q * (1 - q) / sample.count)
    low, high = interpolate(sample.distribution, q - half), interpolate(sample.distribution, q + half)
    return (high - low) / (2 * Z)


def _largest(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def binomial_se(a: Sample, b: Sample) -> float:
    """Standard error of the difference of two failure ratios (pooled)."""
    failures = a.value * a.count + b.value * b.count
    total = a.count + b.count
    pooled = failures / total if total else 0.0
    # With no failure at all, still allow for one in the larger run (else any single failure would count).
    pooled = max(pooled, 1 / max(total, 1))
    return math.sqrt(pooled * (1 - pooled) * (1 / max(a.count, 1) + 1 / max(b.count, 1)))


def judge(
    current: Sample, baseline: Sample, history: Iterable[Sample] = (), bound: Bound | None = None
) -> Verdict:
    """The verdict of one metric (see the module docstring)."""
    bound = bound or BOUNDS[current.metric]
    verdict = Verdict(
        current.scope,
        current.metric,
        NOT_JUDGED,
        baseline.value,
        current.value,
        current.value - baseline.value,
        None,
        None,
    )
    fewest = min(current.count, baseline.count)
    if fewest < bound.min_count:
        what = "minutes" if current.metric in EFFICIENCY else "requests"
        verdict.note = f"too few {what} to judge ({fewest} < {bound.min_count})"
        return verdict
    past = [s.value for s in history]
    history_range = (max(past) - min(past)) if len(past) >= 2 else None
    run_se = baseline_se = None
    if current.metric == FAILURES:
        window_band = Z * binomial_se(current, baseline)
    else:
        windows_known = standard_error(current.windows), standard_error(baseline.windows)
        run_se = _largest(windows_known[0], quantile_se(current))
        baseline_se = _largest(windows_known[1], quantile_se(baseline))
        if None in windows_known or run_se is None or baseline_se is None:
            verdict.note = "too few steady windows to measure the noise"
            return verdict
        window_band = Z * math.hypot(run_se, baseline_se)
    band = max(window_band, history_range or 0.0)
    verdict.noise = Noise(band, run_se, baseline_se, history_range, len(past))
    verdict.relative_bound = max(bound.relative * abs(baseline.value), bound.absolute)
    change = current.value - baseline.value
    if abs(change) <= verdict.relative_bound or abs(change) <= band:
        verdict.verdict = SAME
        return verdict
    better = change > 0 if current.metric in HIGHER_IS_BETTER else change < 0
    verdict.verdict = IMPROVED if better else REGRESSED
    return verdict


def comparable(run: RunMetrics, baseline: RunMetrics) -> str | None:
    """Why the two runs cannot be compared, or None."""
    for name in ("target", "profile", "shape", "peak_users", "planned_duration_s"):
        mine, theirs = getattr(run, name), getattr(baseline, name)
        if mine != theirs:
            return f"the baseline {baseline.run_id} has {name.replace('_', ' ')} {theirs}, this run {mine}"
    return None


ORDER = {scope: i for i, scope in enumerate((OVERALL, SERVICE))}
METRIC_ORDER = {m: i for i, m in enumerate((*LATENCY, FAILURES, THROUGHPUT, *EFFICIENCY))}


def compare(
    run: RunMetrics, baseline: RunMetrics | None, history: Sequence[RunMetrics] = (), *, reason: str = ""
) -> Comparison:
    """Every metric the run and the baseline share. `history`: the accepted baselines, newest first,
    the baseline itself among them (only the first HISTORY count)."""
    if baseline is None:
        return Comparison(run, None, False, reason or "no baseline has been accepted yet")
    why = comparable(run, baseline)
    if why:
        return Comparison(run, baseline, False, why)
    kept = [h for h in history if comparable(h, baseline) is None][:HISTORY]
    if not any(h.run_id == baseline.run_id for h in kept):
        kept = [baseline, *kept][:HISTORY]
    verdicts = []
    for sample_key, sample in run.samples.items():
        theirs = baseline.samples.get(sample_key)
        if theirs is None:
            continue
        past = [h.samples[sample_key] for h in kept if sample_key in h.samples]
        verdicts.append(judge(sample, theirs, past))
    for sample_key, theirs in baseline.samples.items():
        if sample_key not in run.samples:
            verdicts.append(
                Verdict(theirs.scope, theirs.metric, NOT_JUDGED, theirs.value, None, None, None, None)
            )
            verdicts[-1].note = "not measured in this run"
    verdicts.sort(key=lambda v: (ORDER.get(v.scope, 2), v.scope, METRIC_ORDER.get(v.metric, 9)))
    return Comparison(run, baseline, True, "", verdicts, [h.run_id for h in kept])
