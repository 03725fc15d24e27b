"""`make preflight`: the placeholders of the shipped config, and every check against a faked AWS.

AWS is moto (`mock_aws`) where it answers the calls, and botocore's Stubber where moto does not
(CodeConnections, Lambda's account settings, Service Quotas beyond VPC, RDS account attributes): the
checks run unchanged against either. Public DNS is a dictionary passed as the resolver.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

from pipeline.preflight import checks, names
from pipeline.preflight.checks import (
    MIN_BOOTSTRAP_VERSION,
    READ_ACCESS,
    Aws,
    Check,
    Context,
    DnsUnavailable,
    NoDelegation,
)
from pipeline.preflight.names import fixed_names
from pipeline.preflight.placeholders import (
    PLACEHOLDER_KEY_FINGERPRINTS,
    SourceLocator,
    config_line,
    locate,
    placeholders,
)
from pipeline.preflight.results import Item, Status
from pipeline.preflight.run import Target, check_target, preflight, run_check
from stages.config import (
    EDGE_REGION,
    PIPELINE,
    PROD,
    STAGING,
    EnvironmentConfig,
    MediaSigningKey,
    PipelineConfig,
)
from tests.templates import ROOT, UNITS, Synthesized

REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's
PIPELINE_ACCOUNT = "444455556666"
ZONE = "staging.yoctogram.app"
NAME_SERVERS = {
    "ns-2048.awsdns-64.com",
    "ns-2049.awsdns-65.net",
    "ns-2050.awsdns-66.org",
    "ns-2051.awsdns-67.co.uk",
}
CONFIG_FILE = ROOT / "stages" / "config.py"


# --- configs -------------------------------------------------------------------------------------------
def key_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh RSA 2048 key."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@pytest.fixture(scope="module")
def signing_pair() -> tuple[str, str]:
    return key_pair()


def real_environment(public_pem: str, **changes: Any) -> EnvironmentConfig:
    """Staging as an adopting team fills it in: nothing left of the placeholders."""
    key = MediaSigningKey(
        public_key=public_pem, private_key_secret_name="yoctogram/staging/media-signing-private-key"
    )
    config = dataclasses.replace(
        STAGING,
        account=ACCOUNT,
        domain_name=ZONE,
        hosted_zone_id="Z04517273QBY3HZQ5PW1X",
        hosted_zone_name=ZONE,
        origin_domain_name=f"origin.{ZONE}",
        alarm_email="ops@yoctogram.app",
        media_signing_keys=(key,),
        active_media_signing_key=key.fingerprint,
    )
    return dataclasses.replace(config, **changes)


def real_pipeline(**changes: Any) -> PipelineConfig:
    """The pipeline's config as an adopting team fills it in (the connection in the pipeline's account)."""
    account = changes.get("account", PIPELINE_ACCOUNT)
    filled = {
        "account": account,
        "repository": "yoctogram-team/yoctogram-deploy",
        "connection_arn": f"arn:aws:codeconnections:us-west-2:{account}:connection/8a1f6e2c-3b4d-4e5f-9a0b-1c2d3e4f5a6b",
        "notification_email": "ops@yoctogram.app",
    }
    return dataclasses.replace(PIPELINE, **(filled | changes))


# --- offline: the placeholders -------------------------------------------------------------------------
SHIPPED_PLACEHOLDERS = {
    "STAGING": {
        "account",
        "domain_name",
        "hosted_zone_id",
        "hosted_zone_name",
        "origin_domain_name",
        "alarm_email",
        "media_signing_keys[0].public_key",
    },
    "PIPELINE": {"account", "repository", "connection_arn", "notification_email"},
}
SHIPPED_PLACEHOLDERS["PROD"] = SHIPPED_PLACEHOLDERS["STAGING"]


@pytest.mark.parametrize("config", [STAGING, PROD, PIPELINE], ids=["staging", "prod", "pipeline"])
def test_the_shipped_config_lists_each_placeholder_on_its_line(
    config: EnvironmentConfig | PipelineConfig,
) -> None:
    lines = CONFIG_FILE.read_text().splitlines()
    found = locate(config)
    variable = found[0].variable
    assert {p.field for p in found} == SHIPPED_PLACEHOLDERS[variable]
    for placeholder in found:
        assert placeholder.file == "stages/config.py"
        assert placeholder.line is not None
        text = lines[placeholder.line - 1]
        # The line is the field's keyword argument, and it shows the value to replace.
        assert f"{placeholder.path[-1]}=" in text, (placeholder, text)
        if placeholder.value == "None":
            assert f"{placeholder.path[-1]}=None" in text
        elif not placeholder.value.startswith("<"):
            assert f'"{placeholder.value}"' in text, (placeholder, text)
        # ...and it sits inside the config's own call.
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{variable} = "))
        assert placeholder.line > start
        assert str(placeholder).startswith(
            f"stages/config.py:{placeholder.line}: {variable}.{placeholder.field} = "
        )


def test_the_shipped_signing_keys_are_the_known_placeholders() -> None:
    shipped = {key.fingerprint for config in (STAGING, PROD) for key in config.media_signing_keys}
    assert shipped <= PLACEHOLDER_KEY_FINGERPRINTS


def test_a_filled_in_config_has_no_placeholders(signing_pair: tuple[str, str]) -> None:
    assert placeholders(real_environment(signing_pair[1])) == []
    assert placeholders(real_pipeline()) == []
    assert locate(real_pipeline()) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"account": "999999999999"}, "account"),
        ({"account": "000000000000"}, "account"),
        (
            {
                "domain_name": "www.yoctogram.test",
                "hosted_zone_name": "yoctogram.test",
                "origin_domain_name": "origin.yoctogram.test",
            },
            "domain_name",
        ),
        (
            {
                "domain_name": "staging.example.org",
                "hosted_zone_name": "example.org",
                "origin_domain_name": "o.example.org",
            },
            "hosted_zone_name",
        ),
        (
            {
                "origin_domain_name": f"origin.{ZONE}.invalid",
                "domain_name": f"{ZONE}.invalid",
                "hosted_zone_name": f"{ZONE}.invalid",
            },
            "origin_domain_name",
        ),
        ({"hosted_zone_id": "Z00000000000000000000"}, "hosted_zone_id"),
        ({"hosted_zone_id": "Z0000000000TEST"}, "hosted_zone_id"),
        ({"alarm_email": None}, "alarm_email"),
    ],
)
def test_each_kind_of_environment_placeholder_is_recognized(
    signing_pair: tuple[str, str], changes: dict[str, Any], field: str
) -> None:
    found = {path for path, _, _ in placeholders(real_environment(signing_pair[1], **changes))}
    assert (field,) in found
    assert all(path[0] in changes for path in found)


def test_a_shipped_signing_key_is_recognized_in_any_config(signing_pair: tuple[str, str]) -> None:
    shipped = STAGING.media_signing_keys[0]
    own = MediaSigningKey(public_key=signing_pair[1], private_key_secret_name="yoctogram/staging/next")
    config = real_environment(
        signing_pair[1], media_signing_keys=(own, shipped), active_media_signing_key=own.fingerprint
    )
    assert [path for path, _, _ in placeholders(config)] == [("media_signing_keys", 1, "public_key")]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"account": "555555555555"}, "account"),
        ({"repository": "example-org/yoctogram-deploy"}, "repository"),
        ({"repository": "Example/yoctogram"}, "repository"),
        (
            {
                "connection_arn": f"arn:aws:codestar-connections:us-west-2:{PIPELINE_ACCOUNT}:connection/00000000-0000-0000-0000-000000000000"
            },
            "connection_arn",
        ),
        ({"notification_email": None}, "notification_email"),
    ],
)
def test_each_kind_of_pipeline_placeholder_is_recognized(changes: dict[str, Any], field: str) -> None:
    found = {path for path, _, _ in placeholders(real_pipeline(**changes))}
    assert found == {(field,)}


LOCATOR_SOURCE = """
_ACCOUNT = "111111111111"
BASE = Config(
    name="base",
    account=_ACCOUNT,
    compressor=dataclasses.replace(
        _COMPRESSOR,
        reserved_concurrency=5,
    ),
    keys=(
        Key(public_key="a"),
        Key(
            public_key="b",
        ),
    ),
)
OTHER = dataclasses.replace(
    BASE,
    domain_name="x",
)
"""


@pytest.mark.parametrize(
    ("variable", "path", "line"),
    [
        ("BASE", ("account",), 2),  # the module-level name it is given by
        ("BASE", ("compressor", "reserved_concurrency"), 8),  # inside dataclasses.replace
        ("BASE", ("keys", 1, "public_key"), 13),  # inside a tuple of calls
        ("OTHER", ("domain_name",), 19),
        ("OTHER", ("account",), 2),  # not in OTHER's replace: BASE's, then the name's
        ("OTHER", ("name",), 4),
        ("BASE", ("alarm_email",), 3),  # left at its default: the config's own line
    ],
)
def test_the_locator_finds_the_line_to_edit(variable: str, path: tuple[str | int, ...], line: int) -> None:
    assert SourceLocator(LOCATOR_SOURCE).line(variable, path) == line


def test_config_line_follows_dataclasses_replace() -> None:
    where = config_line(PROD, ("compressor", "reserved_concurrency"))
    file, line = where.split(":")
    assert file == "stages/config.py"
    assert "reserved_concurrency=20" in CONFIG_FILE.read_text().splitlines()[int(line) - 1]


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """This environment with no AWS credentials anywhere boto3 looks (variables, files, instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    env |= {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return env


def run_preflight(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.preflight", *args],
        cwd=ROOT,
        env=clean_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_credentials_preflight_lists_the_placeholders_and_fails(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, "--env", "staging")
    assert result.returncode == 1, result.stderr
    for placeholder in locate(STAGING):
        assert placeholder.where in result.stdout
        assert placeholder.what in result.stdout
    assert "CANNOT CHECK  credentials of account 111111111111: no AWS credentials found" in result.stdout
    assert "export AWS_PROFILE=<a profile of account 111111111111>" in result.stdout
    assert "CANNOT CHECK  CDK bootstrap in us-east-1: no credentials (above)" in result.stdout
    assert "make preflight ENV=staging" in result.stdout


def test_offline_preflight_lists_every_accounts_placeholders(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, "--offline")
    assert result.returncode == 1, result.stderr
    for config in (STAGING, PROD, PIPELINE):
        for placeholder in locate(config):
            assert placeholder.where in result.stdout
    assert "Account" not in result.stdout and "CANNOT CHECK  " not in result.stdout


def test_an_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    result = run_preflight(tmp_path, "--env", "qa")
    assert result.returncode == 2
    assert "invalid choice: 'qa'" in result.stderr


# --- online: a faked AWS ---------------------------------------------------------------------------------
def trust_policy(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def bootstrap(session: boto3.Session, account: str, trusted: str, version: str = "21") -> None:
    """What `cdk bootstrap --trust` leaves that the checks read: the version parameter and the roles."""
    iam = session.client("iam")
    for region in (REGION, EDGE_REGION):
        session.client("ssm", region_name=region).put_parameter(
            Name="/cdk-bootstrap/hnb659fds/version", Value=version, Type="String"
        )
        for kind in checks.BOOTSTRAP_ROLES:
            iam.create_role(
                RoleName=f"cdk-hnb659fds-{kind}-role-{account}-{region}",
                AssumeRolePolicyDocument=trust_policy(trusted),
            )


@dataclass
class World:
    """A staging account with everything a first deployment needs, in moto and stubs."""

    session: boto3.Session
    ctx: Context
    config: EnvironmentConfig
    private_pem: str
    public_dns: dict[str, set[str]]
    stubs: dict[tuple[str, str], Stubber] = field(default_factory=dict)

    def stub(self, service: str, region: str = REGION) -> Stubber:
        """A Stubber on the run's client of `service` (created here, so the checks use it)."""
        if (service, region) not in self.stubs:
            client = self.session.client(service, region_name=region)
            self.ctx.aws.clients[(service, region)] = client
            self.stubs[(service, region)] = Stubber(client)
            self.stubs[(service, region)].activate()
        return self.stubs[(service, region)]

    def client(self, service: str, region: str = REGION) -> Any:
        return self.session.client(service, region_name=region)

    def use(self, **changes: Any) -> EnvironmentConfig:
        self.config = dataclasses.replace(self.config, **changes)
        return self.config

    def resolve(self, zone: str) -> set[str]:
        if zone not in self.public_dns:
            raise NoDelegation(f"The DNS query name does not exist: {zone}.")
        return self.public_dns[zone]

    def quota(self, quota: tuple[str, str], value: float) -> None:
        service, code = quota
        self.stub("service-quotas").add_response(
            "get_service_quota",
            {"Quota": {"ServiceCode": service, "QuotaCode": code, "Value": value}},
            {"ServiceCode": service, "QuotaCode": code},
        )

    def lambda_settings(self, limit: int = 1000, unreserved: int = 1000, own: int | None = None) -> None:
        stub = self.stub("lambda")
        stub.add_response(
            "get_account_settings",
            {"AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}},
        )
        if own is None:
            stub.add_client_error(
                "get_function_concurrency", "ResourceNotFoundException", http_status_code=404
            )
        else:
            stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": own})

    def rds(self, clusters: tuple[int, int] = (0, 40), instances: tuple[int, int] = (0, 40)) -> None:
        self.stub("rds").add_response(
            "describe_account_attributes",
            {
                "AccountQuotas": [
                    {"AccountQuotaName": "DBClusters", "Used": clusters[0], "Max": clusters[1]},
                    {"AccountQuotaName": "DBInstances", "Used": instances[0], "Max": instances[1]},
                ]
            },
        )

    def no_cluster(self) -> None:
        self.stub("rds").add_client_error(
            "describe_db_clusters", "DBClusterNotFoundFault", http_status_code=404
        )


@pytest.fixture
def world(signing_pair: tuple[str, str]) -> Iterator[World]:
    private_pem, public_pem = signing_pair
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        zone = session.client("route53").create_hosted_zone(Name=ZONE, CallerReference="preflight")
        zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[1]
        assert set(zone["DelegationSet"]["NameServers"]) == NAME_SERVERS
        config = real_environment(public_pem, hosted_zone_id=zone_id)
        bootstrap(session, ACCOUNT, PIPELINE_ACCOUNT)
        secrets = session.client("secretsmanager")
        secrets.create_secret(Name=config.datadog_api_key_secret_name, SecretString="datadog-api-key")
        secrets.create_secret(
            Name=config.active_signing_key.private_key_secret_name, SecretString=private_pem
        )
        world = World(
            session=session,
            ctx=Context(aws=Aws(session), pipeline=real_pipeline()),
            config=config,
            private_pem=private_pem,
            public_dns={ZONE: set(NAME_SERVERS)},
        )
        world.ctx.resolver = world.resolve
        yield world
        for stub in world.stubs.values():
            stub.assert_no_pending_responses()


def statuses(items: list[Item]) -> dict[str, Status]:
    return {item.title: item.status for item in items}


def only(items: list[Item]) -> Item:
    [item] = items
    return item


def test_a_ready_stage_account_is_all_ok(world: World) -> None:
    world.use(compressor=dataclasses.replace(world.config.compressor, reserved_concurrency=20))
    world.lambda_settings()
    world.quota(checks.FARGATE_VCPU_QUOTA, 40)
    world.quota(checks.EIP_QUOTA, 5)
    world.quota(checks.VPC_QUOTA, 5)
    world.rds()
    world.no_cluster()
    out = io.StringIO()
    items = preflight([Target("staging", world.config)], world.ctx, out=out)
    assert [i for i in items if i.status is not Status.OK] == []
    titles = {item.title for item in items}
    for expected in (
        f"credentials of account {ACCOUNT}",
        "CDK bootstrap in us-west-2",
        "CDK bootstrap in us-east-1",
        f"delegation of {ZONE}",
        "secret yoctogram/staging/datadog-api-key",
        f"signing key {world.config.active_media_signing_key} matches yoctogram/staging/media-signing-private-key",
        "Lambda concurrency",
        "Fargate vCPU",
        "Elastic IPs",
        "VPCs",
        "Aurora clusters and instances",
        *(f"{fixed.kind} {fixed.name}" for fixed in fixed_names(world.config)),
    ):
        assert expected in titles
    assert f"staging: {len(items)} OK, 0 FIX, 0 CANNOT CHECK" in out.getvalue()


def test_a_ready_pipeline_account_is_all_ok(world: World) -> None:
    pipeline = real_pipeline(account=ACCOUNT)
    world.stub("codeconnections").add_response(
        "get_connection",
        {
            "Connection": {
                "ConnectionName": "yoctogram",
                "ConnectionArn": pipeline.connection_arn,
                "ConnectionStatus": "AVAILABLE",
            }
        },
        {"ConnectionArn": pipeline.connection_arn},
    )
    items = list(check_target(Target("pipeline", pipeline), world.ctx, offline=False))
    assert statuses(items) == {
        "stages/config.py": Status.OK,
        f"credentials of account {ACCOUNT}": Status.OK,
        "CDK bootstrap in us-west-2": Status.OK,
        "CDK bootstrap in us-east-1": Status.OK,
        "repository connection": Status.OK,
    }


# --- the caller's account ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("shared", "expected"), [(False, Status.FIX), (True, Status.CANNOT_CHECK)])
def test_credentials_of_another_account_check_nothing_else(
    world: World, shared: bool, expected: Status
) -> None:
    config = world.use(account="210987654321")
    items = list(check_target(Target("staging", config), world.ctx, offline=False, shared_credentials=shared))
    account = next(i for i in items if i.group == "Account")
    assert account.status is expected
    assert f"they are for account {ACCOUNT}" in account.detail
    assert "export AWS_PROFILE=<a profile of account 210987654321>" in account.fix
    rest = items[items.index(account) + 1 :]
    assert len(rest) == len(checks.environment_checks(config, PIPELINE))
    assert all(i.status is Status.CANNOT_CHECK for i in rest)


# --- bootstrap -------------------------------------------------------------------------------------------
def test_an_account_not_bootstrapped_in_a_region_is_fixed_with_the_command(world: World) -> None:
    world.client("ssm", EDGE_REGION).delete_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    item = only(checks.check_bootstrap(world.ctx, ACCOUNT, EDGE_REGION, PIPELINE_ACCOUNT))
    assert item.status is Status.FIX
    assert "not bootstrapped" in item.detail
    assert f"npx cdk bootstrap aws://{ACCOUNT}/us-east-1 --trust {PIPELINE_ACCOUNT} " in item.fix
    assert "--cloudformation-execution-policies arn:aws:iam::aws:policy/AdministratorAccess" in item.fix
    assert only(checks.check_bootstrap(world.ctx, ACCOUNT, REGION, PIPELINE_ACCOUNT)).status is Status.OK


def test_an_old_bootstrap_is_fixed(world: World) -> None:
    world.client("ssm").put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version",
        Value=str(MIN_BOOTSTRAP_VERSION - 1),
        Type="String",
        Overwrite=True,
    )
    item = only(checks.check_bootstrap(world.ctx, ACCOUNT, REGION, PIPELINE_ACCOUNT))
    assert item.status is Status.FIX
    assert f"need {MIN_BOOTSTRAP_VERSION} or newer" in item.detail
    assert f"npx cdk bootstrap aws://{ACCOUNT}/us-west-2" in item.fix


def test_a_bootstrap_that_does_not_trust_the_pipeline_account_is_fixed(world: World) -> None:
    role = f"cdk-hnb659fds-file-publishing-role-{ACCOUNT}-{REGION}"
    world.client("iam").update_assume_role_policy(RoleName=role, PolicyDocument=trust_policy(ACCOUNT))
    item = only(checks.check_bootstrap(world.ctx, ACCOUNT, REGION, PIPELINE_ACCOUNT))
    assert item.status is Status.FIX
    assert role in item.detail and f"do not trust the pipeline account {PIPELINE_ACCOUNT}" in item.detail
    assert f"--trust {PIPELINE_ACCOUNT}" in item.fix
    # The pipeline's own account needs no trust.
    assert only(checks.check_bootstrap(world.ctx, ACCOUNT, REGION, None)).status is Status.OK


def test_a_bootstrap_without_its_deploy_role_is_fixed(world: World) -> None:
    role = f"cdk-hnb659fds-deploy-role-{ACCOUNT}-{EDGE_REGION}"
    world.client("iam").delete_role(RoleName=role)
    item = only(checks.check_bootstrap(world.ctx, ACCOUNT, EDGE_REGION, PIPELINE_ACCOUNT))
    assert item.status is Status.FIX
    assert f"no role {role}" in item.detail


@pytest.mark.parametrize(
    "principal",
    [
        PIPELINE_ACCOUNT,
        f"arn:aws:iam::{PIPELINE_ACCOUNT}:root",
        [ACCOUNT, f"arn:aws-cn:iam::{PIPELINE_ACCOUNT}:root"],
    ],
)
def test_trust_reads_every_way_iam_writes_an_account(principal: Any) -> None:
    document = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": ["sts:AssumeRole"]}]
    }
    assert checks.trusts(document, PIPELINE_ACCOUNT)
    assert checks.trusts(json.dumps(document).replace(" ", "%20"), PIPELINE_ACCOUNT)
    assert not checks.trusts(document, "999988887777")
    assert not checks.trusts(
        {"Statement": [{**document["Statement"][0], "Effect": "Deny"}]}, PIPELINE_ACCOUNT
    )


# --- the connection -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "expected", "says"),
    [
        ("AVAILABLE", Status.OK, ""),
        ("PENDING", Status.FIX, "finish the handshake"),
        ("ERROR", Status.FIX, "update it, or create a new connection"),
    ],
)
@pytest.mark.parametrize("service", ["codeconnections", "codestar-connections"])
def test_the_connection_must_be_available(
    world: World, service: str, status: str, expected: Status, says: str
) -> None:
    pipeline = real_pipeline()
    arn = pipeline.connection_arn.replace(":codeconnections:", f":{service}:")
    pipeline = dataclasses.replace(pipeline, connection_arn=arn)
    world.stub(service).add_response(
        "get_connection",
        {"Connection": {"ConnectionName": "yoctogram", "ConnectionArn": arn, "ConnectionStatus": status}},
        {"ConnectionArn": arn},
    )
    item = only(checks.check_connection(world.ctx, pipeline))
    assert item.status is expected
    assert says in item.fix


def test_a_missing_connection_is_fixed(world: World) -> None:
    world.stub("codeconnections").add_client_error(
        "get_connection", "ResourceNotFoundException", http_status_code=400
    )
    item = only(checks.check_connection(world.ctx, real_pipeline()))
    assert item.status is Status.FIX
    assert "docs/deploying.md, One-time setup" in item.fix


# --- DNS -----------------------------------------------------------------------------------------------------
def test_a_missing_hosted_zone_is_fixed(world: World) -> None:
    world.use(hosted_zone_id="Z04517273QBY3HZQ5PW1X")
    item = only(checks.check_hosted_zone(world.ctx, world.config))
    assert item.status is Status.FIX
    assert f"no such zone in account {ACCOUNT}" in item.detail
    assert f"--name {ZONE}" in item.fix


def test_a_zone_of_another_name_is_fixed(world: World) -> None:
    other = world.client("route53").create_hosted_zone(Name="photos.yoctogram.app", CallerReference="other")
    world.use(hosted_zone_id=other["HostedZone"]["Id"].rsplit("/", 1)[1])
    item = only(checks.check_hosted_zone(world.ctx, world.config))
    assert item.status is Status.FIX
    assert f"this zone is photos.yoctogram.app, not {ZONE}" in item.detail


def test_a_private_zone_is_fixed(world: World) -> None:
    vpc = world.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    private = world.client("route53").create_hosted_zone(
        Name=ZONE,
        CallerReference="private",
        HostedZoneConfig={"Comment": "private", "PrivateZone": True},
        VPC={"VPCRegion": REGION, "VPCId": vpc},
    )
    world.use(hosted_zone_id=private["HostedZone"]["Id"].rsplit("/", 1)[1])
    item = only(checks.check_hosted_zone(world.ctx, world.config))
    assert item.status is Status.FIX
    assert "private zone" in item.detail


@pytest.mark.parametrize(
    ("public", "says"),
    [
        (None, "public DNS has no name servers"),
        ({"ns1.registrar-dns.net", "ns2.registrar-dns.net"}, "public DNS names ns1"),
    ],
)
def test_a_zone_public_dns_does_not_delegate_to_is_fixed(
    world: World, public: set[str] | None, says: str
) -> None:
    if public is None:
        del world.public_dns[ZONE]
    else:
        world.public_dns[ZONE] = public
    zone, delegation = checks.check_hosted_zone(world.ctx, world.config)
    assert zone.status is Status.OK
    assert delegation.status is Status.FIX
    assert says in delegation.detail
    assert "in the parent zone yoctogram.app" in delegation.fix
    assert ", ".join(sorted(NAME_SERVERS)) in delegation.fix


def test_a_dns_that_does_not_answer_cannot_check_the_delegation(world: World) -> None:
    def unavailable(zone: str) -> set[str]:
        raise DnsUnavailable("The resolution lifetime expired")

    world.ctx.resolver = unavailable
    _, delegation = checks.check_hosted_zone(world.ctx, world.config)
    assert delegation.status is Status.CANNOT_CHECK
    assert f"dig NS {ZONE}" in delegation.fix


# --- secrets -------------------------------------------------------------------------------------------------
def test_a_missing_secret_the_stacks_read_is_fixed_with_the_command(world: World) -> None:
    world.client("secretsmanager").delete_secret(
        SecretId=world.config.datadog_api_key_secret_name, ForceDeleteWithoutRecovery=True
    )
    items = checks.check_read_secrets(world.ctx, world.config)
    assert statuses(items) == {
        "secret yoctogram/staging/datadog-api-key": Status.FIX,
        "secret yoctogram/staging/media-signing-private-key": Status.OK,
    }
    assert items[0].fix.startswith(
        "aws secretsmanager create-secret --region us-west-2 --name yoctogram/staging/datadog-api-key"
    )


def test_a_secret_scheduled_for_deletion_is_fixed_with_a_restore(world: World) -> None:
    name = world.config.active_signing_key.private_key_secret_name
    world.client("secretsmanager").delete_secret(SecretId=name, RecoveryWindowInDays=7)
    item = next(i for i in checks.check_read_secrets(world.ctx, world.config) if name in i.title)
    assert item.status is Status.FIX
    assert "scheduled for deletion" in item.detail
    assert item.fix == f"aws secretsmanager restore-secret --region us-west-2 --secret-id {name}"
    assert only(checks.check_signing_keys(world.ctx, world.config)).status is Status.CANNOT_CHECK


@pytest.mark.parametrize("held", ["another key", "not a key"])
def test_a_signing_secret_that_does_not_match_the_config_is_fixed(world: World, held: str) -> None:
    other_private, other_public = key_pair()
    name = world.config.active_signing_key.private_key_secret_name
    world.client("secretsmanager").put_secret_value(
        SecretId=name, SecretString=other_private if held == "another key" else "-----BEGIN NOTHING-----"
    )
    item = only(checks.check_signing_keys(world.ctx, world.config))
    assert item.status is Status.FIX
    if held == "another key":
        other = MediaSigningKey(public_key=other_public, private_key_secret_name=name).fingerprint
        assert (
            f"holds the private half of key {other}, not {world.config.active_media_signing_key}"
            in item.detail
        )
    else:
        assert "not an unencrypted PEM private key" in item.detail
    assert f"put-secret-value --region us-west-2 --secret-id {name}" in item.fix


# --- quotas --------------------------------------------------------------------------------------------------
def test_a_reserved_concurrency_the_account_cannot_spare_is_fixed(world: World) -> None:
    world.use(compressor=dataclasses.replace(world.config.compressor, reserved_concurrency=20))
    world.lambda_settings(limit=50, unreserved=50)
    item = only(checks.check_lambda_concurrency(world.ctx, world.config))
    assert item.status is Status.FIX
    assert "--service-code lambda --quota-code L-B99A9384 --desired-value 120" in item.fix
    assert "reserved_concurrency=None" in item.fix


def test_the_compressors_own_reservation_counts_as_available(world: World) -> None:
    world.use(compressor=dataclasses.replace(world.config.compressor, reserved_concurrency=20))
    world.lambda_settings(limit=1000, unreserved=110, own=20)
    assert only(checks.check_lambda_concurrency(world.ctx, world.config)).status is Status.OK


def test_no_reserved_concurrency_asks_lambda_nothing(world: World) -> None:
    world.use(compressor=dataclasses.replace(world.config.compressor, reserved_concurrency=None))
    assert only(checks.check_lambda_concurrency(world.ctx, world.config)).status is Status.OK


def test_a_denied_call_cannot_check_and_says_what_access_is_needed(world: World) -> None:
    world.use(compressor=dataclasses.replace(world.config.compressor, reserved_concurrency=20))
    world.stub("lambda").add_client_error("get_account_settings", "AccessDeniedException", "not authorized")
    item = only(
        run_check(
            Check(
                "Quotas", "Lambda concurrency", lambda ctx: checks.check_lambda_concurrency(ctx, world.config)
            ),
            world.ctx,
        )
    )
    assert item.status is Status.CANNOT_CHECK
    assert "GetAccountSettings: AccessDeniedException: not authorized" in item.detail
    assert item.fix == READ_ACCESS


def test_fargate_needs_what_a_deployment_runs_at_once() -> None:
    # prod: 10 web tasks of 1 vCPU and 2 workers of 0.25, doubled; a migration and a cleanup task.
    assert checks.fargate_vcpus(PROD) == 22
    assert checks.fargate_vcpus(STAGING) == 4


def test_a_fargate_quota_below_the_stage_is_fixed(world: World) -> None:
    world.stub("service-quotas").add_response("get_service_quota", {"Quota": {"Value": 6.0}})
    config = world.use(max_tasks=10, task_cpu=1024, task_memory_mib=2048, worker_tasks=2)
    item = only(checks.check_fargate(world.ctx, config))
    assert item.status is Status.FIX
    assert "22 vCPU at most during a deployment" in item.detail
    assert "--service-code fargate --quota-code L-3032A538 --desired-value 22" in item.fix


def test_a_quota_never_changed_reads_its_default(world: World) -> None:
    stub = world.stub("service-quotas")
    stub.add_client_error("get_service_quota", "NoSuchResourceException", http_status_code=400)
    stub.add_response("get_aws_default_service_quota", {"Quota": {"Value": 4.0}})
    item = only(checks.check_fargate(world.ctx, world.config))
    assert item.status is Status.OK and "quota 4" in item.detail


def test_network_quotas_below_the_stage_are_fixed(world: World) -> None:
    config = world.use(nat_gateways=2)
    world.client("ec2").allocate_address(Domain="vpc")
    world.quota(checks.EIP_QUOTA, 2)  # one address and the default VPC are in use
    world.quota(checks.VPC_QUOTA, 1)
    eips, vpcs = checks.check_network_quotas(world.ctx, config)
    assert (
        eips.status is Status.FIX and "1 in use, 3 with the stage's 2 NAT gateway(s); quota 2" in eips.detail
    )
    assert "--service-code ec2 --quota-code L-0263D0A3 --desired-value 3" in eips.fix
    assert (
        vpcs.status is Status.FIX
        and "--service-code vpc --quota-code L-F678F1CE --desired-value 2" in vpcs.fix
    )


def create_stack(world: World, name: str, region: str = REGION) -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    world.client("cloudformation", region).create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_a_deployed_network_stack_holds_its_addresses_already(world: World) -> None:
    create_stack(world, world.config.stack_name("network"))
    world.quota(checks.EIP_QUOTA, 0)
    world.quota(checks.VPC_QUOTA, 1)
    assert [i.status for i in checks.check_network_quotas(world.ctx, world.config)] == [Status.OK, Status.OK]


def test_an_aurora_quota_without_room_is_fixed(world: World) -> None:
    world.rds(clusters=(40, 40))
    item = only(checks.check_aurora_quotas(world.ctx, world.config))
    assert item.status is Status.FIX
    assert "DBClusters: 40 used of 40, the stage adds 1" in item.detail
    create_stack(world, world.config.stack_name("data"))
    # A new run: a run reads each stack's status once.
    deployed = Context(aws=world.ctx.aws, pipeline=world.ctx.pipeline)
    assert only(checks.check_aurora_quotas(deployed, world.config)).status is Status.OK


# --- names the stacks create ---------------------------------------------------------------------------------
def names_items(world: World) -> dict[str, Item]:
    return {item.title: item for item in checks.check_fixed_names(world.ctx, world.config)}


def test_a_leftover_secret_is_fixed(world: World) -> None:
    secrets = world.client("secretsmanager")
    secrets.create_secret(Name="yoctogram/staging/secret-key", SecretString="x")
    secrets.create_secret(Name="yoctogram/staging/origin-verify", SecretString="x")
    secrets.delete_secret(SecretId="yoctogram/staging/origin-verify", RecoveryWindowInDays=30)
    world.no_cluster()
    items = names_items(world)
    kept, deleted = (
        items["secret yoctogram/staging/secret-key"],
        items["secret yoctogram/staging/origin-verify"],
    )
    assert kept.status is Status.FIX and "exists, outside the stack" in kept.detail
    assert deleted.status is Status.FIX and "deletion recovery window" in deleted.detail
    assert (
        "aws secretsmanager delete-secret --region us-west-2 --secret-id yoctogram/staging/origin-verify "
        "--force-delete-without-recovery" in deleted.fix
    )
    assert "owner" in deleted.fix  # never without asking
    assert items["secret yoctogram/staging/database"].status is Status.OK


def test_a_leftover_bucket_log_group_or_cluster_is_fixed(world: World) -> None:
    bucket = f"yoctogram-staging-private-images-{ACCOUNT}"
    world.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    world.client("logs", EDGE_REGION).create_log_group(logGroupName="aws-waf-logs-yoctogram-staging")
    world.client("logs").create_log_group(logGroupName="/aws/lambda/yoctogram-staging-compressor-old")
    world.stub("rds").add_response(
        "describe_db_clusters",
        {"DBClusters": [{"DBClusterIdentifier": "yoctogram-staging", "Status": "stopped"}]},
    )
    items = names_items(world)
    assert items[f"bucket {bucket}"].status is Status.FIX
    assert f"aws s3 rb s3://{bucket} --force" in items[f"bucket {bucket}"].fix
    waf = items["log group aws-waf-logs-yoctogram-staging"]
    assert waf.status is Status.FIX and "--region us-east-1" in waf.fix
    # A longer name that merely starts with ours is not ours.
    assert items["log group /aws/lambda/yoctogram-staging-compressor"].status is Status.OK
    cluster = items["database cluster yoctogram-staging"]
    assert cluster.status is Status.FIX and "exists (stopped)" in cluster.detail
    assert "--final-db-snapshot-identifier" in cluster.fix
    assert items[f"bucket yoctogram-staging-public-images-{ACCOUNT}"].status is Status.OK


def test_a_leftover_queue_or_ecs_cluster_is_fixed(world: World) -> None:
    queue = world.client("sqs").create_queue(QueueName="yoctogram-staging-events")["QueueUrl"]
    world.client("ecs").create_cluster(clusterName="yoctogram-staging")
    world.no_cluster()
    items = names_items(world)
    leftover = items["queue yoctogram-staging-events"]
    assert leftover.status is Status.FIX
    assert f"aws sqs delete-queue --region us-west-2 --queue-url {queue}" in leftover.fix
    assert items["queue yoctogram-staging-events-dlq"].status is Status.OK
    cluster = items["ECS cluster yoctogram-staging"]
    assert cluster.status is Status.FIX
    assert "aws ecs delete-cluster --region us-west-2 --cluster yoctogram-staging" in cluster.fix


def test_a_deleted_ecs_cluster_leaves_its_name_free(world: World) -> None:
    ecs = world.client("ecs")
    ecs.create_cluster(clusterName="yoctogram-staging")
    ecs.delete_cluster(cluster="yoctogram-staging")
    world.no_cluster()
    assert names_items(world)["ECS cluster yoctogram-staging"].status is Status.OK


def test_the_names_of_a_deployed_stack_are_its_own(world: World) -> None:
    create_stack(world, world.config.stack_name("data"))
    world.client("secretsmanager").create_secret(Name="yoctogram/staging/secret-key", SecretString="x")
    items = names_items(world)
    assert items["stack yoctogram-staging-data"].status is Status.OK
    assert "secret yoctogram/staging/secret-key" not in items
    assert (
        items["secret yoctogram/staging/origin-verify"].status is Status.OK
    )  # the app stack's: not deployed


def test_a_stack_left_in_rollback_complete_is_fixed(world: World) -> None:
    stub = world.stub("cloudformation")
    stub.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "yoctogram-staging-data",
                    "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                    "StackStatus": "ROLLBACK_COMPLETE",
                }
            ]
        },
        {"StackName": "yoctogram-staging-data"},
    )
    for unit in ("app", "network"):  # the other stacks of us-west-2 that name resources
        stub.add_client_error(
            "describe_stacks",
            "ValidationError",
            f"Stack with id yoctogram-staging-{unit} does not exist",
            400,
        )
    world.no_cluster()
    items = names_items(world)
    stack = items["stack yoctogram-staging-data"]
    assert stack.status is Status.FIX
    assert (
        "aws cloudformation delete-stack --region us-west-2 --stack-name yoctogram-staging-data" in stack.fix
    )
    assert items["secret yoctogram/staging/database"].status is Status.OK  # what it kept is checked too


