"""Staging and prod differ only where their config does."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from typing import Any

import pytest

from stages.config import PROD, STAGING, MediaSigningKey
from tests.templates import UNITS, StageTemplates, Synthesized


def differing_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(STAGING) if getattr(STAGING, f.name) != getattr(PROD, f.name)}


def test_the_configs_differ_in_sizes_names_and_retention_only() -> None:
    assert differing_fields() <= {
        "name",
        "account",
        "domain_name",
        "hosted_zone_id",
        "hosted_zone_name",
        "origin_domain_name",
        "vpc_cidr",
        "nat_gateways",
        "task_cpu",
        "task_memory_mib",
        "min_tasks",
        "max_tasks",
        "scaling_cpu_target_percent",
        "web_concurrency",
        "web_deployment",
        "db_pool_size",
        "db_max_overflow",
        "worker_tasks",
        "aurora_min_acu",
        "aurora_max_acu",
        "aurora_readers",
        "backup_retention_days",
        "database_insights",
        "retain_data",
        "images_recoverable_days",
        "log_retention_days",
        "alarm_thresholds",
        "auth_rate_limit_per_5_minutes",
        "api_rate_limit_per_5_minutes",
        "compressor",
        "datadog_api_key_secret_name",
        "media_signing_keys",
        "active_media_signing_key",
    }
    staging, prod = dataclasses.asdict(STAGING.compressor), dataclasses.asdict(PROD.compressor)
    assert {field for field in staging if staging[field] != prod[field]} <= {"reserved_concurrency"}


def normalized(stage: StageTemplates) -> dict[str, Any]:
    """The stage's templates with every config-derived string replaced by the name of its field.

    Logical ids are replaced by construct paths inside the stage (a few CDK-made ids embed the stage's
    own id), so the two stages can be compared node by node.
    """
    config = stage.config
    stage_id = {"staging": "Staging", "prod": "Prod"}[config.name]
    text = json.dumps(stage.raw)
    for unit in UNITS:
        for logical_id, resource in stage.raw[unit]["Resources"].items():
            # The stage's id as a word: `Prod` in `ProductionRule` is part of another name.
            path = re.sub(
                rf"\b{stage_id}\b", "<stage>", resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
            )
            text = text.replace(f'"{logical_id}"', json.dumps(path))
    vpc_net = config.vpc_cidr.rsplit(".", 2)[0] + "."
    markers = [
        *(
            (json.dumps(key.encoded_key)[1:-1], "<media_signing_public_key>")
            for key in config.media_signing_keys
        ),
        *((key.fingerprint, "<fingerprint>") for key in config.media_signing_keys),
        (config.origin_domain_name, "<origin_domain_name>"),
        (config.domain_name, "<domain_name>"),
        (config.hosted_zone_id, "<hosted_zone_id>"),
        (config.account, "<account>"),
        (f"yoctogram-{config.name}", "yoctogram-<name>"),
        (f"yoctogram/{config.name}/", "yoctogram/<name>/"),
        (f'"{vpc_net}', '"<vpc_net>.'),
        (f'"{config.name}"', '"<name>"'),
        (f"{stage_id}/", "<stage>/"),
    ]
    for value, placeholder in markers:
        text = text.replace(value, placeholder)
    # The CDK names some things after a construct's unique id (stage id first, a hash last): a rule between
    # two security groups after its peer, CloudFront origins after the distribution.
    text = re.sub(rf"{stage_id}(?=[A-Z])", "<stage>", text)
    text = re.sub(r"(<stage>[A-Za-z0-9]*)[0-9A-F]{8}(?![0-9A-Za-z])", r"\1", text)
    # Ids made from a path that holds a key's fingerprint end in a hash of that path.
    text = re.sub(r"<fingerprint>[0-9A-F]{8,16}(?![0-9A-Za-z])", "<fingerprint>", text)
    # BucketDeployment tags the bucket it owns with a hash of its own path.
    text = re.sub(r"aws-cdk:cr-owned:[0-9a-f]{8}", "aws-cdk:cr-owned:<hash>", text)
    # Construct addresses (a hash of the path), e.g. a CloudFront public key's caller reference.
    text = re.sub(r'"c8[0-9a-f]{40}"', '"<construct address>"', text)
    templates = json.loads(text)
    for template in templates.values():
        for resource in template["Resources"].values():
            resource.pop("Metadata", None)  # construct paths and CDK bookkeeping, not deployed settings
    return templates


def differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Leaf paths where `a` and `b` differ (a missing key is a difference of the whole subtree)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            found += differences(a.get(key, MISSING), b.get(key, MISSING), f"{path}/{key}")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for index, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{index}]")
        ]
    return [] if a == b else [(path, a, b)]


MISSING = "<missing>"


def explained_values() -> list[tuple[Any, Any]]:
    """(staging, prod) value pairs that a config field accounts for."""
    numbers = [
        (getattr(STAGING, f), getattr(PROD, f))
        for f in differing_fields()
        if isinstance(getattr(STAGING, f), int | float) and not isinstance(getattr(STAGING, f), bool)
    ]
    for nested in ("alarm_thresholds", "compressor", "web_deployment"):
        numbers += [
            (getattr(getattr(STAGING, nested), f.name), getattr(getattr(PROD, nested), f.name))
            for f in dataclasses.fields(getattr(STAGING, nested))
        ]
    return [pair for pair in numbers if pair[0] != pair[1]]


# retain_data: deletion protection, termination protection, removal policies.
RETAIN_DATA_PAIRS = {
    ("false", "true"),
    ('"false"', '"true"'),
    ('"Delete"', '"Retain"'),
    ('"Snapshot"', '"Retain"'),
    (f'"{MISSING}"', '"Retain"'),
}


def explained(a: Any, b: Any, numbers: list[tuple[Any, Any]]) -> bool:
    """Whether a config field accounts for staging's `a` becoming prod's `b`."""
    if (json.dumps(a), json.dumps(b)) in RETAIN_DATA_PAIRS:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if a == MISSING and isinstance(b, int | float):
        # an optional setting (None: the property is left out) that one environment sets
        return any(low is None and high == b for low, high in numbers)
    numbers = [(low, high) for low, high in numbers if low is not None and high is not None]
    if isinstance(a, int | float) and isinstance(b, int | float):
        return any(float(a) == low and float(b) == high for low, high in numbers)
    if isinstance(a, str) and isinstance(b, str):
        # a number inside a string (task CPU "512", a dashboard annotation in its JSON body)
        for low, high in numbers:
            for low_text, high_text in {(str(low), str(high)), (f"{low:g}", f"{high:g}")}:
                pattern = rf"(?<![0-9.]){re.escape(low_text)}(?![0-9.])"
                if re.sub(pattern, high_text, a) == b:
                    return True
    return False


def test_staging_and_prod_differ_only_where_config_does(synthesized: Synthesized) -> None:
    staging, prod = (normalized(synthesized.stages[name]) for name in ("staging", "prod"))
    numbers = explained_values()
    # Resources whose number follows config (NAT gateways and their EIPs, Aurora readers, the bucket
    # emptiers of an environment without retain_data), and the asset of the web client's config.json,
    # whose content names its environment.
    extra = re.compile(
        r"/(PublicSubnet\d/(NATGateway|EIP)|Reader\d+)\b|/EntryPage/.*/SourceObjectKeys\[1\]$|EmptiedOnDelete"
        # versioning of the images buckets follows images_recoverable_days
        r"|/Images/(Public|Private)/Bucket/Resource/Properties/(VersioningConfiguration|LifecycleConfiguration)"
        # Database Insights follows database_insights
        r"|/Database/Cluster/(Writer/|Reader\d+/)?Resource/Properties/(DatabaseInsightsMode|PerformanceInsights\w+|EnablePerformanceInsights)"
    )
    unexplained = [
        (path, a, b)
        for path, a, b in differences(staging, prod)
        if not explained(a, b, numbers)
        and not (extra.search(path) or extra.search(str(a)) or extra.search(str(b)))
    ]
    assert not unexplained, unexplained


def test_resource_counts_differ_only_by_config(synthesized: Synthesized) -> None:
    staging, prod = synthesized.stages["staging"], synthesized.stages["prod"]
    explained = Counter(
        {
            "AWS::EC2::NatGateway": PROD.nat_gateways - STAGING.nat_gateways,
            "AWS::EC2::EIP": PROD.nat_gateways - STAGING.nat_gateways,
            "AWS::RDS::DBInstance": PROD.aurora_readers - STAGING.aurora_readers,
        }
    )
    difference: Counter[str] = Counter()
    for unit in UNITS:
        difference.update(Counter(r["Type"] for r in prod.raw[unit]["Resources"].values()))
        difference.subtract(Counter(r["Type"] for r in staging.raw[unit]["Resources"].values()))
        # Only without retain_data: the buckets are emptied when their stack is deleted.
        emptiers = [
            r["Type"]
            for r in staging.raw[unit]["Resources"].values()
            if "/EmptiedOnDelete/" in r.get("Metadata", {}).get("aws:cdk:path", "")
        ]
        difference.update(Counter(emptiers))
    assert +difference == +explained and -difference == -explained


def test_no_template_names_the_other_environment(synthesized: Synthesized) -> None:
    for this, other in (("staging", "prod"), ("prod", "staging")):
        other_config = synthesized.stages[other].config
        text = json.dumps(synthesized.stages[this].raw)
        for marker in (
            other_config.account,
            f"yoctogram-{other_config.name}",
            f"yoctogram/{other_config.name}/",
        ):
            assert marker not in text, (this, marker)
        assert other_config.domain_name not in text.replace(synthesized.stages[this].config.domain_name, "")


def test_a_signing_key_that_is_not_a_public_pem_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PEM public key"):
        MediaSigningKey(
            public_key="-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
            private_key_secret_name="yoctogram/staging/media-signing-private-key",
        )


def test_config_rejects_settings_that_cannot_deploy() -> None:
    for bad in (
        {"compressor": dataclasses.replace(STAGING.compressor, output_format="png")},
        {"compressor": dataclasses.replace(STAGING.compressor, retry_attempts=3)},
        {"compressor": dataclasses.replace(STAGING.compressor, max_event_age_minutes=0)},
        {"auth_rate_limit_per_5_minutes": 5},
        {"api_rate_limit_per_5_minutes": 5},
        {"max_upload_bytes": 0},
        {"active_media_signing_key": "000000000000"},
        {"media_signing_keys": ()},
        {"media_signing_keys": STAGING.media_signing_keys * 2},
        {"compressor": dataclasses.replace(STAGING.compressor, reserved_concurrency=0)},
        {"region": "eu-south-2", "availability_zones": ("eu-south-2a", "eu-south-2b")},
    ):
        with pytest.raises(ValueError, match=STAGING.name):
            dataclasses.replace(STAGING, **bad)
