"""Run folders for the regression gate's tests: two saved real runs, and copies made from them here.

`fixtures/smoke-local-run1` and `fixtures/smoke-local-run2` are two real runs of the same code against
the local stack (`make loadtest SHAPE=smoke RUN_TIME=90s`, one after the other; see fixtures/README.md),
trimmed to the files the gate reads. Everything else is derived from them, and says so in its folder
name and in its summary.json (`fixture`):

- `scaled(...)`: every latency of a run multiplied by a known factor (a release 3x slower);
- `noisy(...)`: a run whose every figure is drawn from the spread the two real runs show between them.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path
from typing import Any

from loadtests.regression import metrics

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RUN1 = FIXTURES / "smoke-local-run1"
RUN2 = FIXTURES / "smoke-local-run2"

_SUMMARY_LATENCIES = ("median_ms", "p95_ms", "p99_ms", "avg_ms", "max_ms")
_STATS_LATENCIES = (
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "50%",
    "66%",
    "75%",
    "80%",
    "90%",
    "95%",
    "98%",
    "99%",
    "99.9%",
    "99.99%",
    "100%",
)
_HISTORY_LATENCIES = (
    *_STATS_LATENCIES[4:],
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
)
_MINUTE_LATENCIES = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def _scale_csv(source: Path, target: Path, columns: tuple[str, ...], factor: float) -> None:
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        for column in columns:
            value = row.get(column)
            if value not in (None, "", "N/A"):
                row[column] = f"{float(value) * factor:g}"
    with target.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def scaled(source: Path, destination_root: Path, factor: float) -> Path:
    """A copy of the run folder with every response time multiplied by `factor` (counts unchanged)."""
    target = destination_root / f"{source.name}-latency-x{factor:g}"
    target.mkdir(parents=True)
    summary = json.loads((source / "summary.json").read_text())
    for group in [*summary["groups"], summary["aggregated"]]:
        for name in _SUMMARY_LATENCIES:
            group[name] *= factor
    summary["run_id"] = f"{summary['run_id']}-x{factor:g}"
    summary["fixture"] = f"synthetic: {source.name} with every latency multiplied by {factor:g}"
    (target / "summary.json").write_text(json.dumps(summary, indent=2))
    _scale_csv(source / "locust_stats.csv", target / "locust_stats.csv", _STATS_LATENCIES, factor)
    _scale_csv(
        source / "locust_stats_history.csv", target / "locust_stats_history.csv", _HISTORY_LATENCIES, factor
    )
    _scale_csv(source / "minutes.csv", target / "minutes.csv", _MINUTE_LATENCIES, factor)
    return target


def noisy(first: metrics.RunMetrics, second: metrics.RunMetrics, seed: int) -> metrics.RunMetrics:
    """A run made of the noise two real runs of the same code show: each figure is taken at a random
    point between (and up to half the gap beyond) the two runs' values, and each window from either."""
    rng = random.Random(seed)
    samples = {}
    for key, a in first.samples.items():
        b = second.samples.get(key)
        if b is None:
            samples[key] = a
            continue
        t = rng.uniform(-0.5, 1.5)
        value = max(0.0, a.value + t * (b.value - a.value))
        windows = [rng.choice(pair) for pair in zip(a.windows, b.windows, strict=False)]
        pick = a if rng.random() < 0.5 else b
        samples[key] = metrics.Sample(
            a.scope, a.metric, value, rng.choice((a.count, b.count)), windows, pick.distribution
        )
    data: dict[str, Any] = first.as_dict()
    data["run_id"] = f"noisy-{seed}"
    noisy_run = metrics.RunMetrics.from_dict(data)
    noisy_run.samples = samples
    return noisy_run


def copy_run(source: Path, destination: Path, **summary_changes: Any) -> Path:
    """A copy of a run folder, with some summary.json fields changed (another shape, target, ...)."""
    shutil.copytree(source, destination)
    summary = json.loads((destination / "summary.json").read_text())
    summary.update(summary_changes)
    (destination / "summary.json").write_text(json.dumps(summary, indent=2))
    return destination