# --- the checks stay true to the stacks (one synthesis, shared with the infrastructure tests) ----------------
NAMED = {
    "AWS::SecretsManager::Secret": (names.SECRET, "Name"),
    "AWS::S3::Bucket": (names.BUCKET, "BucketName"),
    "AWS::Logs::LogGroup": (names.LOG_GROUP, "LogGroupName"),
    "AWS::RDS::DBCluster": (names.DB_CLUSTER, "DBClusterIdentifier"),
    "AWS::ECS::Cluster": (names.ECS_CLUSTER, "ClusterName"),
    "AWS::SQS::Queue": (names.QUEUE, "QueueName"),
}
"""The kinds of resource that can outlive their stack (retained, in a recovery window, re-created by their
service) or whose name stays taken a while (a queue's, 60 s), by the property that names them."""


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_the_fixed_names_are_every_name_the_templates_fix(synthesized: Synthesized, name: str) -> None:
    stage = synthesized.stages[name]
    in_templates = set()
    for unit in UNITS:
        for resource in stage.raw[unit]["Resources"].values():
            if resource["Type"] in NAMED:
                kind, key = NAMED[resource["Type"]]
                value = resource.get("Properties", {}).get(key)
                if isinstance(value, str):
                    in_templates.add((kind, value, unit.lower(), stage.region(unit)))
    listed = {(f.kind, f.name, f.unit, f.region) for f in fixed_names(stage.config)}
    assert listed == in_templates


def test_the_minimum_bootstrap_version_is_what_the_stacks_require(synthesized: Synthesized) -> None:
    manifests = [stage.manifest for stage in synthesized.stages.values()]
    assert synthesized.top is not None
    manifests.append(synthesized.top.manifest)
    required = {
        artifact["properties"]["requiresBootstrapStackVersion"]
        for manifest in manifests
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
        and "requiresBootstrapStackVersion" in artifact.get("properties", {})
    }
    assert max(required) == MIN_BOOTSTRAP_VERSION
