"""Least privilege around the pipeline: the reports bucket, the report group, the roles in other accounts."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from pipeline import access_stack
from pipeline.commands import (
    APPROVAL,
    IMAGE_SCAN,
    JUNIT_DIR,
    JUNIT_FILE,
    LOAD_TEST,
    PROD_CHANGES,
    RECORD_RELEASE,
)
from stages.config import PIPELINE, PROD, STAGING
from tests.templates import TOKEN, PipelineView, Synthesized


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def logical_id(pipeline: PipelineView, prefix: str, resource_type: str) -> str:
    [found] = [k for k in pipeline.top.resources(PIPELINE.stack_name, resource_type) if k.startswith(prefix)]
    return found


def mentions(value: Any, resource: str) -> bool:
    return f'"{resource}"' in json.dumps(value)


def load_test_role(pipeline: PipelineView) -> str:
    [role] = [
        k
        for k, r in pipeline.top.resources(PIPELINE.stack_name, "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == PIPELINE.role_name("loadtest")
    ]
    return role


def test_reports_bucket_is_private_and_only_the_load_test_writes_it(pipeline: PipelineView) -> None:
    bucket_id = logical_id(pipeline, "Reports", "AWS::S3::Bucket")
    bucket = pipeline.resources[bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert {
        "ExpirationInDays": PIPELINE.reports_retention_days,
        "Prefix": "runs/",
        "Status": "Enabled",
    } in rules
    role = load_test_role(pipeline)
    # The release record's two steps (tests/test_pipeline_releases.py), the image scan and the approval
    # page (tests/test_approval.py) have grants of their own.
    release_roles = [
        pipeline.project(pipeline.action(stage, step.name))["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
        for stage, step in (
            ("Prod", PROD_CHANGES),
            ("Prod", RECORD_RELEASE),
            ("Prod", APPROVAL),
            ("Staging", IMAGE_SCAN),
        )
    ]
    granted = []
    for policy in pipeline.top.resources(PIPELINE.stack_name, "AWS::IAM::Policy").values():
        if policy["Properties"]["Roles"] in [[{"Ref": r}] for r in release_roles]:
            continue
        for statement in statements(policy):
            if mentions(statement.get("Resource"), bucket_id):
                granted.append((policy["Properties"]["Roles"], statement))
    assert granted, "nobody may write the reports"
    for roles, _ in granted:
        assert roles == [{"Ref": role}], "only the load-test step's role writes the load-test reports"
    by_action = {json.dumps(as_list(s["Action"])): s for _, s in granted}
    assert set(by_action) == {
        '["s3:PutObject"]',
        '["s3:DeleteObject"]',
        '["s3:GetObject"]',
        '["s3:ListBucket"]',
    }
    put = [r["Fn::Join"][1][1] for r in as_list(by_action['["s3:PutObject"]']["Resource"])]
    assert sorted(put) == ["/latest/*", "/runs/*"]
    delete = [r["Fn::Join"][1][1] for r in as_list(by_action['["s3:DeleteObject"]']["Resource"])]
    assert delete == ["/latest/*"]
    # It reads only the regression gate's baselines (tests/test_pipeline_releases.py).
    get = [r["Fn::Join"][1][1] for r in as_list(by_action['["s3:GetObject"]']["Resource"])]
    assert get == ["/baseline/*"]
    assert by_action['["s3:ListBucket"]']["Condition"] == {
        "StringLike": {"s3:prefix": ["latest/*", "baseline/*"]}
    }
    [bucket_policy] = [
        p
        for p in pipeline.top.resources(PIPELINE.stack_name, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    [deny] = statements(bucket_policy)
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_report_group_gets_the_junit_file_and_is_granted_explicitly(pipeline: PipelineView) -> None:
    group_id = logical_id(pipeline, "LoadTestResults", "AWS::CodeBuild::ReportGroup")
    assert pipeline.resources[group_id]["Properties"]["Type"] == "TEST"
    load_test = pipeline.action("Staging", LOAD_TEST.name)
    project = pipeline.project(load_test)
    [(key, report)] = pipeline.buildspec(project)["reports"].items()
    assert key == TOKEN
    parts = project["Properties"]["Source"]["BuildSpec"]["Fn::Join"][1]
    assert {"Fn::GetAtt": [group_id, "Arn"]} in parts  # the report group's ARN is the key
    assert report == {"files": [JUNIT_FILE], "base-directory": JUNIT_DIR, "file-format": "JUNITXML"}
    role = load_test_role(pipeline)
    assert project["Properties"]["ServiceRole"] == {"Fn::GetAtt": [role, "Arn"]}
    [grant] = [
        s
        for p in pipeline.top.resources(PIPELINE.stack_name, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
        for s in statements(p)
        if s["Resource"] == {"Fn::GetAtt": [group_id, "Arn"]}
    ]
    assert set(grant["Action"]) == {
        "codebuild:BatchPutTestCases",
        "codebuild:CreateReport",
        "codebuild:UpdateReport",
    }


def test_steps_reach_other_accounts_only_through_their_own_roles(pipeline: PipelineView) -> None:
    """Each step role may assume exactly its access roles, and each access role trusts exactly it."""
    expected = {
        "migrate": [
            f"arn:aws:iam::{c.account}:role/yoctogram-{c.name}-pipeline-migrate" for c in (STAGING, PROD)
        ],
        "image-scan": [
            f"arn:aws:iam::{c.account}:role/yoctogram-{c.name}-pipeline-image-scan" for c in (STAGING, PROD)
        ],
        "loadtest": [f"arn:aws:iam::{STAGING.account}:role/yoctogram-staging-pipeline-metrics"],
        "serving": [
            f"arn:aws:iam::{c.account}:role/yoctogram-{c.name}-pipeline-serving" for c in (STAGING, PROD)
        ],
    }
    roles = {
        r["Properties"]["RoleName"]: k
        for k, r in pipeline.top.resources(PIPELINE.stack_name, "AWS::IAM::Role").items()
        if isinstance(r["Properties"].get("RoleName"), str)
    }
    for step, targets in expected.items():
        role = roles[PIPELINE.role_name(step)]
        assumed = [
            as_list(s["Resource"])
            for p in pipeline.top.resources(PIPELINE.stack_name, "AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for s in statements(p)
            if "sts:AssumeRole" in as_list(s["Action"])
        ]
        assert assumed == [targets], step


def test_access_roles_trust_one_pipeline_role_each(synthesized: Synthesized) -> None:
    assert synthesized.top is not None
    for config in (STAGING, PROD):
        stack = config.stack_name("pipeline-access")
        assert synthesized.top.environment(stack) == f"aws://{config.account}/{config.region}"
        roles = synthesized.top.resources(stack, "AWS::IAM::Role").values()
        names = {r["Properties"]["RoleName"] for r in roles}
        suffixes = {"migrate", "image-scan", "serving"} | ({"metrics"} if config is STAGING else set())
        assert names == {f"yoctogram-{config.name}-pipeline-{s}" for s in suffixes}
        for role in roles:
            [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            assert trust["Principal"] == {"AWS": f"arn:aws:iam::{PIPELINE.account}:root"}
            step = {"metrics": "loadtest"}.get(role["Properties"]["RoleName"].rsplit("pipeline-", 1)[1])
            step = step or role["Properties"]["RoleName"].rsplit("pipeline-", 1)[1]
            assert trust["Condition"] == {
                "ArnEquals": {
                    "aws:PrincipalArn": f"arn:aws:iam::{PIPELINE.account}:role/{PIPELINE.role_name(step)}"
                }
            }


def test_the_migrate_role_runs_only_the_migration_task(synthesized: Synthesized) -> None:
    assert synthesized.top is not None
    for config in (STAGING, PROD):
        stack = config.stack_name("pipeline-access")
        [policy] = [
            p
            for p in synthesized.top.resources(stack, "AWS::IAM::Policy").values()
            if "Migrate" in json.dumps(p["Properties"]["Roles"])
        ]
        by_action = {a: s for s in statements(policy) for a in as_list(s["Action"])}
        assert by_action["ecs:RunTask"]["Resource"] == (
            f"arn:aws:ecs:{config.region}:{config.account}:task-definition/yoctogram-{config.name}-migrate:*"
        )
        assert by_action["iam:PassRole"]["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        }
        # Exactly the migration task's two (named) roles, not every role of the account.
        assert sorted(by_action["iam:PassRole"]["Resource"]) == [
            f"arn:aws:iam::{config.account}:role/yoctogram-{config.name}-migrate-{kind}"
            for kind in ("execution", "task")
        ]
        assert by_action["logs:GetLogEvents"]["Resource"].startswith(
            f"arn:aws:logs:{config.region}:{config.account}:log-group:yoctogram-{config.name}-migrations-"
        )
        assert set(by_action) == {
            "ecs:RunTask",
            "ecs:DescribeTasks",
            "ecs:StopTask",
            "ecs:DescribeTaskDefinition",
            "iam:PassRole",
            "logs:GetLogEvents",
        }


def test_the_registry_scanning_singleton_is_left_to_the_account_unless_configured(
    synthesized: Synthesized,
) -> None:
    """An access stack takes over its registry's scanning configuration only when `ecr_scanning` says so
    (each option's own configuration: the next test); the image-scan role can read Inspector's findings
    wherever Inspector may be the scanner."""
    assert synthesized.top is not None
    for config in (STAGING, PROD):
        stack = config.stack_name("pipeline-access")
        configurations = synthesized.top.resources(stack, "AWS::ECR::RegistryScanningConfiguration")
        assert len(configurations) == (0 if config.ecr_scanning == "account" else 1)
        [policy] = [
            p
            for p in synthesized.top.resources(stack, "AWS::IAM::Policy").values()
            if "ImageScan" in json.dumps(p["Properties"]["Roles"])
        ]
        actions = {a for s in statements(policy) for a in as_list(s["Action"])}
        assert {"ecr:DescribeImages", "ecr:DescribeImageScanFindings", "ecr:StartImageScan"} <= actions
        assert ("inspector2:ListFindings" in actions) == (config.ecr_scanning != "basic")


def test_the_registry_scanning_configuration_is_set_only_when_asked() -> None:
    """`account` leaves the registry's singleton alone; `basic` and `enhanced` scan the assets on push."""
    templates, made = {}, {}
    for mode in ("account", "basic", "enhanced"):
        stack = cdk.Stack(cdk.App(), "Access")
        cdk.CfnWaitConditionHandle(stack, "Marker")  # a stack needs one resource to synthesize
        made[mode] = access_stack.registry_scanning(stack, mode, qualifier="hnb659fds")
        templates[mode] = Template.from_stack(stack)
    assert made["account"] is None
    templates["account"].resource_count_is("AWS::ECR::RegistryScanningConfiguration", 0)
    for mode, scan_type in (("basic", "BASIC"), ("enhanced", "ENHANCED")):
        templates[mode].resource_count_is("AWS::ECR::RegistryScanningConfiguration", 1)
        templates[mode].has_resource_properties(
            "AWS::ECR::RegistryScanningConfiguration",
            {
                "ScanType": scan_type,
                "Rules": [
                    {
                        "ScanFrequency": "SCAN_ON_PUSH",
                        "RepositoryFilters": [
                            {"Filter": "cdk-hnb659fds-container-assets-*", "FilterType": "WILDCARD"}
                        ],
                    }
                ],
            },
        )
    with pytest.raises(ValueError, match="'account', 'basic' or 'enhanced'"):
        access_stack.registry_scanning(cdk.Stack(cdk.App(), "Typo"), "Enhanced", qualifier="hnb659fds")


def test_self_mutation_may_deploy_the_access_stacks(pipeline: PipelineView, synthesized: Synthesized) -> None:
    assert synthesized.top is not None
    [update] = pipeline.actions("UpdatePipeline")
    role = pipeline.project(update)["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    resources = [
        r
        for p in pipeline.top.resources(PIPELINE.stack_name, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in statements(p)
        if s["Action"] == "sts:AssumeRole" and isinstance(s["Resource"], list)
        for r in s["Resource"]
    ]
    expected = {
        f"arn:aws:iam::{c.account}:role/cdk-hnb659fds-{kind}-role-{c.account}-{c.region}"
        for c in (STAGING, PROD)
        for kind in ("deploy", "file-publishing")
    }
    assert set(resources) == expected
    dependencies = synthesized.top.manifest["artifacts"]["Pipeline"]["dependencies"]
    assert {"StagingPipelineAccess", "ProdPipelineAccess"} <= set(dependencies)
