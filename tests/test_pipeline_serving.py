"""The serving check after each App deploy, as the synthesized pipeline runs it: where it is, what it
reads, and that its roles (pipeline account and each stage's account) may only read what it checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline import serving
from pipeline.commands import SERVING, SMOKE
from stages import names
from stages.config import PIPELINE, PROD, STAGING, EnvironmentConfig
from tests.templates import PipelineView, StageTemplates, Synthesized, as_list, role_statements
from tests.test_pipeline import deploy_actions, namespace

STAGES = {"Staging": STAGING, "Prod": PROD}


@pytest.mark.parametrize("stage_id", ["Staging", "Prod"])
def test_the_check_follows_every_app_deployment_and_comes_before_the_smoke_test(
    pipeline: PipelineView, stage_id: str
) -> None:
    config = STAGES[stage_id]
    check = pipeline.action(stage_id, SERVING.name)
    app_deploy = max(
        a["RunOrder"]
        for a in deploy_actions(pipeline, stage_id)
        if a["Configuration"]["StackName"] == config.stack_name("app")
    )
    assert app_deploy < check["RunOrder"] < pipeline.action(stage_id, SMOKE.name)["RunOrder"]
    assert len(check["InputArtifacts"]) == 2  # the source, and this run's cloud assembly (what to expect)
    assert pipeline.commands(pipeline.project(check))[-1] == "python -m pipeline.serving cdk.out"
    [source] = pipeline.actions("Source")
    app, network = namespace(pipeline, stage_id, "app"), namespace(pipeline, stage_id, "network")
    assert pipeline.env(check) == {
        "SiteUrl": f"#{{{app}.SiteUrl}}",
        "ClusterName": f"#{{{network}.ClusterName}}",
        "COMMIT_ID": f"#{{{source['Namespace']}.CommitId}}",
    }
    settings = pipeline.project_env(check)
    assert {k: settings[k] for k in ("STAGE_ID", "TARGET_REGION", "SERVING_ROLE_ARN")} == {
        "STAGE_ID": stage_id,
        "TARGET_REGION": config.region,
        "SERVING_ROLE_ARN": f"arn:aws:iam::{config.account}:role/yoctogram-{config.name}-pipeline-serving",
    }


def test_the_checks_codebuild_role_can_only_assume_the_serving_roles(pipeline: PipelineView) -> None:
    roles = {
        pipeline.project(pipeline.action(stage_id, SERVING.name))["Properties"]["ServiceRole"]["Fn::GetAtt"][
            0
        ]
        for stage_id in ("Staging", "Prod")
    }
    [role] = roles  # one role for both stages' checks, by the fixed name the access roles trust
    assert pipeline.resources[role]["Properties"]["RoleName"] == PIPELINE.role_name("serving")
    foreign = [
        s
        for s in role_statements(pipeline.raw, role)
        if any(a.startswith(("ecs:", "ecr:", "lambda:")) for a in as_list(s["Action"]))
        or (
            any(a.startswith(("s3:Put", "s3:Delete")) for a in as_list(s["Action"]))
            and "BuildCache" not in json.dumps(s["Resource"])  # its pip cache, as every step's
        )
    ]
    assert foreign == []  # it reads the stage only through the role it assumes there, and writes no report


def serving_statements(synthesized: Synthesized, config: EnvironmentConfig) -> list[dict[str, Any]]:
    assert synthesized.top is not None
    stack = config.stack_name("pipeline-access")
    [role] = [
        k
        for k, r in synthesized.top.resources(stack, "AWS::IAM::Role").items()
        if r["Properties"]["RoleName"] == f"yoctogram-{config.name}-pipeline-serving"
    ]
    return role_statements(synthesized.top.raw[stack], role)


@pytest.mark.parametrize("config", [STAGING, PROD], ids=["staging", "prod"])
def test_the_serving_role_only_reads_its_stages_cluster_images_and_compressor(
    synthesized: Synthesized, config: EnvironmentConfig
) -> None:
    region, account, cluster = config.region, config.account, names.ecs_cluster(config)
    grants = {
        (action, resource, json.dumps(s.get("Condition"), sort_keys=True))
        for s in serving_statements(synthesized, config)
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    }
    on_cluster = json.dumps(
        {"ArnEquals": {"ecs:cluster": f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"}}
    )
    repository = (
        f"arn:aws:ecr:{region}:{account}:repository/cdk-hnb659fds-container-assets-{account}-{region}"
    )
    assert grants == {
        ("ecs:ListServices", "*", on_cluster),
        ("ecs:ListTasks", "*", on_cluster),
        ("ecs:DescribeServices", f"arn:aws:ecs:{region}:{account}:service/{cluster}/*", "null"),
        ("ecs:DescribeTasks", f"arn:aws:ecs:{region}:{account}:task/{cluster}/*", "null"),
        ("ecr:DescribeImages", repository, "null"),
        (
            "lambda:GetFunction",
            f"arn:aws:lambda:{region}:{account}:function:{names.compressor_function(config)}",
            "null",
        ),
    }


def test_the_check_can_read_every_service_and_function_of_each_stage(
    stage: StageTemplates, synthesized: Synthesized
) -> None:
    """What the check needs from the templates: each service's task definition by a fixed family, each
    image function by a fixed name (the one the serving role may read), every image one of this run's."""
    stage_id = {"staging": "Staging", "prod": "Prod"}[stage.config.name]
    expected = serving.expected_from_assembly(synthesized.outdir, stage_id)
    assert {s.family for s in expected.services} == {
        f"yoctogram-{stage.config.name}-web",
        f"yoctogram-{stage.config.name}-event-worker",
    }
    assert [f.name for f in expected.functions] == [names.compressor_function(stage.config)]
    assert all(service.images for service in expected.services)
    assert expected.api is not None and expected.api[1] == "app"
