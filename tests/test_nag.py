"""cdk-nag (AwsSolutions): no unacknowledged finding, and every acknowledgment is narrow and reasoned."""

from __future__ import annotations

import json
from collections import defaultdict

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from stages.app import STAGE_IDS
from tests.templates import Synthesized

# Every acknowledgment of the project, by construct path inside a stage. A new one must be added here
# (and reviewed): the reason sits next to the construct in stages/.
EXPECTED = {
    ("Data/AccessLogs/Bucket", "AwsSolutions-S1"),
    # The images buckets' policy, TLS rule included, is the app stack's (images_bucket_policy).
    ("Data/Images/Public/Bucket", "AwsSolutions-S10"),
    ("Data/Images/Private/Bucket", "AwsSolutions-S10"),
    ("Data/SecretKey", "AwsSolutions-SMG4"),
    ("Migrations/Migration/TaskDefinition", "AwsSolutions-ECS2"),
    ("Migrations/Migration/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("App/Web/TaskDefinition", "AwsSolutions-ECS2"),
    ("App/Web/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("App/EventWorker/TaskDefinition", "AwsSolutions-ECS2"),
    ("App/EventWorker/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("App/PendingCleanup/TaskDefinition", "AwsSolutions-ECS2"),
    ("App/PendingCleanup/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("App/OriginVerify", "AwsSolutions-SMG4"),
    # The web service's gradual deploys (stages/components/ecs_listener_rules.py, deployment_hook.py).
    ("App/Web/ListenerRules/Role", "AwsSolutions-IAM5[Resource::*]"),
    ("App/Web/DeploymentHook/Role", "AwsSolutions-IAM5[Resource::*]"),
    (
        "App/Web/LoadBalancerRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers]",
    ),
    ("App/Compressor/Failures", "AwsSolutions-SQS3"),
    ("App/Cdn/Distribution", "AwsSolutions-CFR1"),
    ("App/Cdn/SiteBucket", "AwsSolutions-S1"),
    # What the CDK's BucketDeployment grants and runs (see stages/components/web_client.py).
    ("App/WebClient/DeploymentRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    *(
        ("App/WebClient/DeploymentRole/DefaultPolicy", f"AwsSolutions-IAM5[Action::{action}]")
        for action in ("s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*")
    ),
}
STAGING_ONLY = {("Data/Database/Cluster", "AwsSolutions-RDS10")}  # deletion protection follows retain_data
# Without retain_data, each bucket's emptier may delete its objects (stages/components/emptied_on_delete.py).
EMPTIED = {
    "Data/EmptiedOnDelete/Role": (
        "Data/Images/Public/Bucket",
        "Data/Images/Private/Bucket",
        "Data/AccessLogs/Bucket",
    ),
    "App/Cdn/EmptiedOnDelete/Role": ("App/Cdn/SiteBucket",),
}
# Object patterns under `{privacy}/` that each role's policy names (and acknowledges) in both buckets.
IMAGE_OBJECTS = {
    "App/Web/TaskDefinition/TaskRole/DefaultPolicy": ("originals/*", "renditions/*", "quarantine/*"),
    "App/EventWorker/TaskDefinition/TaskRole/DefaultPolicy": (
        "renditions/*.rejected",
        "originals/*",
        "renditions/*",
        "quarantine/*",
    ),
    "App/PendingCleanup/TaskDefinition/TaskRole/DefaultPolicy": ("originals/*", "renditions/*"),
    "App/Compressor/Role/DefaultPolicy": ("originals/*", "renditions/*", "quarantine/*"),
}

# Acknowledgments the CDK library itself records on its own constructs (not ours to word).
LIBRARY = {
    ("Network/Network/Vpc/All", "CloudFormation-Validate::F3002"),
    ("Network/Network/Vpc/All", "CloudFormation-Validate::F3003"),
}


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


def bucket_deployment_acknowledgments(synthesized: Synthesized, name: str) -> set[tuple[str, str]]:
    """The findings on the CDK's BucketDeployment that name this stage's account or a logical id."""
    stage = synthesized.stages[name]
    config = stage.config
    [site_bucket] = [
        logical_id
        for logical_id, resource in stage.raw["App"]["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith("/App/Cdn/SiteBucket/Resource")
    ]
    [handler] = [
        child.node.id
        for child in synthesized.app.node.find_child(STAGE_IDS[name]).node.find_child("App").node.children
        if child.node.id.startswith("Custom::CDKBucketDeployment")
    ]
    policy = "App/WebClient/DeploymentRole/DefaultPolicy"
    assets = f"arn:aws:s3:::cdk-hnb659fds-assets-{config.account}-{config.region}/*"
    return {
        (policy, f"AwsSolutions-IAM5[Resource::{assets}]"),
        (policy, f"AwsSolutions-IAM5[Resource::<{site_bucket}.Arn>/*]"),
        (f"App/{handler}", "AwsSolutions-L1"),
    }


def gradual_deploy_acknowledgments(synthesized: Synthesized, name: str) -> set[tuple[str, str]]:
    """The web service's rules (of its own load balancer) and revisions (of its own cluster)."""
    stage = synthesized.stages[name]
    config = stage.config
    [balancer] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    arn = f"arn:aws:{{}}:{config.region}:{config.account}:"
    return {
        (
            "App/Web/ListenerRules/Role",
            f"AwsSolutions-IAM5[Resource::{arn.format('elasticloadbalancing')}listener-rule/"
            f"<{balancer}.LoadBalancerFullName>/*]",
        ),
        (
            "App/Web/DeploymentHook/Role",
            f"AwsSolutions-IAM5[Resource::{arn.format('ecs')}service-revision/yoctogram-{config.name}/*]",
        ),
    }


def test_acknowledgments_are_the_expected_ones(synthesized: Synthesized) -> None:
    every = synthesized.acknowledged
    for name, stage_id in STAGE_IDS.items():
        config = synthesized.stages[name].config
        expected = set(EXPECTED) | LIBRARY | (set() if config.retain_data else STAGING_ONLY)
        expected |= bucket_deployment_acknowledgments(synthesized, name)
        expected |= gradual_deploy_acknowledgments(synthesized, name)
        if not config.retain_data:
            stage = synthesized.stages[name]
            for role, buckets in EMPTIED.items():
                unit = role.split("/", 1)[0]
                for bucket in buckets:
                    [logical_id] = [
                        k
                        for k, r in stage.raw[unit]["Resources"].items()
                        if r.get("Metadata", {}).get("aws:cdk:path", "") == f"{stage_id}/{bucket}/Resource"
                    ]
                    expected.add((role, f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/*]"))
        for policy, patterns in IMAGE_OBJECTS.items():
            for privacy in ("public", "private"):
                bucket = f"arn:aws:s3:::yoctogram-{config.name}-{privacy}-images-{config.account}"
                expected |= {
                    (policy, f"AwsSolutions-IAM5[Resource::{bucket}/{privacy}/{pattern}]")
                    for pattern in patterns
                }
        found = {
            (path.removeprefix(f"{stage_id}/"), rule)
            for path, rule, _, _ in every
            if path.startswith(f"{stage_id}/")
        }
        assert found == expected, stage_id


def test_reasons_present_specific_and_on_narrow_constructs(synthesized: Synthesized) -> None:
    rules_by_reason: dict[str, set[str]] = defaultdict(set)
    for path, rule, reason, whole in synthesized.acknowledged:
        if (path.split("/", 1)[1], rule) in LIBRARY:
            continue
        assert reason.strip(), f"empty reason for {rule} on {path}"
        assert len(reason) >= 60, f"reason too short to be specific: {rule} on {path}"
        assert not whole, f"{rule} acknowledged on a whole stack or stage: {path}"
        rules_by_reason[reason].add(base_rule(rule))
    reused = {reason: rules for reason, rules in rules_by_reason.items() if len(rules) > 1}
    assert not reused, f"one reason used for different rules: {reused}"


def test_synthesis_leaves_no_warning(synthesized: Synthesized) -> None:
    """CDK warnings (say, a bucket policy it could not write) are fixed or acknowledged where they arise."""
    found = []
    for path in synthesized.outdir.glob("assembly-*/*.metadata.json"):
        for construct, entries in json.loads(path.read_text()).items():
            found += [
                (construct, e["data"]) for e in entries if e["type"] in ("aws:cdk:warning", "aws:cdk:error")
            ]
    assert not found, found
