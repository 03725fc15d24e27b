"""Typed, frozen per-environment settings for the deployable Stage.

Staging and prod are the same `YoctogramStage` built from two of these objects: every difference
between them is a field here, never an `if` on the environment's name in a stack.

The account ids, domain names and hosted zone ids below are placeholders. The team that adopts the
project replaces them with its own values (and keeps `cdk.context.json` free of lookups): nothing in
the stacks looks anything up at synth time, so `cdk synth` runs offline with no AWS credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_logs as logs

REGION = "us-west-2"

_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}
"""The region every stack of a stage is deployed to (the edge stack of issue 8 goes to us-east-1)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AlarmThresholds:
    """Where an alarm fires; chosen per environment so staging can be noisier than prod."""

    target_5xx_per_minute: int
    """HTTP 5xx answered by the tasks, summed per minute."""
    elb_5xx_per_minute: int
    """HTTP 5xx answered by the load balancer itself (no healthy target, timeouts)."""
    target_response_time_p95_seconds: float
    """p95 of the time the tasks take to answer, per minute."""
    service_cpu_percent: int
    """Average CPU of the web service's tasks; above the scaling target, so it means scaling lags."""
    queue_oldest_message_seconds: int
    """Age of the oldest message the event worker has not yet handled."""
    evaluation_periods: int
    """Consecutive one-minute periods over the threshold before an alarm fires."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentConfig:
    """Everything that differs between staging and prod."""

    name: str
    """Lowercase environment name: used in stack names, secret names and tags, never in construct ids."""
    account: str
    region: str = REGION
    availability_zones: tuple[str, str]
    """Fixed here so synth never asks AWS which zones exist."""

    # DNS
    domain_name: str
    """The site's domain: CloudFront (issue 8) serves the web client, the API and the media here."""
    hosted_zone_id: str
    hosted_zone_name: str
    """The Route 53 zone holding `domain_name` and `origin_domain_name`, imported by attributes."""
    origin_domain_name: str
    """Name of the regional load balancer's certificate; CloudFront (issue 8) uses it as its origin."""

    # Network
    vpc_cidr: str
    nat_gateways: int

    # Web service and event worker (Fargate, ARM64)
    task_cpu: int
    """Fargate CPU units of one web task (all containers)."""
    task_memory_mib: int
    min_tasks: int
    max_tasks: int
    scaling_cpu_target_percent: int
    scaling_requests_per_target: int
    """ALB requests per target per minute that autoscaling aims at."""
    web_concurrency: int
    """Uvicorn workers per task (`WEB_CONCURRENCY`)."""
    db_pool_size: int
    db_max_overflow: int
    worker_tasks: int
    """Event worker tasks; one is enough for the event rate of a photo app, two give prod redundancy."""
    worker_cpu: int
    worker_memory_mib: int

    # Data
    aurora_min_acu: float
    aurora_max_acu: float
    aurora_readers: int
    database_name: str
    database_port: int
    """Not PostgreSQL's well-known 5432, so a scan for the default port finds nothing (cdk-nag RDS11)."""
    backup_retention_days: int
    retain_data: bool
    """Deletion protection, termination protection and RETAIN on the database, buckets and secrets."""

    # Observability
    log_retention_days: int
    """CloudWatch log groups and access logs; one of CloudWatch's allowed values (see `_RETENTION`)."""
    alarm_thresholds: AlarmThresholds
    alarm_email: str | None
    """Subscribed to the alarm topic when set; the adopting team sets its on-call address."""
    datadog_site: str
    datadog_agent_image: str
    log_router_base_image: str

    # Secrets created outside the stacks (by the operators, once per environment; see the names)
    datadog_api_key_secret_name: str
    media_signing_private_key_secret_name: str
    media_signing_key_id: str
    """CloudFront public key id (`MEDIA_SIGNING_KEY_ID`). Issue 8 creates the key group next to
    CloudFront and passes its id to `AppStack`; until then this placeholder is what tasks get."""

    def __post_init__(self) -> None:
        if len(self.availability_zones) != 2:
            raise ValueError(f"{self.name}: the network spans exactly 2 availability zones")
        if not all(az.startswith(self.region) for az in self.availability_zones):
            raise ValueError(
                f"{self.name}: availability zones {self.availability_zones} are not in {self.region}"
            )
        if not 0 < self.min_tasks <= self.max_tasks:
            raise ValueError(f"{self.name}: need 0 < min_tasks <= max_tasks")
        if not 0.5 <= self.aurora_min_acu <= self.aurora_max_acu:
            raise ValueError(f"{self.name}: need 0.5 <= aurora_min_acu <= aurora_max_acu")
        if self.log_retention_days not in _RETENTION:
            raise ValueError(f"{self.name}: log_retention_days must be one of {sorted(_RETENTION)}")
        if not self.domain_name.endswith(self.hosted_zone_name) or not self.origin_domain_name.endswith(
            self.hosted_zone_name
        ):
            raise ValueError(f"{self.name}: domain names must sit in the hosted zone {self.hosted_zone_name}")

    @property
    def env(self) -> cdk.Environment:
        """The CDK environment every stack of this stage is pinned to."""
        return cdk.Environment(account=self.account, region=self.region)

    @property
    def log_retention(self) -> logs.RetentionDays:
        """`log_retention_days` as the CDK enum that log groups take."""
        return _RETENTION[self.log_retention_days]

    @property
    def site_url(self) -> str:
        """`https://` + the site's domain: `MEDIA_BASE_URL`, the CORS origin and the `SiteUrl` output."""
        return f"https://{self.domain_name}"

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        """RETAIN for stateful resources in an environment whose data matters, else DESTROY."""
        return cdk.RemovalPolicy.RETAIN if self.retain_data else cdk.RemovalPolicy.DESTROY

    def stack_name(self, unit: str) -> str:
        """CloudFormation stack name of one deployment unit, e.g. `yoctogram-staging-data`."""
        return f"yoctogram-{self.name}-{unit}"


