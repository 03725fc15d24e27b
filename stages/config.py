"""Typed, frozen per-environment settings for the deployable Stage.

Staging and prod are the same `YoctogramStage` built from two of these objects: every difference
between them is a field here, never an `if` on the environment's name in a stack.

The account ids, domain names and hosted zone ids below are placeholders. The team that adopts the
project replaces them with its own values (and keeps `cdk.context.json` free of lookups): nothing in
the stacks looks anything up at synth time, so `cdk synth` runs offline with no AWS credentials.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_logs as logs

REGION = "us-west-2"
"""The region of every stack of a stage but the edge stack."""
EDGE_REGION = "us-east-1"
"""CloudFront only takes certificates from ACM in us-east-1, and its WAF web ACLs live there too."""

CLOUDFRONT_ORIGIN_FACING_PREFIX_LISTS = {"us-west-2": "pl-82a045eb", "us-east-1": "pl-3b927c52"}
"""AWS-managed prefix list `com.amazonaws.global.cloudfront.origin-facing`, by region: a fixed id that AWS
publishes, written here so that synth never looks it up."""

_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


KEEP_ALIVE_MARGIN_SECONDS = 15
"""How much longer than the load balancer's idle timeout the API keeps an idle connection open."""


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
class CompressorSettings:
    """The compressor Lambda: its size, how much of it may run at once, and what renditions it makes."""

    reserved_concurrency: int | None
    """Reserved concurrency: an upper bound of concurrent invocations, so a burst of uploads cannot starve
    the account's other Lambdas (events beyond it wait in Lambda's async queue, up to
    `max_event_age_minutes`). `None` reserves nothing. Lambda keeps 100 of the account's concurrency
    unreserved, so a value only deploys where the quota is at least 100 + this: young accounts often have
    10 or 50, and the App stack's create then fails. `make preflight ENV=<env>` checks the quota."""
    memory_mib: int
    """Also buys CPU: 1024 MB decodes a 12-megapixel JPEG and encodes its WebP in well under the timeout."""
    timeout_seconds: int
    retry_attempts: int
    """Async retries of a failed invocation (0-2) before the event goes to the failure queue."""
    max_event_age_minutes: int
    """An event older than this (throttled or retried) goes to the failure queue instead."""
    max_long_edge: int
    """`MAX_LONG_EDGE` of the rendition, in pixels."""
    output_format: str
    """`OUTPUT_FORMAT`: `webp`, or `jpeg` for the JPEG fallback (`.jpg` renditions)."""
    webp_quality: int
    log_level: str


