"""With credentials: what a first deployment needs of an account and cannot make itself. Read-only.

Each check is a small function of the run's `Context` (the AWS clients, the pipeline's config, the DNS
resolver) and one config; it returns checklist items. An AWS error that escapes a check (no permission,
no network) makes that check CANNOT CHECK, never a crash (`run.py`).
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization

from pipeline.preflight.names import (
    BUCKET,
    DB_CLUSTER,
    ECS_CLUSTER,
    LOG_GROUP,
    QUEUE,
    SECRET,
    FixedName,
    compressor_function_name,
    fixed_names,
)
from pipeline.preflight.placeholders import config_line
from pipeline.preflight.results import Item, cannot_check, fix, ok
from stages.config import EDGE_REGION, EnvironmentConfig, MediaSigningKey, PipelineConfig

BOOTSTRAP_QUALIFIER = "hnb659fds"
"""`cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER`: the stacks use the default synthesizer."""
MIN_BOOTSTRAP_VERSION = 6
"""The bootstrap version the synthesized stacks require (`requiresBootstrapStackVersion` in the cloud
assembly, and their `CheckBootstrapVersion` rule); tests/test_preflight.py reads it back from a synth."""
BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing")
"""The bootstrap roles the pipeline account assumes in an environment's account: CloudFormation
deployments, and the file and image assets."""
LAMBDA_UNRESERVED_MINIMUM = 100
"""Lambda keeps this much of the account's concurrency unreserved."""
FARGATE_VCPU_QUOTA = ("fargate", "L-3032A538")
"""Fargate On-Demand vCPU resource count."""
EIP_QUOTA = ("ec2", "L-0263D0A3")
"""EC2-VPC Elastic IPs (one per NAT gateway)."""
VPC_QUOTA = ("vpc", "L-F678F1CE")
"""VPCs per Region."""
LAMBDA_CONCURRENCY_QUOTA = ("lambda", "L-B99A9384")
"""Concurrent executions."""
DEPLOYMENT_MAX_PERCENT = 200
"""The services' `max_healthy_percent`: during a deployment each runs up to twice its tasks."""
ONE_OFF_TASK_CPU = 256
"""stages/components/one_off_task.py: the migration and the cleanup task, 0.25 vCPU each."""
ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "AuthFailure"}
)
READ_ACCESS = "use credentials that may read it (e.g. the ReadOnlyAccess and SecurityAudit policies)"


class NoDelegation(Exception):
    """Public DNS has no name servers for the zone (NXDOMAIN, no NS answer, or none of them answers)."""


class DnsUnavailable(Exception):
    """Public DNS could not be asked (no resolver configured, timeouts)."""


Resolver = Callable[[str], set[str]]
"""A zone's name -> the name servers public DNS gives for it (lowercase, no trailing dot)."""


def public_name_servers(zone: str) -> set[str]:
    """The NS records of `zone` as the system's resolver answers them."""
    import dns.exception
    import dns.resolver

    try:
        answer = dns.resolver.resolve(zone, "NS", lifetime=10)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers) as error:
        raise NoDelegation(str(error)) from error
    except (dns.resolver.NoResolverConfiguration, dns.exception.Timeout) as error:
        raise DnsUnavailable(str(error) or type(error).__name__) from error
    return {str(record.target).rstrip(".").lower() for record in answer}


class Aws:
    """The AWS clients of one run, one per service and region, from one boto3 session."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            self.clients[key] = self.session.client(
                service,
                region_name=region,
                config=Config(
                    connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 3}
                ),
            )
        return self.clients[key]

    def has_credentials(self) -> bool:
        return self.session.get_credentials() is not None


@dataclass
class Context:
    aws: Aws
    pipeline: PipelineConfig
    resolver: Resolver = public_name_servers
    stacks: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def stack_status(self, stack_name: str, region: str) -> str | None:
        """The stack's status, or None when it does not exist (was never created, or is deleted)."""
        key = (stack_name, region)
        if key not in self.stacks:
            try:
                stacks = self.aws.client("cloudformation", region).describe_stacks(StackName=stack_name)
                self.stacks[key] = stacks["Stacks"][0]["StackStatus"]
            except ClientError as error:
                if "does not exist" not in str(error):
                    raise
                self.stacks[key] = None
        return self.stacks[key]


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# --- account -------------------------------------------------------------------------------------------
def caller_account(ctx: Context, region: str) -> str:
    return str(ctx.aws.client("sts", region).get_caller_identity()["Account"])