_DATADOG_AGENT_IMAGE = "public.ecr.aws/datadog/agent:7.60.0"
_LOG_ROUTER_BASE_IMAGE = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.4"

STAGING = EnvironmentConfig(
    name="staging",
    account="111111111111",  # placeholder: the adopting team's staging account
    availability_zones=("us-west-2a", "us-west-2b"),
    domain_name="staging.yoctogram.example.com",
    hosted_zone_id="Z0000000000000STAGING",  # placeholder
    hosted_zone_name="staging.yoctogram.example.com",
    origin_domain_name="origin.staging.yoctogram.example.com",
    vpc_cidr="10.10.0.0/16",
    nat_gateways=1,  # one shared NAT gateway: staging accepts an AZ outage for the saved cost
    task_cpu=512,
    task_memory_mib=1024,
    min_tasks=1,
    max_tasks=3,
    scaling_cpu_target_percent=60,
    scaling_requests_per_target=1000,
    web_concurrency=2,
    db_pool_size=5,
    db_max_overflow=5,
    worker_tasks=1,
    worker_cpu=256,
    worker_memory_mib=512,
    aurora_min_acu=0.5,
    aurora_max_acu=4,
    aurora_readers=0,
    database_name="yoctogram",
    database_port=5433,
    backup_retention_days=7,
    retain_data=False,
    log_retention_days=30,
    alarm_thresholds=AlarmThresholds(
        target_5xx_per_minute=10,
        elb_5xx_per_minute=10,
        target_response_time_p95_seconds=1.5,
        service_cpu_percent=85,
        queue_oldest_message_seconds=600,
        evaluation_periods=3,
    ),
    alarm_email=None,
    datadog_site="datadoghq.com",
    datadog_agent_image=_DATADOG_AGENT_IMAGE,
    log_router_base_image=_LOG_ROUTER_BASE_IMAGE,
    datadog_api_key_secret_name="yoctogram/staging/datadog-api-key",  # noqa: S106 (a name, not a secret)
    media_signing_private_key_secret_name="yoctogram/staging/media-signing-private-key",  # noqa: S106
    media_signing_key_id="PENDING-CLOUDFRONT-PUBLIC-KEY",
)

PROD = EnvironmentConfig(
    name="prod",
    account="222222222222",  # placeholder: the adopting team's prod account
    availability_zones=("us-west-2a", "us-west-2b"),
    domain_name="yoctogram.example.com",
    hosted_zone_id="Z00000000000000000PROD",  # placeholder
    hosted_zone_name="yoctogram.example.com",
    origin_domain_name="origin.yoctogram.example.com",
    vpc_cidr="10.20.0.0/16",
    nat_gateways=2,  # one per AZ, so losing a zone does not cut the other's egress
    task_cpu=1024,
    task_memory_mib=2048,
    min_tasks=2,
    max_tasks=10,
    scaling_cpu_target_percent=50,
    scaling_requests_per_target=1000,
    web_concurrency=4,
    db_pool_size=10,
    db_max_overflow=10,
    worker_tasks=2,
    worker_cpu=256,
    worker_memory_mib=512,
    aurora_min_acu=1,
    aurora_max_acu=16,
    aurora_readers=1,
    database_name="yoctogram",
    database_port=5433,
    backup_retention_days=30,
    retain_data=True,
    log_retention_days=180,
    alarm_thresholds=AlarmThresholds(
        target_5xx_per_minute=5,
        elb_5xx_per_minute=5,
        target_response_time_p95_seconds=1.0,
        service_cpu_percent=80,
        queue_oldest_message_seconds=300,
        evaluation_periods=3,
    ),
    alarm_email=None,
    datadog_site="datadoghq.com",
    datadog_agent_image=_DATADOG_AGENT_IMAGE,
    log_router_base_image=_LOG_ROUTER_BASE_IMAGE,
    datadog_api_key_secret_name="yoctogram/prod/datadog-api-key",  # noqa: S106
    media_signing_private_key_secret_name="yoctogram/prod/media-signing-private-key",  # noqa: S106
    media_signing_key_id="PENDING-CLOUDFRONT-PUBLIC-KEY",
)

ENVIRONMENTS: dict[str, EnvironmentConfig] = {config.name: config for config in (STAGING, PROD)}