@dataclass(frozen=True, kw_only=True, slots=True)
class WebDeployment:
    """How a new revision of the web service takes over from the running one: ECS's own gradual deployments.

    ECS starts the new revision beside the old one, registered in the other of the two target groups, and:

    1. points the test listener at it and runs the smoke-check hook, while users still reach only the old
       revision (a failed check, or a hold that outlasts `hook_timeout_minutes`, rolls it back);
    2. shifts production traffic: `CANARY` sends it `shift_percent` for `step_bake_minutes`, then all of it;
       `LINEAR` adds `shift_percent` every `step_bake_minutes` until it has all of it;
    3. keeps the old revision running `bake_minutes` after the last shift, so a rollback is one weight change.

    Throughout, the new revision's 5xx ratio or p95 over its limit (for `rollback_evaluation_minutes`, on
    at least `rollback_min_requests_per_minute`) rolls it back. stages/runbooks/web-deployments.md says
    how to watch, hold and stop one.
    """

    strategy: Literal["CANARY", "LINEAR"]
    shift_percent: float
    """CANARY: the canary's share of production traffic (0.1 to 100); LINEAR: each step's (3 to 100)."""
    step_bake_minutes: int
    """CANARY: how long the canary runs before the rest shifts; LINEAR: the wait between steps."""
    bake_minutes: int
    """How long the old revision keeps running after the new one has all traffic."""
    rollback_5xx_percent: float
    """The new revision's share of HTTP 5xx answers (per minute) that rolls it back."""
    rollback_p95_seconds: float
    """The new revision's p95 response time (per minute) that rolls it back."""
    rollback_min_requests_per_minute: int
    """Below this many requests a minute, the two alarms above do not judge (two errors in three requests
    say nothing); the smoke-check hook and the health checks still do."""
    rollback_evaluation_minutes: int
    """Consecutive minutes over a limit before the deployment rolls back."""
    hook_timeout_minutes: int
    """How long the smoke-check hook (retries, and a hold) may keep the new revision waiting before ECS
    rolls it back."""

    @property
    def production_shifts(self) -> int:
        """The shifts whose step bake time CloudFormation counts: one for a canary; for linear steps, every
        step but the one that reaches 100% (ECS's and CloudFormation's rule)."""
        if self.strategy == "CANARY":
            return 1
        steps = 100 / self.shift_percent
        return int(steps) - 1 if steps == int(steps) else int(steps)

    @property
    def longest_minutes(self) -> int:
        """The configured waits of one deployment (before task start-up and hooks): CloudFormation refuses a
        deployment whose waits exceed 33 hours."""
        return self.bake_minutes + self.step_bake_minutes * self.production_shifts

    def problems(self) -> list[str]:
        """What ECS or CloudFormation would refuse, or what would let a bad revision through unjudged."""
        found = []
        if self.strategy not in ("CANARY", "LINEAR"):
            found.append(f"strategy is CANARY or LINEAR, not {self.strategy!r}")
        low = 0.1 if self.strategy == "CANARY" else 3.0
        if (
            not low <= self.shift_percent <= 100
            or abs(self.shift_percent * 10 - round(self.shift_percent * 10)) > 1e-9
        ):
            found.append(
                f"shift_percent of a {self.strategy} deployment is a multiple of 0.1 from {low} to 100"
            )
        for field_name in ("step_bake_minutes", "bake_minutes"):
            if not 0 <= getattr(self, field_name) <= 1440:
                found.append(f"{field_name} is 0 to 1440")
        # An alarm needs its evaluation minutes of the new revision's traffic, plus about a minute for the
        # load balancer's metrics to arrive, before it can fire: a shorter wait lets the next shift (or the
        # end of the deployment) come before any alarm could have stopped it.
        needed = self.rollback_evaluation_minutes + 1
        if self.step_bake_minutes < needed or self.bake_minutes < needed:
            found.append(
                f"step_bake_minutes and bake_minutes must be at least rollback_evaluation_minutes + 1 "
                f"({needed}), or the deployment moves on before an alarm could roll it back"
            )
        if self.longest_minutes > 33 * 60:
            found.append(
                f"bake_minutes + step_bake_minutes x {self.production_shifts} shifts = {self.longest_minutes} "
                "minutes: CloudFormation refuses deployments that wait longer than 33 hours"
            )
        if not 0 < self.rollback_5xx_percent <= 100:
            found.append("rollback_5xx_percent is above 0 and at most 100")
        if self.rollback_p95_seconds <= 0:
            found.append("rollback_p95_seconds is above 0")
        if self.rollback_min_requests_per_minute < 1:
            found.append("rollback_min_requests_per_minute is at least 1")
        if not 1 <= self.rollback_evaluation_minutes <= 10:
            found.append("rollback_evaluation_minutes is 1 to 10")
        if not 1 <= self.hook_timeout_minutes <= 20160:
            found.append("hook_timeout_minutes is 1 to 20160 (14 days)")
        return found


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaSigningKey:
    """One key pair of the media signing key group: the public half here, the private half in a secret.

    CloudFront trusts every key of the group; the API signs with the active one (`active_media_signing_key`).
    A rotation adds a key, switches the active one, then removes the old key once the URLs it signed have
    expired (stages/runbooks/media-signing-key.md).
    """

    public_key: str
    """PEM public key (RSA 2048) that CloudFront verifies `/private/*` signed URLs with (not a secret)."""
    private_key_secret_name: str
    """Secrets Manager secret (in `region`) holding the private half (PEM), created by the operators."""

    def __post_init__(self) -> None:
        key = self.public_key.strip()
        if not (key.startswith("-----BEGIN PUBLIC KEY-----") and key.endswith("-----END PUBLIC KEY-----")):
            raise ValueError(f"media signing key {self.private_key_secret_name}: not a PEM public key")

    @property
    def encoded_key(self) -> str:
        """The PEM as CloudFront stores it (one trailing newline)."""
        return self.public_key.strip() + "\n"

    @property
    def fingerprint(self) -> str:
        """A short, stable digest of the public key: names the key in config, in CloudFront and in ids."""
        return hashlib.sha256(self.encoded_key.encode()).hexdigest()[:12]


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
    """The site's domain: CloudFront serves the web client, the API and the media here."""
    hosted_zone_id: str
    hosted_zone_name: str
    """The Route 53 zone holding `domain_name` and `origin_domain_name`, imported by attributes."""
    origin_domain_name: str
    """Name of the regional load balancer's certificate and alias record; CloudFront's origin for `/api/*`."""

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
    web_deployment: WebDeployment
    """How a new revision replaces the running one: strategy, shares, bake times, rollback limits."""
    load_balancer_idle_timeout_seconds: int = 60
    """How long the load balancer keeps an idle connection to a task. The API keeps idle connections
    open longer (`HTTP_KEEP_ALIVE_SECONDS`, this plus `KEEP_ALIVE_MARGIN_SECONDS`): a server that closes
    first races the load balancer's next request on that connection, which the client sees as a 502."""
    db_pool_size: int
    db_max_overflow: int
    worker_tasks: int
    """Event worker tasks; one is enough for the event rate of a photo app, two give prod redundancy."""
    worker_cpu: int
    worker_memory_mib: int
    pending_cleanup_every_hours: int
    """How often `python -m app.cleanup` runs (a scheduled task) to remove `pending` rows whose upload
    never came; rows go once they are `PENDING_MAX_AGE_HOURS` (24) old, so a row lives at most the sum."""

    # Data
    aurora_min_acu: float
    aurora_max_acu: float
    aurora_readers: int
    database_name: str
    database_port: int
    """Not PostgreSQL's well-known 5432, so a scan for the default port finds nothing (cdk-nag RDS11)."""
    backup_retention_days: int
    database_insights: bool
    """Database Insights (advanced mode: Performance Insights with 15 months of history, per-query load
    and execution plans) on every instance; billed per ACU-hour, so prod only."""
    slow_query_ms: int
    """PostgreSQL logs every statement slower than this (`log_min_duration_statement`) to CloudWatch."""
    database_rotation_days: int
    """Secrets Manager rotates the database password this often (single-user rotation; the backend reads
    the password when a connection opens, so no task restarts: backend/app/core/db_password.py)."""
    retain_data: bool
    """Deletion protection, termination protection and RETAIN on the database, buckets and secrets.
    Without it (staging), buckets are emptied when their stack is deleted, so a paused staging can go."""
    images_recoverable_days: int | None
    """Versioning of the images buckets: a deleted or overwritten photo stays recoverable (as a noncurrent
    version) this many days, so a bug or leaked task credentials cannot lose photos for good. `None`:
    unversioned (staging: its images are test data)."""

    # Observability
    log_retention_days: int
    """CloudWatch log groups and access logs; one of CloudWatch's allowed values (see `_RETENTION`)."""
    alarm_thresholds: AlarmThresholds
    alarm_email: str | None
    """Subscribed to the alarm topic when set; the adopting team sets its on-call address."""
    datadog_site: str
    datadog_agent_image: str
    log_router_base_image: str
    ecr_scanning: Literal["account", "basic", "enhanced"] = "account"
    """ECR's registry scanning configuration in this account and region, which the pipeline's image scan
    reads (pipeline/access_stack.py). It is one per registry, so only an explicit choice replaces it:
    `account` leaves it as the account or organization has it (a fresh registry scans nothing by itself;
    the image scan then starts a free basic scan of each new image); `basic` sets basic scan-on-push for
    the CDK assets repository (free); `enhanced` turns on Amazon Inspector scan-on-push for it, which also
    says whether a fix exists (billed by Inspector: about $0.09 per image pushed in US regions). Staging and
    prod keep the default: it overwrites nobody's setup, and the gate works in a fresh registry too."""

    # Edge (CloudFront, WAF) and the images
    max_upload_bytes: int
    """Largest original a browser may upload: the API's upload policy (`MAX_UPLOAD_BYTES`) and the web
    client's `config.json` (`maxUploadBytes`) both get it, so they never disagree."""
    auth_rate_limit_per_5_minutes: int
    api_rate_limit_per_5_minutes: int
    """WAF: requests to `/api/*` one client IP may make in 5 minutes before it is answered 429."""
    """WAF: requests to `/api/v1/auth/*` one client IP may make in 5 minutes before it is answered 429."""
    compressor: CompressorSettings

    # Secrets created outside the stacks (by the operators, once per environment; see the names)
    datadog_api_key_secret_name: str
    media_signing_keys: tuple[MediaSigningKey, ...]
    """Every key CloudFront's key group trusts for `/private/*`: one, or two during a rotation."""
    active_media_signing_key: str
    """Fingerprint of the key the API signs with: its CloudFront id becomes `MEDIA_SIGNING_KEY_ID` and its
    secret `MEDIA_SIGNING_PRIVATE_KEY`. See stages/runbooks/media-signing-key.md to make or rotate a pair."""

    def __post_init__(self) -> None:
        if len(self.availability_zones) != 2:
            raise ValueError(f"{self.name}: the network spans exactly 2 availability zones")
        if not all(az.startswith(self.region) for az in self.availability_zones):
            raise ValueError(
                f"{self.name}: availability zones {self.availability_zones} are not in {self.region}"
            )
        if not 1 <= self.load_balancer_idle_timeout_seconds <= 4000:
            raise ValueError(f"{self.name}: the load balancer's idle timeout is 1 to 4000 seconds")
        if not 1 <= self.pending_cleanup_every_hours <= 24:
            raise ValueError(f"{self.name}: pending_cleanup_every_hours is 1 to 24")
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
        if self.region not in CLOUDFRONT_ORIGIN_FACING_PREFIX_LISTS:
            raise ValueError(f"{self.name}: add CloudFront's origin-facing prefix list id for {self.region}")
        if self.images_recoverable_days is not None and not 1 <= self.images_recoverable_days <= 365:
            raise ValueError(f"{self.name}: images_recoverable_days is None or 1 to 365")
        if self.max_upload_bytes <= 0:
            raise ValueError(f"{self.name}: max_upload_bytes must be positive")
        if not all(
            10 <= limit <= 2_000_000_000
            for limit in (self.auth_rate_limit_per_5_minutes, self.api_rate_limit_per_5_minutes)
        ):
            raise ValueError(f"{self.name}: WAF rate limits are between 10 and 2,000,000,000 requests")
        if self.compressor.output_format not in ("webp", "jpeg"):
            raise ValueError(f"{self.name}: the compressor's output_format is webp or jpeg")
        if not 0 <= self.compressor.retry_attempts <= 2:
            raise ValueError(f"{self.name}: Lambda retries an async event 0 to 2 times")
        if not 1 <= self.compressor.max_event_age_minutes <= 360:
            raise ValueError(f"{self.name}: an async event's maximum age is 1 minute to 6 hours")
        if self.max_db_connections > self.aurora_connection_limit:
            raise ValueError(
                f"{self.name}: the service may open {self.max_db_connections} database connections, more than "
                f"the {self.aurora_connection_limit} Aurora allows with a capacity range of "
                f"{self.aurora_min_acu}-{self.aurora_max_acu} ACU: lower db_pool_size, db_max_overflow, "
                "web_concurrency or max_tasks, or raise aurora_max_acu"
            )
        fingerprints = [key.fingerprint for key in self.media_signing_keys]
        if not 1 <= len(fingerprints) <= 2:
            # A key group holds up to 5 keys; more than two means a rotation was never finished.
            raise ValueError(f"{self.name}: media_signing_keys holds one key, or two during a rotation")
        if len(set(fingerprints)) != len(fingerprints):
            raise ValueError(f"{self.name}: media_signing_keys lists the same public key twice")
        if self.active_media_signing_key not in fingerprints:
            raise ValueError(
                f"{self.name}: active_media_signing_key {self.active_media_signing_key!r} is none of the "
                f"media_signing_keys (their fingerprints: {', '.join(fingerprints)})"
            )
        for problem in self.web_deployment.problems():
            raise ValueError(f"{self.name}: web_deployment: {problem}")
        if self.compressor.reserved_concurrency is not None and self.compressor.reserved_concurrency < 1:
            raise ValueError(f"{self.name}: the compressor's reserved_concurrency is None or at least 1")

    @property
    def max_db_connections(self) -> int:
        """The most connections the service can hold: every pool full, in every web worker of every task at
        maximum scale, every event worker task, one migration task, the cleanup task's one connection and
        the password rotation function's one (backend/README.md, "The database connection budget")."""
        per_process = self.db_pool_size + self.db_max_overflow
        cleanup_task = 1  # stages/components/pending_cleanup.py: a pool of one
        rotation = 1  # stages/components/database.py: AWS's single-user rotation function tests the password
        processes = self.web_concurrency * self.max_tasks + self.worker_tasks + 1
        return per_process * processes + cleanup_task + rotation

    @property
    def aurora_connection_limit(self) -> int:
        """A conservative estimate of Aurora Serverless v2 PostgreSQL's `max_connections`, less the 3
        connections reserved for RDS's own use.

        It is a static parameter that Aurora sets from the *maximum* capacity (it does not move as the
        instance scales): LEAST(DBInstanceClassMemory / 9531392, 5000), with DBInstanceClassMemory the
        memory of `aurora_max_acu` (about 2 GiB per ACU, less what the engine keeps: 84% at 1 ACU, where
        AWS documents 189 connections, more at larger sizes, e.g. 3,360 at 16 ACU), and capped at 2,000
        when the minimum is 0.5 ACU or less. 84% is used for every size, so the estimate never exceeds
        the real value."""
        memory = self.aurora_max_acu * 2 * 1024**3 * 0.84
        limit = min(int(memory // 9_531_392), 5000)
        if self.aurora_min_acu <= 0.5:
            limit = min(limit, 2000)
        return limit - 3

    @property
    def http_keep_alive_seconds(self) -> int:
        """The API's idle keep-alive (`HTTP_KEEP_ALIVE_SECONDS`): outlasts the load balancer's."""
        return self.load_balancer_idle_timeout_seconds + KEEP_ALIVE_MARGIN_SECONDS

    @property
    def active_signing_key(self) -> MediaSigningKey:
        """The media signing key the API signs with."""
        return next(k for k in self.media_signing_keys if k.fingerprint == self.active_media_signing_key)

    @property
    def env(self) -> cdk.Environment:
        """The CDK environment every stack of this stage but the edge stack is pinned to."""
        return cdk.Environment(account=self.account, region=self.region)

    @property
    def edge_env(self) -> cdk.Environment:
        """The edge stack's environment: same account, us-east-1."""
        return cdk.Environment(account=self.account, region=EDGE_REGION)

    @property
    def cloudfront_prefix_list_id(self) -> str:
        """CloudFront's origin-facing prefix list in `region`: the only source the load balancer admits."""
        return CLOUDFRONT_ORIGIN_FACING_PREFIX_LISTS[self.region]

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


_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# The compressor's settings that staging and prod share (its author's recommendations).
_COMPRESSOR = CompressorSettings(
    reserved_concurrency=None,  # each environment says its own (below); preflight checks the quota
    memory_mib=1024,
    timeout_seconds=30,
    retry_attempts=2,
    max_event_age_minutes=120,
    max_long_edge=1080,
    output_format="webp",
    webp_quality=80,
    log_level="INFO",
)
# Both tags are published (public.ecr.aws) and pinned so a deployment never pulls a moving tag.
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
    # Prod's strategy with short waits: every staging deploy runs the same machinery (test listener, smoke
    # hook, canary, bake) minutes before prod runs it. Little traffic reaches staging while it deploys, so
    # here the hook and the health checks do most of the judging.
    web_deployment=WebDeployment(
        strategy="CANARY",
        shift_percent=10,
        step_bake_minutes=3,
        bake_minutes=3,
        rollback_5xx_percent=5,
        rollback_p95_seconds=1.5,
        rollback_min_requests_per_minute=10,
        rollback_evaluation_minutes=2,
        hook_timeout_minutes=60,
    ),
    db_pool_size=10,  # all kept open: overflow connections close on return and cost ~2 ms each to reopen
    db_max_overflow=0,
    worker_tasks=1,
    worker_cpu=256,
    worker_memory_mib=1024,  # the sidecars reserve 320 MiB (Datadog 256, Fluent Bit 64): Python gets ~700
    pending_cleanup_every_hours=6,
    aurora_min_acu=0.5,
    aurora_max_acu=4,
    aurora_readers=0,
    database_name="yoctogram",
    database_port=5433,
    backup_retention_days=7,
    database_insights=False,
    slow_query_ms=500,
    database_rotation_days=30,
    retain_data=False,
    images_recoverable_days=None,
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
    max_upload_bytes=_MAX_UPLOAD_BYTES,
    # The load tests run against staging from one address (loadtests/protections.py mirrors both limits,
    # and tests/test_loadtest_protections.py proves every shape stays inside them). Sign-ups and logins:
    # the `step` shape's worst case is ~120 in 5 minutes.
    auth_rate_limit_per_5_minutes=2000,
    # The `step` shape's worst case (200 users at their fastest against an instant target, plus cleanup)
    # is ~215,000 requests in 5 minutes. At its real pace (0.8 API requests a second per user in the
    # saved local runs, loadtests/tests/fixtures) it makes about 50,000.
    api_rate_limit_per_5_minutes=250_000,
    # Nothing reserved: a young staging account's concurrency quota (often 10 or 50) cannot spare any.
    compressor=dataclasses.replace(_COMPRESSOR, reserved_concurrency=None),
    datadog_api_key_secret_name="yoctogram/staging/datadog-api-key",  # noqa: S106 (a name, not a secret)
    # placeholder: the adopting team puts the public half of its staging signing key here, and the
    # fingerprint that `make preflight` (or a config error) prints for it in active_media_signing_key
    media_signing_keys=(
        MediaSigningKey(
            public_key="""-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu8T85V2NFg+IkbH+kn0I
rwgsv1S/fmSlFNFk4YQgAzabvwORJiV9j0l7XvnuNVjPO0xiMXylYlsuDMVLnc0K
MPCwgKEku/urZ6VYl8+HLsRRXtaawRFXwkDy0caY3z27Hk7pXkyJe4I0ZDIjc+rh
bZaoEGmbF9ld7a1FJhDPrz+12t+676DfKZ9TcD011zwSKnh+LJ0VFo0ZlyaQvWQJ
EJQIP/Xd98zBOQ+Y0Ey8tg/xZL1CA79tbNTCkl2XpYPdQjnydJf2ur251Wkzto/M
TPuTVsMLsYktWXsBPCbeXAmtjXnWE4TBNkNdCEjH/VUtjWIrHiOGPuXRwQdaRiTF
LQIDAQAB
-----END PUBLIC KEY-----
""",
            private_key_secret_name="yoctogram/staging/media-signing-private-key",  # noqa: S106
        ),
    ),
    active_media_signing_key="f91364b56aa3",
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
    web_concurrency=2,  # one vCPU per task: two workers keep it busy without oversubscribing
    # A tenth of the users meet a release for 15 minutes before everyone does; the old tasks stay 20 more
    # minutes, so a rollback in that time is a weight change, not a start of tasks.
    web_deployment=WebDeployment(
        strategy="CANARY",
        shift_percent=10,
        step_bake_minutes=15,
        bake_minutes=20,
        rollback_5xx_percent=2,
        rollback_p95_seconds=1.0,
        rollback_min_requests_per_minute=20,
        rollback_evaluation_minutes=3,
        hook_timeout_minutes=240,
    ),
    db_pool_size=10,  # all kept open: overflow connections close on return and cost ~2 ms each to reopen
    db_max_overflow=0,
    worker_tasks=2,
    worker_cpu=256,
    worker_memory_mib=1024,  # the sidecars reserve 320 MiB (Datadog 256, Fluent Bit 64): Python gets ~700
    pending_cleanup_every_hours=6,
    # Not for connections (max_connections follows the maximum, 16 ACU: ~3,000): 2 ACU keeps about 4 GiB of
    # buffer cache warm for the feeds between bursts (a cold cache reads every page from storage), and it
    # is the floor Performance Insights / Database Insights need on Serverless v2.
    aurora_min_acu=2,
    aurora_max_acu=16,
    aurora_readers=1,
    database_name="yoctogram",
    database_port=5433,
    backup_retention_days=30,
    database_insights=True,
    slow_query_ms=500,
    database_rotation_days=30,
    retain_data=True,
    images_recoverable_days=30,
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
    max_upload_bytes=_MAX_UPLOAD_BYTES,
    auth_rate_limit_per_5_minutes=300,
    # 10 req/s from one address, sustained for 5 minutes: far above a person scrolling the feed.
    api_rate_limit_per_5_minutes=3000,
    # Needs an account concurrency quota of at least 120 (`make preflight ENV=prod` checks it).
    compressor=dataclasses.replace(_COMPRESSOR, reserved_concurrency=20),
    datadog_api_key_secret_name="yoctogram/prod/datadog-api-key",  # noqa: S106
    # placeholder: the adopting team puts the public half of its prod signing key here, and the
    # fingerprint that `make preflight` (or a config error) prints for it in active_media_signing_key
    media_signing_keys=(
        MediaSigningKey(
            public_key="""-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkf10pXk2UCOU8qxbyO4l
1JUEJjcKGkdBhP9XXmX/QEma97t80Tpi9rnJUV4o0jR+bvx2Yu0Frk5vT0nyeLzE
RTneyhOSwsVkpBrK+6fQs1NfZzz79cNKEKeJrVHM3FX3UtrucpucsI8FHPyZQ6tJ
scmX4RGWdaP/NeTJmEyOTIg+D+JUvHsKm10iueDVbj869gDP/pIbR/S8plEOd1k3
Hi4Er5bmMATWKPfxVBIoQT3HmTvuCvfEcqV9MYXWUft+91BaktWFtTHb9tBmRUQV
GU7kldEeJOmhLsGRw+Honb4HUNRYJI/YshMctlRfxUzesU5cTHolNchlJ4bWyKZn
YQIDAQAB
-----END PUBLIC KEY-----
""",
            private_key_secret_name="yoctogram/prod/media-signing-private-key",  # noqa: S106
        ),
    ),
    active_media_signing_key="f4b39a858524",
)

ENVIRONMENTS: dict[str, EnvironmentConfig] = {config.name: config for config in (STAGING, PROD)}


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineConfig:
    """Where the CDK Pipelines pipeline lives, what it watches and whom it tells.

    The pipeline stack deploys to its own account (a tools account, or one of the environments' accounts)
    and deploys staging, then prod, into theirs; each of those accounts is bootstrapped with
    `--trust <pipeline account>` (docs/deploying.md).
    """

    name: str
    """Pipeline name; also the prefix of its stack name and of its steps' role names."""
    account: str
    region: str = REGION
    repository: str
    """`owner/name` of the repository the connection reads."""
    branch: str
    """A push to this branch starts a run."""
    connection_arn: str
    """The CodeConnections (formerly CodeStar Connections) connection to the repository's host: created
    once in the pipeline account's console, because the host's side needs a person to authorize it."""
    notification_email: str | None
    """Subscribed to the pipeline's topic when set: approvals waiting, permission broadening, failed runs."""
    reports_retention_days: int
    """Load-test run folders and capacity reviews are kept this long in the reports bucket (`latest/` stays)."""

    def __post_init__(self) -> None:
        if not (len(self.account) == 12 and self.account.isdigit()):
            raise ValueError(f"pipeline: the account id {self.account!r} is 12 digits")
        owner, _, repo = self.repository.partition("/")
        if not owner or not repo or "/" in repo:
            raise ValueError(f"pipeline: repository {self.repository!r} is `owner/name`")
        parts = self.connection_arn.split(":")
        if len(parts) != 6 or parts[2] not in ("codeconnections", "codestar-connections"):
            raise ValueError(f"pipeline: {self.connection_arn!r} is not a CodeConnections connection ARN")
        if parts[4] != self.account:
            raise ValueError(
                "pipeline: the connection belongs to the pipeline's account (its ARN names another)"
            )
        if self.reports_retention_days < 1:
            raise ValueError("pipeline: reports_retention_days is at least 1")

    @property
    def env(self) -> cdk.Environment:
        """The pipeline stack's environment."""
        return cdk.Environment(account=self.account, region=self.region)

    @property
    def stack_name(self) -> str:
        """CloudFormation stack name of the pipeline stack, e.g. `yoctogram-pipeline`."""
        return f"{self.name}-pipeline"

    def role_name(self, step: str) -> str:
        """Fixed name of one step's CodeBuild role, so the environments' accounts can trust exactly it."""
        return f"{self.name}-pipeline-{step}"


PIPELINE = PipelineConfig(
    name="yoctogram",
    account="333333333333",  # placeholder: the adopting team's tools (pipeline) account
    repository="example-org/yoctogram-deploy",  # placeholder
    branch="main",
    # placeholder: the ARN the console shows once the connection is "Available"
    connection_arn="arn:aws:codeconnections:us-west-2:333333333333:connection/00000000-0000-0000-0000-000000000000",
    notification_email=None,
    reports_retention_days=90,
)
