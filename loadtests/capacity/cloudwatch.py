"""The thin boto3 layer: which CloudWatch metrics the review reads, and one function that reads them.

Resource names come from the stage's outputs; the pipeline sets them as environment variables of the
same names (`ClusterName`, `ServiceName`, `LoadBalancerFullName`, `DbClusterIdentifier`), and flags
override them. The load balancer's figures are read for the whole load balancer, not one target group: the
web service deploys gradually over two target groups, and which one serves alternates with every deployment
(the load balancer has no other targets). Metrics whose resources are unknown are not queried.

Percentile statistics (`p95`) are fetched in a separate call, because an endpoint that cannot compute
them (the local moto server) fails the whole call; a failure there costs only those series.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

Series = dict[int, float]
"""Values by the epoch second of the start of their one-minute period."""

ENV_NAMES = {
    "cluster_name": "ClusterName",
    "service_name": "ServiceName",
    "load_balancer": "LoadBalancerFullName",
    "db_cluster": "DbClusterIdentifier",
}


@dataclass(frozen=True)
class Resources:
    """The stage's resources whose metrics the review reads (any may be unknown)."""

    cluster_name: str | None = None
    service_name: str | None = None
    load_balancer: str | None = None
    db_cluster: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: str | None) -> Resources:
        values = {name: overrides.get(name) or env.get(var) or None for name, var in ENV_NAMES.items()}
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def missing(self) -> list[str]:
        """The environment variables (stage outputs) that were not given."""
        return [ENV_NAMES[f.name] for f in fields(self) if not getattr(self, f.name)]


@dataclass(frozen=True)
class MetricSpec:
    key: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    label: str

    @property
    def percentile(self) -> bool:
        return self.stat.startswith("p")

    def query(self, query_id: str, period: int) -> dict[str, Any]:
        return {
            "Id": query_id,
            "Label": self.label,
            "ReturnData": True,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": period,
                "Stat": self.stat,
            },
        }


def metric_specs(resources: Resources) -> list[MetricSpec]:
    """The metrics of issue 10 for the resources that are known."""
    r = resources
    specs: list[MetricSpec] = []
    if r.cluster_name and r.service_name:
        service = (("ClusterName", r.cluster_name), ("ServiceName", r.service_name))
        specs += [
            MetricSpec(
                "tasks", "ECS/ContainerInsights", "RunningTaskCount", service, "Maximum", "running tasks"
            ),
            MetricSpec("cpu", "AWS/ECS", "CPUUtilization", service, "Average", "service CPU %"),
        ]
    if r.load_balancer:
        target = (("LoadBalancer", r.load_balancer),)  # both target groups (see the module docstring)
        specs += [
            MetricSpec("alb_requests", "AWS/ApplicationELB", "RequestCount", target, "Sum", "ALB requests"),
            MetricSpec(
                "alb_5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", target, "Sum", "target 5xx"
            ),
            MetricSpec(
                "alb_response_avg",
                "AWS/ApplicationELB",
                "TargetResponseTime",
                target,
                "Average",
                "target time avg",
            ),
            MetricSpec(
                "alb_response_p95",
                "AWS/ApplicationELB",
                "TargetResponseTime",
                target,
                "p95",
                "target time p95",
            ),
        ]
    if r.load_balancer:
        specs.append(
            MetricSpec(
                "elb_5xx",
                "AWS/ApplicationELB",
                "HTTPCode_ELB_5XX_Count",
                (("LoadBalancer", r.load_balancer),),
                "Sum",
                "load balancer 5xx",
            )
        )
    if r.db_cluster:
        db = (("DBClusterIdentifier", r.db_cluster),)
        specs += [
            MetricSpec("acu", "AWS/RDS", "ServerlessDatabaseCapacity", db, "Average", "Aurora ACUs"),
            MetricSpec("db_connections", "AWS/RDS", "DatabaseConnections", db, "Average", "DB connections"),
        ]
    return specs


@dataclass
class Fetched:
    series: dict[str, Series]
    errors: list[str]


def fetch(client: Any, specs: list[MetricSpec], start: datetime, end: datetime, period: int = 60) -> Fetched:
    """Read every spec's one-minute datapoints between `start` and `end` with GetMetricData."""
    result = Fetched(series={spec.key: {} for spec in specs}, errors=[])
    basic = [s for s in specs if not s.percentile]
    percentiles = [s for s in specs if s.percentile]
    for batch in (basic, percentiles):
        if not batch:
            continue
        try:
            _fetch_batch(client, batch, start, end, period, result.series)
        except Exception as error:  # botocore's ClientError/EndpointConnectionError and friends
            names = ", ".join(f"{s.name} {s.stat}" for s in batch)
            result.errors.append(f"CloudWatch could not return {names}: {error}")
    return result


def _fetch_batch(
    client: Any, batch: list[MetricSpec], start: datetime, end: datetime, period: int, out: dict[str, Series]
) -> None:
    by_id = {f"m{i}": spec for i, spec in enumerate(batch)}
    queries = [spec.query(query_id, period) for query_id, spec in by_id.items()]
    for offset in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "MetricDataQueries": queries[offset : offset + 500],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            response = client.get_metric_data(**kwargs)
            for item in response.get("MetricDataResults", []):
                series = out[by_id[item["Id"]].key]
                for stamp, value in zip(item.get("Timestamps", []), item.get("Values", []), strict=False):
                    if value is not None:
                        series[int(stamp.timestamp()) // 60 * 60] = float(value)
            token = response.get("NextToken")
            if not token:
                break


def make_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A CloudWatch client (credentials and region from boto3's usual chain unless given)."""
    import boto3

    return boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint_url)
