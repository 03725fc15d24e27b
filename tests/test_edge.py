"""The edge stack (us-east-1): certificate, WAF, media signing key; and how us-west-2 refers to it."""

from __future__ import annotations

import json
from typing import Any

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
    """DESIGN: edge, network, data, migrations, app."""
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
    assert set(managed) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    for rule in managed.values():
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        assert rule["OverrideAction"] == {"None": {}}  # the groups' own actions (block), not count
    for rule in acl["Rules"]:
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
        assert rule["VisibilityConfig"]["SampledRequestsEnabled"] is True
    assert len({r["Priority"] for r in acl["Rules"]}) == len(acl["Rules"])


def test_rate_limit_on_auth_paths(stage: StageTemplates) -> None:
    [rule] = [r for r in web_acl(stage)["Rules"] if "RateBasedStatement" in r["Statement"]]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP"
    assert rate["Limit"] == stage.config.auth_rate_limit_per_5_minutes
    assert rate["EvaluationWindowSec"] == 300
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert (match["PositionalConstraint"], match["SearchString"]) == ("STARTS_WITH", "/api/v1/auth/")
    assert rule["Action"] == {"Block": {"CustomResponse": {"ResponseCode": 429}}}


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


def test_key_group_trusts_the_configured_public_key(stage: StageTemplates) -> None:
    [key_id] = stage.resources("Edge", "AWS::CloudFront::PublicKey")
    key = stage.resources("Edge", "AWS::CloudFront::PublicKey")[key_id]["Properties"]["PublicKeyConfig"]
    assert key["EncodedKey"] == stage.config.media_signing_public_key.strip() + "\n"
    assert key["Name"].startswith(f"yoctogram-{stage.config.name}-media-")
    [group] = stage.resources("Edge", "AWS::CloudFront::KeyGroup").values()
    assert group["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": key_id}]
