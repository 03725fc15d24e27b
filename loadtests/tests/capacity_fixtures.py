"""A hand-checked run for the capacity tests: a synthetic run folder and its CloudWatch datapoints.

The run starts 30 s into minute T0 and lasts 5.5 minutes, so minutes +1..+4 are whole. Per minute:

    minute  API req  req/s  p95 ms  failed  tasks  CPU %  ACUs   met the target (p95 <= 300, <= 1% failed)
    +0      300      (partial)                1      20     0.5    no (partial)
    +1      1200     20     150     0       1      45     0.5    yes: 20 req/s per task
    +2      2100     35     250     0       1      70     1.0    yes: 35 req/s per task  <- best
    +3      3600     60     200     60      1      95     1.5    no: 1.67% failed
    +4      4800     80     450     0       2      80     2.0    no: p95 450 ms
    +5      (partial)                         2      50     2.0

Hand-computed figures (defaults: target 100 req/s, headroom 30%, peak factor 3, staging 512 -> prod 1024
CPU units): requests per task 35 (70 for prod tasks); tasks for 100 req/s = ceil(130 / 70) = 2; for 300
req/s = ceil(390 / 70) = 6. The ALB counts the same requests, so at +1 one task gets 1200 requests a minute,
over staging's target of 1000: scaling is due from +1, the first new task comes at +4 (3 minutes). ACUs: a
line from 0.5 (quietest) to 2.0 at 80 req/s -> 2.375 at 100 req/s -> 2.5; 6.125 at 300 req/s x 1.3 =
7.96 -> 8.0. Cost per month (730 h): 2 tasks x (0.03238 + 2 x 0.00356) = $57.67, 6 tasks = $173.01;
Aurora 2.5 ACU x 2 instances x $0.12 = $438.00, 8 ACU = $1401.60.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

T0 = 1_798_761_600  # 2027-01-01T00:00:00Z, a whole minute
STARTED = T0 + 30
FINISHED = T0 + 330
API = {1: (1200, 0, 150), 2: (2100, 0, 250), 3: (3600, 60, 200), 4: (4800, 0, 450)}
TASKS = {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2}
CPU = {0: 20, 1: 45, 2: 70, 3: 95, 4: 80, 5: 50}
ACU = {0: 0.5, 1: 0.5, 2: 1.0, 3: 1.5, 4: 2.0, 5: 2.0}
USERS = {0: 10, 1: 20, 2: 40, 3: 60, 4: 80, 5: 80}
RESOURCES = {
    "ClusterName": "yoctogram-staging",
    "ServiceName": "yoctogram-staging-web",
    "LoadBalancerFullName": "app/yoctogram-staging/0123456789abcdef",
    "DbClusterIdentifier": "yoctogram-staging-db",
}


def series() -> dict[str, dict[int, float]]:
    """The CloudWatch series as the thin layer returns them."""
    return {
        "tasks": {T0 + 60 * k: float(v) for k, v in TASKS.items()},
        "cpu": {T0 + 60 * k: float(v) for k, v in CPU.items()},
        "acu": {T0 + 60 * k: v for k, v in ACU.items()},
        "alb_requests": {T0 + 60 * k: float(API.get(k, (300, 0, 0))[0]) for k in range(6)},
        "db_connections": {T0 + 60 * k: 10.0 + k for k in range(6)},
    }


def datapoints() -> list[dict[str, Any]]:
    """The same metrics as recorded datapoints (PutMetricData input), 10 s into each minute."""
    r = RESOURCES
    service = [
        {"Name": "ClusterName", "Value": r["ClusterName"]},
        {"Name": "ServiceName", "Value": r["ServiceName"]},
    ]
    target = [{"Name": "LoadBalancer", "Value": r["LoadBalancerFullName"]}]
    db = [{"Name": "DBClusterIdentifier", "Value": r["DbClusterIdentifier"]}]
    out = []
    for k in range(6):
        when = datetime.fromtimestamp(T0 + 60 * k + 10, UTC)
        out += [
            {
                "Namespace": "ECS/ContainerInsights",
                "MetricName": "RunningTaskCount",
                "Dimensions": service,
                "Value": TASKS[k],
            },
            {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization", "Dimensions": service, "Value": CPU[k]},
            {
                "Namespace": "AWS/RDS",
                "MetricName": "ServerlessDatabaseCapacity",
                "Dimensions": db,
                "Value": ACU[k],
            },
            {
                "Namespace": "AWS/RDS",
                "MetricName": "DatabaseConnections",
                "Dimensions": db,
                "Value": 10.0 + k,
            },
            {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "RequestCount",
                "Dimensions": target,
                "Value": float(API.get(k, (300, 0, 0))[0]),
            },
            {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "TargetResponseTime",
                "Dimensions": target,
                "Value": 0.05,
            },
        ]
        for point in out[-6:]:
            point["Timestamp"] = when
    return out


def make_run(folder: Path, *, thresholds_failed: bool = False, with_minutes: bool = True) -> Path:
    """A run folder as `python -m loadtests run` leaves it (the files the review reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    verdicts = [
        {
            "group": "/feed/latest",
            "metric": "p95_ms",
            "op": "<=",
            "limit": 300.0,
            "observed": 240.0,
            "passed": True,
            "status": "pass",
            "label": "/feed/latest: p95_ms <= 300 ms",
            "explanation": "/feed/latest: p95_ms <= 300 ms: observed 240 ms, headroom 60 ms (20.0%)",
        },
        {
            "group": "Aggregated",
            "metric": "failure_ratio",
            "op": "<=",
            "limit": 0.005,
            "observed": 0.02 if thresholds_failed else 0.004,
            "passed": not thresholds_failed,
            "status": "fail" if thresholds_failed else "pass",
            "label": "Aggregated: failure_ratio <= 0.50%",
            "explanation": "Aggregated: failure_ratio <= 0.50%: observed 2.00%, over by 1.50% (300.0%)"
            if thresholds_failed
            else "Aggregated: failure_ratio <= 0.50%: observed 0.40%, headroom 0.10% (20.0%)",
        },
    ]
    group = {
        "name": "/feed/latest",
        "method": "GET",
        "requests": 9000,
        "failures": 0,
        "median_ms": 40.0,
        "p95_ms": 240.0,
        "p99_ms": 400.0,
        "avg_ms": 60.0,
        "max_ms": 900.0,
        "rps": 30.0,
        "failure_ratio": 0.0,
    }
    summary = {
        "run_id": "270101-000030-ab",
        "host": "https://staging.yoctogram.example.com",
        "shape": "step",
        "profile": "staging",
        "peak_users": 80,
        "planned_duration_s": 300,
        "duration_s": 300.0,
        "started_at": "2027-01-01T00:00:30+00:00",
        "finished_at": "2027-01-01T00:05:30+00:00",
        "started_epoch": STARTED,
        "finished_epoch": FINISHED,
        "worker_processes": 0,
        "problem": None,
        "passed": not thresholds_failed,
        "thresholds_total": 2,
        "thresholds_failed": int(thresholds_failed),
        "thresholds": verdicts,
        "groups": [group],
        "aggregated": {
            **group,
            "name": "Aggregated",
            "method": "",
            "requests": 12300,
            "failures": 60,
            "failure_ratio": 0.0049,
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    if with_minutes:
        with (folder / "minutes.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
                    "minute",
                    "time_utc",
                    "group",
                    "requests",
                    "failures",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                    "max_ms",
                ]
            )
            writer.writerow([T0, "", "API", 300, 0, 40, 100, 150, 200])
            writer.writerow([T0, "", "All", 400, 0, 40, 100, 150, 200])
            for k, (n, f, p95) in API.items():
                writer.writerow([T0 + 60 * k, "", "API", n, f, p95 / 3, p95, p95 * 1.5, p95 * 2])
                writer.writerow([T0 + 60 * k, "", "All", n + 100, f, p95 / 3, p95, p95 * 1.5, p95 * 2])
    with (folder / "locust_stats_history.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "User Count", "Type", "Name", "Requests/s"])
        for second in range(STARTED, FINISHED, 5):
            writer.writerow([second, USERS[(second - T0) // 60], "", "Aggregated", "1.0"])
            writer.writerow([second, USERS[(second - T0) // 60], "GET", "/feed/latest", "1.0"])
    return folder
