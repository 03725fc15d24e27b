"""The edge stack (us-east-1): certificate, WAF, media signing key; and how us-west-2 refers to it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aws_cdk as cdk
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from stages.config import STAGING, EnvironmentConfig, MediaSigningKey
from stages.edge_stack import EdgeStack
from tests.templates import UNITS, StageTemplates


def distribution_config(stage: StageTemplates) -> dict[str, Any]:
    [distribution] = stage.resources("App", "AWS::CloudFront::Distribution").values()
    return distribution["Properties"]["DistributionConfig"]


def test_edge_stack_in_us_east_1_and_the_rest_in_the_configured_region(stage: StageTemplates) -> None:
    assert stage.region("Edge") == "us-east-1"
    for unit in UNITS[1:]:
        assert stage.region(unit) == stage.config.region == "us-west-2", unit
    assert stage.stack_properties("Edge")["stackName"] == f"yoctogram-{stage.config.name}-edge"


def test_edge_deploys_first(stage: StageTemplates) -> None:
    """docs/design.md: edge, network, data, migrations, app."""
    artifacts = stage.manifest["artifacts"]
    by_unit = {
        unit: next(
            artifact_id
            for artifact_id, a in artifacts.items()
            if a.get("properties", {}).get("stackName") == stage.stack_names[unit]
        )
        for unit in UNITS
    }
    depends = {unit: set(artifacts[by_unit[unit]].get("dependencies", [])) for unit in UNITS}
    assert not depends["Edge"] & set(by_unit.values())
    assert by_unit["Edge"] in depends["Network"]
    assert {by_unit["Edge"], by_unit["Migrations"]} <= depends["App"]


def test_certificate_validated_by_dns_without_a_custom_resource(stage: StageTemplates) -> None:
    config = stage.config
    stage.template("Edge").has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": config.domain_name,
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [
                {"DomainName": config.domain_name, "HostedZoneId": config.hosted_zone_id}
            ],
        },
    )
    for unit in UNITS:
        types = {r["Type"] for r in stage.raw[unit]["Resources"].values()}
        assert "Custom::CertificateRequest" not in types, unit  # the deprecated DnsValidatedCertificate
        assert "AWS::CloudFormation::CustomResource" not in types, unit
    # Nothing but the certificate, the web ACL (and its logging) and the media key in the edge stack.
    assert {r["Type"] for r in stage.raw["Edge"]["Resources"].values()} == {
        "AWS::CertificateManager::Certificate",
        "AWS::WAFv2::WebACL",
        "AWS::WAFv2::LoggingConfiguration",
        "AWS::Logs::LogGroup",
        "AWS::CloudFront::PublicKey",
        "AWS::CloudFront::KeyGroup",
    }


def test_cloudfront_reads_the_edge_resources_by_weak_cross_region_references(stage: StageTemplates) -> None:
    config = distribution_config(stage)
    [certificate] = stage.resources("Edge", "AWS::CertificateManager::Certificate")
    [web_acl] = stage.resources("Edge", "AWS::WAFv2::WebACL")
    [key_group] = stage.resources("Edge", "AWS::CloudFront::KeyGroup")
    certificate_arn = config["ViewerCertificate"]["AcmCertificateArn"]
    assert certificate_arn["Fn::GetStackOutput"]["Region"] == "us-east-1"
    assert stage.resolve("App", certificate_arn) == ("Edge", {"Ref": certificate})
    assert stage.resolve("App", config["WebACLId"]) == ("Edge", {"Fn::GetAtt": [web_acl, "Arn"]})
    [private] = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/private/*"]
    [group] = private["TrustedKeyGroups"]
    assert stage.resolve("App", group) == ("Edge", {"Ref": key_group})
    # Weak references only: no exports to import, no SSM-backed cross-region reader or writer.
    for unit in UNITS:
        text = json.dumps(stage.raw[unit])
        assert "Fn::ImportValue" not in text, unit
        assert "Export" not in json.dumps(stage.raw[unit].get("Outputs", {})), unit
        assert "Custom::CrossRegionExport" not in text, unit


def web_acl(stage: StageTemplates) -> dict[str, Any]:
    [acl] = stage.resources("Edge", "AWS::WAFv2::WebACL").values()
    return acl["Properties"]


def test_web_acl_allows_by_default_and_blocks_with_managed_rules(stage: StageTemplates) -> None:
    acl = web_acl(stage)
    assert acl["Scope"] == "CLOUDFRONT"
    assert acl["DefaultAction"] == {"Allow": {}}
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert set(managed) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesAmazonIpReputationList",
    }
    for rule in managed.values():
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        assert rule["OverrideAction"] == {"None": {}}  # the groups' own actions (block), not count
    for rule in acl["Rules"]:
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
        assert rule["VisibilityConfig"]["SampledRequestsEnabled"] is True
    assert len({r["Priority"] for r in acl["Rules"]}) == len(acl["Rules"])


def test_rate_limits_per_address_on_sign_in_and_on_the_api(stage: StageTemplates) -> None:
    rules = {r["Name"]: r for r in web_acl(stage)["Rules"] if "RateBasedStatement" in r["Statement"]}
    expected = {
        "AuthRateLimit": (stage.config.auth_rate_limit_per_5_minutes, "/api/v1/auth/"),
        "ApiRateLimit": (stage.config.api_rate_limit_per_5_minutes, "/api/"),
    }
    assert set(rules) == set(expected)
    for name, (limit, path) in expected.items():
        rate = rules[name]["Statement"]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "IP"
        assert rate["Limit"] == limit
        assert rate["EvaluationWindowSec"] == 300
        match = rate["ScopeDownStatement"]["ByteMatchStatement"]
        assert match["FieldToMatch"] == {"UriPath": {}}
        assert (match["PositionalConstraint"], match["SearchString"]) == ("STARTS_WITH", path)
        assert rules[name]["Action"] == {"Block": {"CustomResponse": {"ResponseCode": 429}}}
    # The stricter sign-in limit is evaluated first.
    assert rules["AuthRateLimit"]["Priority"] < rules["ApiRateLimit"]["Priority"]


def test_waf_logs_with_retention_and_without_credentials(stage: StageTemplates) -> None:
    [group_id] = stage.resources("Edge", "AWS::Logs::LogGroup")
    group = stage.resources("Edge", "AWS::Logs::LogGroup")[group_id]["Properties"]
    assert group["LogGroupName"] == f"aws-waf-logs-yoctogram-{stage.config.name}"
    assert group["RetentionInDays"] == stage.config.log_retention_days
    [logging] = stage.resources("Edge", "AWS::WAFv2::LoggingConfiguration").values()
    [acl] = stage.resources("Edge", "AWS::WAFv2::WebACL")
    assert logging["Properties"]["ResourceArn"] == {"Fn::GetAtt": [acl, "Arn"]}
    [destination] = logging["Properties"]["LogDestinationConfigs"]
    assert destination == {
        "Fn::Join": ["", [f"arn:aws:logs:us-east-1:{stage.config.account}:log-group:", {"Ref": group_id}]]
    }
    assert logging["Properties"]["RedactedFields"] == [
        {"SingleHeader": {"Name": "authorization"}},
        {"SingleHeader": {"Name": "cookie"}},
    ]


def test_key_group_trusts_the_configured_public_keys(stage: StageTemplates) -> None:
    keys = stage.resources("Edge", "AWS::CloudFront::PublicKey")
    assert sorted(k["Properties"]["PublicKeyConfig"]["EncodedKey"] for k in keys.values()) == sorted(
        key.encoded_key for key in stage.config.media_signing_keys
    )
    for key in keys.values():
        assert key["Properties"]["PublicKeyConfig"]["Name"].startswith(
            f"yoctogram-{stage.config.name}-media-"
        )
    [group] = stage.resources("Edge", "AWS::CloudFront::KeyGroup").values()
    assert sorted(item["Ref"] for item in group["Properties"]["KeyGroupConfig"]["Items"]) == sorted(keys)


def _edge_keys(config: EnvironmentConfig) -> tuple[dict[str, str], str]:
    """Synthesize only an edge stack: its public keys (logical id -> PEM) and the active key's id."""
    app = cdk.App()
    edge = EdgeStack(app, "Edge", config=config)
    template = app.synth().get_stack_by_name(edge.stack_name).template
    keys = {
        logical_id: r["Properties"]["PublicKeyConfig"]["EncodedKey"]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudFront::PublicKey"
    }
    return keys, edge.resolve(edge.media_signing.key_id)["Ref"]


