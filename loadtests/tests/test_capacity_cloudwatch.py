"""The CloudWatch layer: which metrics it asks for, and a round trip through the local moto server.

Recorded datapoints are put into moto's CloudWatch and read back by the same code that reads AWS
(`python -m loadtests.capacity` with --endpoint-url), so the page is built from real GetMetricData answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from loadtests.capacity import cli
from loadtests.capacity.cloudwatch import Resources, fetch, metric_specs
from loadtests.tests.capacity_fixtures import FINISHED, RESOURCES, STARTED, T0, TASKS, datapoints, make_run


def test_resources_come_from_the_stage_output_variables_and_flags_override_them() -> None:
    resources = Resources.from_env(RESOURCES, cluster_name="other")
    assert resources.cluster_name == "other" and resources.db_cluster == "yoctogram-staging-db"
    assert resources.missing() == []
    partial = Resources.from_env({"DbClusterIdentifier": "db"})
    assert partial.any and partial.missing() == [
        "ClusterName",
        "ServiceName",
        "LoadBalancerFullName",
    ]
    assert not Resources.from_env({}).any


def test_the_metrics_of_issue_10_are_asked_for_with_their_dimensions() -> None:
    specs = {s.key: s for s in metric_specs(Resources.from_env(RESOURCES))}
    assert set(specs) == {
        "tasks",
        "cpu",
        "alb_requests",
        "alb_5xx",
        "alb_response_avg",
        "alb_response_p95",
        "elb_5xx",
        "acu",
        "db_connections",
    }
    assert (specs["tasks"].namespace, specs["tasks"].name, specs["tasks"].stat) == (
        "ECS/ContainerInsights",
        "RunningTaskCount",
        "Maximum",
    )
    assert specs["acu"].name == "ServerlessDatabaseCapacity"
    # The whole load balancer: both target groups of the gradual deploys, whichever serves.
    assert dict(specs["alb_requests"].dimensions) == {"LoadBalancer": RESOURCES["LoadBalancerFullName"]}
    assert specs["alb_response_p95"].percentile and not specs["cpu"].percentile
    query = specs["cpu"].query("m1", 60)
    assert query["MetricStat"]["Period"] == 60 and query["MetricStat"]["Stat"] == "Average"
    only_db = metric_specs(Resources(db_cluster="db"))
    assert {s.key for s in only_db} == {"acu", "db_connections"}


@pytest.fixture
def cloudwatch(moto_endpoint: str) -> Any:
    client = boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name="us-west-2")
    points = datapoints()
    for offset in range(0, len(points), 20):
        batch = points[offset : offset + 20]
        for namespace in {p["Namespace"] for p in batch}:
            client.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {k: v for k, v in p.items() if k != "Namespace"}
                    for p in batch
                    if p["Namespace"] == namespace
                ],
            )
    return client


def test_recorded_datapoints_come_back_per_minute(cloudwatch: Any) -> None:
    specs = metric_specs(Resources.from_env(RESOURCES))
    got = fetch(
        cloudwatch, specs, datetime.fromtimestamp(T0 - 300, UTC), datetime.fromtimestamp(T0 + 660, UTC)
    )
    assert got.series["tasks"] == {T0 + 60 * k: float(v) for k, v in TASKS.items()}
    assert got.series["acu"][T0 + 240] == 2.0
    assert got.series["alb_requests"][T0 + 120] == 2100
    # moto cannot compute percentiles: that costs the p95 series only, and says so.
    assert got.series["alb_response_p95"] == {}
    assert len(got.errors) == 1 and "TargetResponseTime p95" in got.errors[0]
    assert got.series["alb_response_avg"][T0 + 60] == pytest.approx(0.05)


def test_the_cli_builds_the_page_from_cloudwatch(
    cloudwatch: Any, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in RESOURCES.items():
        monkeypatch.setenv(name, value)
    run = make_run(tmp_path / "run")
    baseline = ["--baseline-dir", str(tmp_path / "baseline")]
    assert cli.main([str(run), "--endpoint-url", moto_endpoint, "--region", "us-west-2", *baseline]) == 0
    figures = json.loads((run / "capacity.json").read_text())
    assert figures["requests_per_task"] == 35.0
    assert figures["tasks_needed_target"] == 2 and figures["tasks_needed_peak"] == 6
    assert figures["scale_out"]["happened"] is True and figures["scale_out"]["reaction_min"] == 3
    assert figures["recommendation"]["aurora_max_acu"] == 8.0
    html = (run / "capacity.html").read_text()
    assert 'id="chart-tasks"><img' in html and 'id="chart-acu"><img' in html
    assert "TargetResponseTime p95" in html  # the one series moto could not give is listed as missing
    assert STARTED < FINISHED


def test_without_resource_names_cloudwatch_is_not_read_and_the_page_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in RESOURCES:
        monkeypatch.delenv(name, raising=False)
    run = make_run(tmp_path / "run")
    assert cli.main([str(run), "--baseline-dir", str(tmp_path / "baseline")]) == 0
    html = (run / "capacity.html").read_text()
    assert "No CloudWatch data" in html and "a run against the local stack has none" in html
    assert 'id="chart-tasks" class="missing"' in html and 'id="chart-acu" class="missing"' in html
    assert "No recommendation" in html
    out = capsys.readouterr().out
    assert "headline not computed: the running task count is unknown" in out
    assert cli.main([str(tmp_path / "empty")]) == 2
