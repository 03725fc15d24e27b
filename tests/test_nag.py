"""cdk-nag (AwsSolutions): no unacknowledged finding, and every acknowledgment is narrow and reasoned."""

from __future__ import annotations

import re
from collections import defaultdict

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.templates import Synthesized

# Every acknowledgment of the project, by construct path inside a stage. A new one must be added here
# (and reviewed): the reason sits next to the construct in stages/.
EXPECTED = {
    ("Network/Network/Vpc", "CloudFormation-Validate::W3010"),
    ("Data/AccessLogs/Bucket", "AwsSolutions-S1"),
    ("Data/Database/Credentials", "AwsSolutions-SMG4"),
    ("Data/SecretKey", "AwsSolutions-SMG4"),
    ("Migrations/Migration/TaskDefinition", "AwsSolutions-ECS2"),
    ("Migrations/Migration/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("App/Web/LoadBalancerSecurityGroup", "AwsSolutions-EC23"),
    ("App/Web/TaskDefinition", "AwsSolutions-ECS2"),
    ("App/Web/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("App/EventWorker/TaskDefinition", "AwsSolutions-ECS2"),
    ("App/EventWorker/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
}
STAGING_ONLY = {("Data/Database/Cluster", "AwsSolutions-RDS10")}  # deletion protection follows retain_data
OBJECT_PREFIXES = {
    "public": ("public/originals/*", "public/*"),
    "private": ("private/originals/*", "private/*"),
}

# Acknowledgments the CDK library itself records on its own constructs (not ours to word).
LIBRARY = {
    ("Network/Network/Vpc/All", "CloudFormation-Validate::F3002"),
    ("Network/Network/Vpc/All", "CloudFormation-Validate::F3003"),
}


def acknowledgments(app: cdk.App) -> list[tuple[str, str, str, cdk.IConstruct]]:
    """(construct path, rule id, reason, construct) of every acknowledgment in the app."""
    found = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found.append((construct.node.path, re.sub(r"^Annotation::", "", rule), reason, construct))
    return found


def base_rule(rule: str) -> str:
    """`AwsSolutions-IAM5[Resource::*]` -> `AwsSolutions-IAM5`: findings of one rule share a base."""
    return rule.split("[", 1)[0]


def test_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    report = AwsSolutionsChecks().validate_scope(synthesized.app)
    findings = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations]
    assert report.success, findings


def test_the_plugin_is_live() -> None:
    """The same pack does report a bucket without TLS enforcement, so a clean report means something."""
    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    s3.Bucket(stack, "Careless")
    report = AwsSolutionsChecks().validate_scope(app)
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= {v.rule_name for v in report.violations}


def test_acknowledgments_are_the_expected_ones(synthesized: Synthesized) -> None:
    for stage_id, config in (
        ("Staging", synthesized.stages["staging"].config),
        ("Prod", synthesized.stages["prod"].config),
    ):
        expected = set(EXPECTED) | LIBRARY | (set() if config.retain_data else STAGING_ONLY)
        for privacy, prefixes in OBJECT_PREFIXES.items():
            bucket = f"arn:aws:s3:::yoctogram-{config.name}-{privacy}-images-{config.account}"
            expected |= {
                (
                    "App/Web/TaskDefinition/TaskRole/DefaultPolicy",
                    f"AwsSolutions-IAM5[Resource::{bucket}/{prefix}]",
                )
                for prefix in prefixes
            }
        found = {
            (path.removeprefix(f"{stage_id}/"), rule)
            for path, rule, _, _ in acknowledgments(synthesized.app)
            if path.startswith(f"{stage_id}/")
        }
        assert found == expected, stage_id


def test_reasons_present_specific_and_on_narrow_constructs(synthesized: Synthesized) -> None:
    rules_by_reason: dict[str, set[str]] = defaultdict(set)
    for path, rule, reason, construct in acknowledgments(synthesized.app):
        if (path.split("/", 1)[1], rule) in LIBRARY:
            continue
        assert reason.strip(), f"empty reason for {rule} on {path}"
        assert len(reason) >= 60, f"reason too short to be specific: {rule} on {path}"
        assert not isinstance(construct, (cdk.Stack, cdk.Stage)), (
            f"{rule} acknowledged on a whole stack: {path}"
        )
        rules_by_reason[reason].add(base_rule(rule))
    reused = {reason: rules for reason, rules in rules_by_reason.items() if len(rules) > 1}
    assert not reused, f"one reason used for different rules: {reused}"