def _new_key() -> MediaSigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return MediaSigningKey(public_key=pem.decode(), private_key_secret_name="yoctogram/staging/media-2")


def test_a_signing_key_rotation_adds_and_removes_keys_never_changes_one() -> None:
    """CloudFront cannot change a public key's PEM in place, so no config change may ask CloudFormation to:
    every key keeps its logical id as long as it is configured, and a new PEM always gets a new one."""
    old = STAGING.active_signing_key
    new = _new_key()
    steps = [
        STAGING,  # before
        dataclasses.replace(STAGING, media_signing_keys=(old, new)),  # 1. add the new key
        dataclasses.replace(  # 2. sign with it
            STAGING, media_signing_keys=(old, new), active_media_signing_key=new.fingerprint
        ),
        dataclasses.replace(  # 3. drop the old one
            STAGING, media_signing_keys=(new,), active_media_signing_key=new.fingerprint
        ),
    ]
    synthesized = [_edge_keys(config) for config in steps]
    pem_of: dict[str, str] = {}
    for keys, _active in synthesized:
        for logical_id, pem in keys.items():
            assert pem_of.setdefault(logical_id, pem) == pem, f"{logical_id} would be updated in place"
    assert len(pem_of) == 2
    by_pem = {pem: logical_id for logical_id, pem in pem_of.items()}
    assert [active for _, active in synthesized] == [
        by_pem[old.encoded_key],
        by_pem[old.encoded_key],
        by_pem[new.encoded_key],
        by_pem[new.encoded_key],
    ]
    assert [len(keys) for keys, _ in synthesized] == [1, 2, 2, 1]