# --- CDK bootstrap -------------------------------------------------------------------------------------
def bootstrap_command(account: str, region: str, trusted: str | None) -> str:
    command = f"npx cdk bootstrap aws://{account}/{region}"
    if trusted and trusted != account:
        command += f" --trust {trusted} --cloudformation-execution-policies arn:aws:iam::aws:policy/AdministratorAccess"
    return (
        command + f"  (with credentials of account {account}; docs/deploying.md, One-time setup: bootstrap)"
    )


def trusts(document: Any, account: str) -> bool:
    """Whether a role's trust policy lets principals of `account` assume it."""
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(action in ("sts:AssumeRole", "sts:*", "*") for action in actions):
            continue
        principals = statement.get("Principal", {})
        aws = principals.get("AWS", []) if isinstance(principals, dict) else []
        for principal in [aws] if isinstance(aws, str) else aws:
            if principal == account or (
                principal.startswith("arn:") and principal.endswith(f":{account}:root")
            ):
                return True
    return False


def check_bootstrap(ctx: Context, account: str, region: str, trusted: str | None) -> list[Item]:
    """The bootstrap stack's version (its SSM parameter, which the stacks' rule reads) and, for an
    environment's account, that its deploy and publishing roles trust the pipeline account."""
    group, title = "Bootstrap", f"CDK bootstrap in {region}"
    command = bootstrap_command(account, region, trusted)
    parameter = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
    try:
        value = ctx.aws.client("ssm", region).get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            raise
        return [fix(group, title, f"not bootstrapped (no SSM parameter {parameter})", command)]
    version = int(value)
    if version < MIN_BOOTSTRAP_VERSION:
        return [
            fix(
                group,
                title,
                f"bootstrap version {version}; the stacks need {MIN_BOOTSTRAP_VERSION} or newer",
                f"bootstrap again with the pinned CLI: {command}",
            )
        ]
    if not trusted or trusted == account:
        return [ok(group, title, f"version {version}")]
    iam = ctx.aws.client("iam", region)
    missing, untrusting = [], []
    for kind in BOOTSTRAP_ROLES:
        role_name = f"cdk-{BOOTSTRAP_QUALIFIER}-{kind}-role-{account}-{region}"
        try:
            role = iam.get_role(RoleName=role_name)["Role"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            missing.append(role_name)
            continue
        if not trusts(role.get("AssumeRolePolicyDocument", {}), trusted):
            untrusting.append(role_name)
    if missing:
        return [fix(group, title, f"version {version}, but no role {', '.join(missing)}", command)]
    if untrusting:
        return [
            fix(
                group,
                title,
                f"version {version}; {', '.join(untrusting)} do not trust the pipeline account {trusted}",
                f"bootstrap again with --trust: {command}",
            )
        ]
    return [ok(group, title, f"version {version}, trusts the pipeline account {trusted}")]


# --- the repository connection (pipeline account) ------------------------------------------------------
def check_connection(ctx: Context, config: PipelineConfig) -> list[Item]:
    group, title = "Connection", "repository connection"
    service, region = config.connection_arn.split(":")[2:4]
    line = config_line(config, ("connection_arn",))
    try:
        connection = ctx.aws.client(service, region).get_connection(ConnectionArn=config.connection_arn)[
            "Connection"
        ]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        return [
            fix(
                group,
                title,
                f"no connection {config.connection_arn}",
                "create it (docs/deploying.md, One-time setup: connect the repository), finish its handshake in the "
                f"console, and put its ARN in connection_arn ({line})",
            )
        ]
    status = connection.get("ConnectionStatus", "")
    name = connection.get("ConnectionName", config.connection_arn)
    if status == "AVAILABLE":
        return [ok(group, title, f"{name} is AVAILABLE")]
    if status == "PENDING":
        what = (
            "finish the handshake: console, Developer Tools > Settings > Connections > "
            f"{name} > Update pending connection, and authorize the app for {config.repository}"
        )
    else:
        what = (
            f"open {name} in the console (Developer Tools > Settings > Connections) and update it, or create "
            f"a new connection and put its ARN in connection_arn ({line})"
        )
    return [fix(group, title, f"{name} is {status or 'in an unknown state'}, not AVAILABLE", what)]


# --- DNS -----------------------------------------------------------------------------------------------
def check_hosted_zone(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """The zone exists in this account under the configured name, and public DNS delegates to it."""
    group = "DNS"
    title = f"hosted zone {config.hosted_zone_id}"
    zone_name = config.hosted_zone_name.rstrip(".").lower()
    try:
        zone = ctx.aws.client("route53", EDGE_REGION).get_hosted_zone(Id=config.hosted_zone_id)
    except ClientError as error:
        if error_code(error) not in ("NoSuchHostedZone", "InvalidInput"):
            raise
        return [
            fix(
                group,
                title,
                f"no such zone in account {config.account}",
                f"create the public zone {zone_name} there (`aws route53 create-hosted-zone --name {zone_name} "
                f"--caller-reference $(date +%s)`), or put the id of the existing one in hosted_zone_id "
                f"({config_line(config, ('hosted_zone_id',))})",
            )
        ]
    hosted_zone = zone["HostedZone"]
    name = hosted_zone["Name"].rstrip(".").lower()
    if name != zone_name:
        return [
            fix(
                group,
                title,
                f"this zone is {name}, not {zone_name}",
                f"put the id of {zone_name}'s zone in hosted_zone_id ({config_line(config, ('hosted_zone_id',))}), "
                f"or {name} in hosted_zone_name ({config_line(config, ('hosted_zone_name',))})",
            )
        ]
    if hosted_zone.get("Config", {}).get("PrivateZone"):
        return [
            fix(
                group,
                title,
                f"{zone_name} is a private zone: CloudFront and ACM need public DNS",
                f"create a public zone for {zone_name} and put its id in hosted_zone_id "
                f"({config_line(config, ('hosted_zone_id',))})",
            )
        ]
    items = [ok(group, title, f"{zone_name}, public")]
    servers = {server.rstrip(".").lower() for server in zone.get("DelegationSet", {}).get("NameServers", [])}
    title = f"delegation of {zone_name}"
    parent = zone_name.split(".", 1)[1] if "." in zone_name else zone_name
    add_records = (
        f"in the parent zone {parent} (or at the registrar), set the NS records of {zone_name} to: "
        + ", ".join(sorted(servers))
    )
    try:
        public = ctx.resolver(zone_name)
    except NoDelegation as error:
        items.append(
            fix(group, title, f"public DNS has no name servers for {zone_name} ({error})", add_records)
        )
        return items
    except DnsUnavailable as error:
        items.append(
            cannot_check(
                group, title, f"public DNS did not answer ({error})", f"check it later: dig NS {zone_name}"
            )
        )
        return items
    if public != servers:
        items.append(
            fix(
                group,
                title,
                f"public DNS names {', '.join(sorted(public))}; the zone's name servers are "
                f"{', '.join(sorted(servers))} (certificate validation and the site need the zone's)",
                add_records,
            )
        )
    else:
        items.append(ok(group, title, "public DNS names the zone's name servers"))
    return items


# --- secrets -------------------------------------------------------------------------------------------
def _create_secret_command(config: EnvironmentConfig, name: str, value: str) -> str:
    return f"aws secretsmanager create-secret --region {config.region} --name {name} --secret-string {value}"


def check_read_secrets(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """The secrets the stacks read but do not create exist, and none is scheduled for deletion."""
    secrets = ctx.aws.client("secretsmanager", config.region)
    wanted = [
        (config.datadog_api_key_secret_name, '"<Datadog API key>"'),
        *(
            (key.private_key_secret_name, "file://media-signing.key  (stages/runbooks/media-signing-key.md)")
            for key in config.media_signing_keys
        ),
    ]
    items = []
    for name, value in dict(wanted).items():
        title = f"secret {name}"
        try:
            secret = secrets.describe_secret(SecretId=name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            items.append(fix("Secrets", title, "does not exist", _create_secret_command(config, name, value)))
            continue
        if secret.get("DeletedDate"):
            items.append(
                fix(
                    "Secrets",
                    title,
                    f"scheduled for deletion (deleted {secret['DeletedDate']:%Y-%m-%d})",
                    f"aws secretsmanager restore-secret --region {config.region} --secret-id {name}",
                )
            )
            continue
        items.append(ok("Secrets", title, "exists"))
    return items


def public_der(pem: str) -> bytes:
    return serialization.load_pem_public_key(pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_signing_keys(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """Each media signing key's secret holds the private half of the public key in config."""
    secrets = ctx.aws.client("secretsmanager", config.region)
    items = []
    for index, key in enumerate(config.media_signing_keys):
        name = key.private_key_secret_name
        title = f"signing key {key.fingerprint} matches {name}"
        put = (
            f"store the matching private key: aws secretsmanager put-secret-value --region {config.region} "
            f"--secret-id {name} --secret-string file://media-signing.key, or put the public half of the "
            f"secret's key in media_signing_keys ({config_line(config, ('media_signing_keys', index, 'public_key'))}); "
            "stages/runbooks/media-signing-key.md"
        )
        try:
            secret = secrets.get_secret_value(SecretId=name)
        except ClientError as error:
            if error_code(error) not in ("ResourceNotFoundException", "InvalidRequestException"):
                raise
            items.append(
                cannot_check("Secrets", title, "the secret cannot be read (above)", "create it first")
            )
            continue
        try:
            private_key = serialization.load_pem_private_key(
                secret.get("SecretString", "").encode(), password=None
            )
            held = private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (ValueError, TypeError):
            items.append(fix("Secrets", title, "the secret is not an unencrypted PEM private key", put))
            continue
        if public_der(held.decode()) != public_der(key.public_key):
            other = MediaSigningKey(public_key=held.decode(), private_key_secret_name=name).fingerprint
            items.append(
                fix(
                    "Secrets",
                    title,
                    f"the secret holds the private half of key {other}, not {key.fingerprint}",
                    put,
                )
            )
            continue
        items.append(ok("Secrets", title))
    return items


# --- quotas --------------------------------------------------------------------------------------------
def quota_value(ctx: Context, region: str, quota: tuple[str, str]) -> float:
    """The applied value of a quota, or its default when none is applied."""
    service, code = quota
    quotas = ctx.aws.client("service-quotas", region)
    try:
        return float(quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    except ClientError as error:
        if error_code(error) != "NoSuchResourceException":
            raise
    return float(quotas.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])


def increase(region: str, quota: tuple[str, str], value: float) -> str:
    service, code = quota
    return (
        f"aws service-quotas request-service-quota-increase --region {region} --service-code {service} "
        f"--quota-code {code} --desired-value {value:g}"
    )


def check_lambda_concurrency(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """The compressor's reserved concurrency leaves the 100 that Lambda keeps unreserved."""
    group, title = "Quotas", "Lambda concurrency"
    reserved = config.compressor.reserved_concurrency
    if reserved is None:
        return [ok(group, title, "the compressor reserves none")]
    lambdas = ctx.aws.client("lambda", config.region)
    limits = lambdas.get_account_settings()["AccountLimit"]
    total, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    try:
        concurrency = lambdas.get_function_concurrency(FunctionName=compressor_function_name(config))
        unreserved += concurrency.get("ReservedConcurrentExecutions", 0)  # ours, given back on update
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
    available = unreserved - LAMBDA_UNRESERVED_MINIMUM
    if reserved > available:
        return [
            fix(
                group,
                title,
                f"the compressor reserves {reserved}; the account's limit is {total}, {unreserved} of it "
                f"unreserved, and {LAMBDA_UNRESERVED_MINIMUM} must stay unreserved",
                f"{increase(config.region, LAMBDA_CONCURRENCY_QUOTA, total + reserved - available)}, or set "
                f"reserved_concurrency=None ({config_line(config, ('compressor', 'reserved_concurrency'))})",
            )
        ]
    return [ok(group, title, f"reserves {reserved} of {unreserved} unreserved (limit {total})")]


def fargate_vcpus(config: EnvironmentConfig) -> int:
    """The most vCPUs the stage's tasks hold at once: the web service at its maximum and the event
    workers, both doubled while a deployment replaces them, plus a migration and a cleanup task."""
    services = config.max_tasks * config.task_cpu + config.worker_tasks * config.worker_cpu
    units = services * DEPLOYMENT_MAX_PERCENT / 100 + 2 * ONE_OFF_TASK_CPU
    return math.ceil(units / 1024)


def check_fargate(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    group, title = "Quotas", "Fargate vCPU"
    needed = fargate_vcpus(config)
    quota = quota_value(ctx, config.region, FARGATE_VCPU_QUOTA)
    detail = (
        f"{needed} vCPU at most during a deployment ({config.max_tasks} web tasks of {config.task_cpu / 1024:g} "
        f"and {config.worker_tasks} workers of {config.worker_cpu / 1024:g} at {DEPLOYMENT_MAX_PERCENT}%, a "
        f"migration and a cleanup task); quota {quota:g}"
    )
    if quota < needed:
        return [
            fix(
                group,
                title,
                detail,
                f"{increase(config.region, FARGATE_VCPU_QUOTA, needed)}, or lower max_tasks "
                f"({config_line(config, ('max_tasks',))})",
            )
        ]
    return [ok(group, title, detail + " (other tasks of the account count too)")]


def check_network_quotas(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """Elastic IPs for the NAT gateways and a VPC, unless the network stack already holds them."""
    group = "Quotas"
    deployed = ctx.stack_status(config.stack_name("network"), config.region) is not None
    ec2 = ctx.aws.client("ec2", config.region)
    items = []
    addresses = len(ec2.describe_addresses()["Addresses"])
    needed = addresses + (0 if deployed else config.nat_gateways)
    quota = quota_value(ctx, config.region, EIP_QUOTA)
    detail = (
        f"{addresses} in use, {needed} with the stage's {config.nat_gateways} NAT gateway(s); quota {quota:g}"
    )
    if quota < needed:
        items.append(fix(group, "Elastic IPs", detail, increase(config.region, EIP_QUOTA, needed)))
    else:
        items.append(ok(group, "Elastic IPs", detail))
    vpcs = sum(len(page["Vpcs"]) for page in ec2.get_paginator("describe_vpcs").paginate())
    needed = vpcs + (0 if deployed else 1)
    quota = quota_value(ctx, config.region, VPC_QUOTA)
    detail = f"{vpcs} in {config.region}, {needed} with the stage's; quota {quota:g}"
    if quota < needed:
        items.append(
            fix(
                group,
                "VPCs",
                detail,
                f"{increase(config.region, VPC_QUOTA, needed)}, or delete an unused VPC",
            )
        )
    else:
        items.append(ok(group, "VPCs", detail))
    return items


def check_aurora_quotas(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """Room for one more Aurora cluster and its instances, unless the data stack already holds them."""
    group, title = "Quotas", "Aurora clusters and instances"
    if ctx.stack_status(config.stack_name("data"), config.region) is not None:
        return [ok(group, title, f"{config.stack_name('data')} exists: its cluster is counted")]
    attributes = ctx.aws.client("rds", config.region).describe_account_attributes()
    quotas = {q["AccountQuotaName"]: q for q in attributes["AccountQuotas"]}
    short = []
    for quota_name, adding in (("DBClusters", 1), ("DBInstances", 1 + config.aurora_readers)):
        quota = quotas.get(quota_name)
        if quota is not None and quota["Used"] + adding > quota["Max"]:
            short.append(f"{quota_name}: {quota['Used']} used of {quota['Max']}, the stage adds {adding}")
    if short:
        return [
            fix(
                group,
                title,
                "; ".join(short),
                f"request an increase in Service Quotas (Amazon RDS, region {config.region}), or delete "
                "clusters or instances that are no longer used",
            )
        ]
    used = ", ".join(
        f"{name} {q['Used']}/{q['Max']}"
        for name, q in quotas.items()
        if name in ("DBClusters", "DBInstances")
    )
    return [ok(group, title, f"room for 1 cluster and {1 + config.aurora_readers} instance(s) ({used})")]


# --- names the stacks create ---------------------------------------------------------------------------
def name_is_free(ctx: Context, fixed: FixedName) -> Item:
    group, title, region = "Names", f"{fixed.kind} {fixed.name}", fixed.region
    if fixed.kind == SECRET:
        try:
            secret = ctx.aws.client("secretsmanager", region).describe_secret(SecretId=fixed.name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return ok(group, title, "free")
        if secret.get("DeletedDate"):
            return fix(
                group,
                title,
                f"in its deletion recovery window (deleted {secret['DeletedDate']:%Y-%m-%d}): the stack cannot "
                "create it",
                "once its owner confirms it is not needed: aws secretsmanager delete-secret --region "
                f"{region} --secret-id {fixed.name} --force-delete-without-recovery",
            )
        return fix(
            group,
            title,
            "exists, outside the stack that creates it",
            "if it is a leftover of an earlier deployment and its owner agrees: aws secretsmanager delete-secret "
            f"--region {region} --secret-id {fixed.name} --force-delete-without-recovery",
        )
    if fixed.kind == BUCKET:
        try:
            ctx.aws.client("s3", region).head_bucket(Bucket=fixed.name)
        except ClientError as error:
            if error_code(error) in ("404", "NoSuchBucket", "NotFound"):
                return ok(group, title, "free")
            if error_code(error) not in ("403", "301", "400"):
                raise
            return fix(
                group,
                title,
                "exists in another account or region: bucket names are global",
                "find out whose it is; the name carries the account id, so check `account` in stages/config.py",
            )
        return fix(
            group,
            title,
            "exists (a retained bucket of an earlier deployment?)",
            f"copy out what must be kept, then empty and delete it: aws s3 rb s3://{fixed.name} --force",
        )
    if fixed.kind == LOG_GROUP:
        groups = ctx.aws.client("logs", region).describe_log_groups(logGroupNamePrefix=fixed.name)[
            "logGroups"
        ]
        if not any(g["logGroupName"] == fixed.name for g in groups):
            return ok(group, title, "free")
        return fix(
            group,
            title,
            "exists (kept, or re-created by its service after an earlier stack was deleted)",
            f"export what must be kept, then: aws logs delete-log-group --region {region} --log-group-name {fixed.name}",
        )
    if fixed.kind == DB_CLUSTER:
        try:
            clusters = ctx.aws.client("rds", region).describe_db_clusters(DBClusterIdentifier=fixed.name)
        except ClientError as error:
            if error_code(error) != "DBClusterNotFoundFault":
                raise
            return ok(group, title, "free")
        status = clusters["DBClusters"][0].get("Status", "") if clusters["DBClusters"] else ""
        return fix(
            group,
            title,
            f"exists ({status}): a retained cluster of an earlier deployment?",
            "snapshot and delete it if it is not needed: aws rds delete-db-cluster --region "
            f"{region} --db-cluster-identifier {fixed.name} --final-db-snapshot-identifier {fixed.name}-final "
            "(its instances first: aws rds delete-db-instance)",
        )
    if fixed.kind == QUEUE:
        sqs = ctx.aws.client("sqs", region)
        try:
            url = sqs.get_queue_url(QueueName=fixed.name)["QueueUrl"]
        except ClientError as error:
            if error_code(error) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            return ok(group, title, "free")
        return fix(
            group,
            title,
            "exists, outside the stack that creates it",
            f"if its messages are not needed: aws sqs delete-queue --region {region} --queue-url {url} "
            "(SQS frees the name 60 seconds later)",
        )
    if fixed.kind == ECS_CLUSTER:
        found = ctx.aws.client("ecs", region).describe_clusters(clusters=[fixed.name])["clusters"]
        # A deleted cluster stays listed as INACTIVE for a while; its name can be used again.
        if not any(cluster.get("status") == "ACTIVE" for cluster in found):
            return ok(group, title, "free")
        return fix(
            group,
            title,
            "exists (ACTIVE), outside the stack that creates it",
            f"stop its services and tasks, then: aws ecs delete-cluster --region {region} --cluster {fixed.name}",
        )
    raise ValueError(f"unknown kind {fixed.kind!r}")


def check_fixed_names(ctx: Context, config: EnvironmentConfig) -> list[Item]:
    """Before a stack's first create, none of the names it gives its resources is taken."""
    items = []
    by_stack: dict[tuple[str, str], list[FixedName]] = {}
    for fixed in fixed_names(config):
        by_stack.setdefault((config.stack_name(fixed.unit), fixed.region), []).append(fixed)
    for (stack, region), names in by_stack.items():
        status = ctx.stack_status(stack, region)
        if status == "ROLLBACK_COMPLETE":
            items.append(
                fix(
                    "Names",
                    f"stack {stack}",
                    "ROLLBACK_COMPLETE: a first create failed; a deployment cannot update it",
                    f"aws cloudformation delete-stack --region {region} --stack-name {stack}  (then check again: "
                    "what it kept is listed below)",
                )
            )
        elif status is not None:
            items.append(ok("Names", f"stack {stack}", f"{status}: its names are its own"))
            continue
        items.extend(name_is_free(ctx, fixed) for fixed in names)
    return items


# --- which checks run where ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    group: str
    title: str
    run: Callable[[Context], list[Item]]


def _bootstrap(account: str, region: str, trusted: str | None) -> Callable[[Context], list[Item]]:
    return lambda ctx: check_bootstrap(ctx, account, region, trusted)


def environment_checks(config: EnvironmentConfig, pipeline: PipelineConfig) -> list[Check]:
    """What is checked in a stage's account (after the caller's account)."""
    checks = [
        Check(
            "Bootstrap",
            f"CDK bootstrap in {region}",
            _bootstrap(config.account, region, pipeline.account),
        )
        for region in dict.fromkeys((config.region, EDGE_REGION))
    ]
    return [
        *checks,
        Check("DNS", f"hosted zone {config.hosted_zone_id}", lambda ctx: check_hosted_zone(ctx, config)),
        Check("Secrets", "secrets the stacks read", lambda ctx: check_read_secrets(ctx, config)),
        Check("Secrets", "media signing keys", lambda ctx: check_signing_keys(ctx, config)),
        Check("Quotas", "Lambda concurrency", lambda ctx: check_lambda_concurrency(ctx, config)),
        Check("Quotas", "Fargate vCPU", lambda ctx: check_fargate(ctx, config)),
        Check("Quotas", "Elastic IPs and VPCs", lambda ctx: check_network_quotas(ctx, config)),
        Check("Quotas", "Aurora clusters and instances", lambda ctx: check_aurora_quotas(ctx, config)),
        Check("Names", "names the stacks create are free", lambda ctx: check_fixed_names(ctx, config)),
    ]


def pipeline_checks(config: PipelineConfig) -> list[Check]:
    """What is checked in the pipeline's account (after the caller's account)."""
    return [
        *(
            Check(
                "Bootstrap",
                f"CDK bootstrap in {region}",
                _bootstrap(config.account, region, None),
            )
            for region in dict.fromkeys((config.region, EDGE_REGION))
        ),
        Check("Connection", "repository connection", lambda ctx: check_connection(ctx, config)),
    ]
