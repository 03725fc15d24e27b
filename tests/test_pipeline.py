"""The synthesized pipeline: its stages and their order, what runs before and after each deployment."""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline.commands import LOAD_TEST, MIGRATE, NODE_VERSION, PYTHON_VERSION, RECORD_RELEASE, SMOKE, SYNTH
from pipeline.pipeline_stack import CDK_ASSETS_VERSION, CONNECTION_PREFIXES
from stages.config import PIPELINE, PROD, STAGING
from tests.templates import ROOT, PipelineView, Synthesized, allows, role_statements

STAGES = {"Staging": STAGING, "Prod": PROD}
UNITS = ("edge", "network", "data", "migrations", "app")


def deploy_actions(pipeline: PipelineView, stage: str) -> list[dict[str, Any]]:
    return [a for a in pipeline.actions(stage) if a["ActionTypeId"]["Provider"] == "CloudFormation"]


def stack_actions(pipeline: PipelineView, stage: str, unit: str) -> list[dict[str, Any]]:
    stack = STAGES[stage].stack_name(unit)
    return [a for a in deploy_actions(pipeline, stage) if a["Configuration"]["StackName"] == stack]


def namespace(pipeline: PipelineView, stage: str, unit: str) -> str:
    [deploy] = [a for a in stack_actions(pipeline, stage, unit) if a["Name"].endswith(".Deploy")]
    return str(deploy["Namespace"])


def test_stage_order(pipeline: PipelineView) -> None:
    assert pipeline.stage_names == ["Source", "Build", "UpdatePipeline", "Assets", "Staging", "Prod"]


def test_pipeline_type_v2_named_from_config(pipeline: PipelineView) -> None:
    properties = pipeline.pipeline["Properties"]
    assert properties["PipelineType"] == "V2"
    assert properties["Name"] == PIPELINE.name
    assert (
        properties["RestartExecutionOnUpdate"] is True
    )  # a self-update restarts the run with the new pipeline


def test_pipeline_stack_lives_in_the_pipeline_account(synthesized: Synthesized) -> None:
    assert synthesized.top is not None
    assert synthesized.top.environment(PIPELINE.stack_name) == f"aws://{PIPELINE.account}/{PIPELINE.region}"


def test_source_is_the_configured_connection_and_a_push_starts_a_run(pipeline: PipelineView) -> None:
    [source] = pipeline.actions("Source")
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    configuration = source["Configuration"]
    assert configuration["ConnectionArn"] == PIPELINE.connection_arn
    assert configuration["FullRepositoryId"] == PIPELINE.repository
    assert configuration["BranchName"] == PIPELINE.branch
    assert configuration.get("DetectChanges", True) in (True, "true")


def test_source_role_may_use_the_connection_whatever_its_arn_prefix(pipeline: PipelineView) -> None:
    """IAM needs the action's prefix to match the resource's: `codeconnections:` ARNs (every connection
    made since 2024) need `codeconnections:UseConnection`, older ones `codestar-connections:...`."""
    [source] = pipeline.actions("Source")
    role = source["RoleArn"]["Fn::GetAtt"][0]
    statements = role_statements(pipeline.raw, role)
    rest = PIPELINE.connection_arn.split(":", 3)[3]
    for prefix in CONNECTION_PREFIXES:
        assert allows(statements, f"{prefix}:UseConnection", f"arn:aws:{prefix}:{rest}"), prefix


def test_every_asset_build_makes_images_lambda_accepts(pipeline: PipelineView) -> None:
    """Lambda refuses images with provenance attestations (an OCI index), which buildx adds by default."""
    publishing = [
        action
        for stage, action in pipeline.all_actions()
        if action["ActionTypeId"]["Provider"] == "CodeBuild"
        if stage == "Assets" or any("cdk-assets" in c for c in pipeline.commands(pipeline.project(action)))
    ]
    assert publishing
    for action in publishing:
        assert pipeline.project_env(action).get("BUILDX_NO_DEFAULT_ATTESTATIONS") == "1", action["Name"]


def test_self_mutation_with_the_pinned_cli(pipeline: PipelineView) -> None:
    [update] = pipeline.actions("UpdatePipeline")
    assert update["Name"] == "SelfMutate"
    commands = pipeline.commands(pipeline.project(update))
    version = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert f"npm install -g aws-cdk@{version}" in commands
    assert any(
        re.fullmatch(r"cdk -a \. deploy Pipeline --require-approval=never --verbose", c) for c in commands
    )


def test_every_step_installs_the_pinned_cli(pipeline: PipelineView) -> None:
    """ConfirmPermissionsBroadening too: CDK Pipelines writes a bare `npm install -g aws-cdk` there."""
    version = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    installs = [
        command
        for project in pipeline.projects().values()
        for command in pipeline.commands(project)
        if command.startswith("npm install -g aws-cdk")
    ]
    assert len(installs) == 2  # self-mutation and the Prod stage's security check
    assert set(installs) == {f"npm install -g aws-cdk@{version}"}
    [check] = [
        project
        for logical_id, project in pipeline.projects().items()
        if pipeline.path(logical_id).endswith("/PipelinesSecurityCheck/CDKSecurityCheck/Resource")
    ]
    commands = pipeline.commands(check)
    assert commands[0] == f"npm install -g aws-cdk@{version}"
    assert any(c.startswith("if cdk diff -a . --security-only --fail") for c in commands)


def test_the_synth_step_runs_the_tests_then_synth(pipeline: PipelineView) -> None:
    [build] = pipeline.actions("Build")
    project = pipeline.project(build)
    spec = pipeline.buildspec(project)
    assert (
        spec["phases"]["build"]["commands"] == ["make test-ci", "make synth"] == [c.text for c in SYNTH.build]
    )
    assert spec["phases"]["install"]["runtime-versions"] == {"python": PYTHON_VERSION, "nodejs": NODE_VERSION}
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    assert project["Properties"]["Cache"]["Type"] == "S3"  # pip and npm downloads
    assert set(spec["cache"]["paths"]) == {"/root/.cache/pip/**/*", "/root/.npm/**/*"}


def test_every_project_pins_python_and_node(pipeline: PipelineView) -> None:
    for logical_id, project in pipeline.projects().items():
        if "PipelinesSecurityCheck" in pipeline.path(logical_id):
            continue  # CDK Pipelines' own project, with its own image and buildspec
        runtimes = pipeline.buildspec(project)["phases"]["install"]["runtime-versions"]
        assert runtimes == {"python": PYTHON_VERSION, "nodejs": NODE_VERSION}, logical_id


def test_assets_built_once_per_type_on_arm(pipeline: PipelineView, synthesized: Synthesized) -> None:
    actions = pipeline.actions("Assets")
    assert sorted(a["Name"] for a in actions) == [
        "DockerAssets",
        "FileAssets",
    ]  # publish_assets_in_parallel off
    docker_images = set()
    for path in synthesized.outdir.glob("assembly-*/*.assets.json"):
        docker_images |= set(json.loads(path.read_text()).get("dockerImages", {}))
    for action in actions:
        project = pipeline.project(action)
        environment = project["Properties"]["Environment"]
        assert environment["Type"] == "ARM_CONTAINER"
        assert "aarch64" in environment["Image"]
        commands = pipeline.commands(project)
        assert f"npm install -g cdk-assets@{CDK_ASSETS_VERSION}" in commands
        if action["Name"] == "DockerAssets":
            assert environment["PrivilegedMode"] is True
            assert project["Properties"]["Cache"] == {"Modes": ["LOCAL_DOCKER_LAYER_CACHE"], "Type": "LOCAL"}
            published = {h for c in commands for h in re.findall(r'publish "([0-9a-f]{64}):', c)}
            assert published == docker_images  # every image, in this one project


def test_base_images_come_from_the_public_ecr_gallery(synthesized: Synthesized) -> None:
    for path in synthesized.outdir.glob("assembly-*/*.assets.json"):
        for asset in json.loads(path.read_text()).get("dockerImages", {}).values():
            source = asset["source"]
            dockerfile = (
                path.parent / source["directory"] / source.get("dockerFile", "Dockerfile")
            ).read_text()
            args = source.get("dockerBuildArgs", {})
            for line in dockerfile.splitlines():
                if match := re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", line, re.IGNORECASE):
                    image = match.group(1)
                    for name, value in args.items():
                        image = image.replace(f"${{{name}}}", value)
                    assert image.startswith("public.ecr.aws/"), (source["directory"], line)


def test_migration_runs_before_the_app_stack_in_each_stage(pipeline: PipelineView) -> None:
    for stage, config in STAGES.items():
        [migrate] = [a for a in pipeline.actions(stage) if a["Name"].endswith(f".{MIGRATE.name}")]
        app = stack_actions(pipeline, stage, "app")
        assert {a["Name"].rsplit(".", 1)[1] for a in app} == {"Prepare", "Deploy"}
        assert all(migrate["RunOrder"] < a["RunOrder"] for a in app), stage
        for unit in ("network", "migrations"):  # what it runs: deployed before it
            assert all(a["RunOrder"] < migrate["RunOrder"] for a in stack_actions(pipeline, stage, unit))
        env = pipeline.env(migrate)
        assert (
            env["MigrationTaskDefinitionArn"]
            == f"#{{{namespace(pipeline, stage, 'migrations')}.MigrationTaskDefinitionArn}}"
        )
        for name in ("ClusterName", "TaskSubnetIds", "TaskSecurityGroupId"):
            assert env[name] == f"#{{{namespace(pipeline, stage, 'network')}.{name}}}"
        project_env = pipeline.project_env(migrate)
        assert (
            project_env["TARGET_ROLE_ARN"]
            == f"arn:aws:iam::{config.account}:role/yoctogram-{config.name}-pipeline-migrate"
        )
        assert pipeline.commands(pipeline.project(migrate))[-1] == "python -m pipeline.migrate"


def test_image_scan_gates_the_first_deployment(pipeline: PipelineView) -> None:
    [scan] = [a for a in pipeline.actions("Staging") if a["Name"] == "ImageScan"]
    assert all(scan["RunOrder"] < a["RunOrder"] for a in deploy_actions(pipeline, "Staging"))
    arns = pipeline.project_env(scan)["IMAGE_SCAN_ROLE_ARNS"].split(",")
    assert arns == [
        f"arn:aws:iam::{c.account}:role/yoctogram-{c.name}-pipeline-image-scan" for c in (STAGING, PROD)
    ]
    assert len(scan["InputArtifacts"]) == 2  # the source, and the cloud assembly (which images to check)


def test_smoke_and_load_test_follow_the_staging_deployment_and_read_its_outputs(
    pipeline: PipelineView,
) -> None:
    last_deploy = max(a["RunOrder"] for a in deploy_actions(pipeline, "Staging"))
    smoke = pipeline.action("Staging", SMOKE.name)
    load_test = pipeline.action("Staging", LOAD_TEST.name)
    assert last_deploy < smoke["RunOrder"] < load_test["RunOrder"]
    app, data, network = (namespace(pipeline, "Staging", unit) for unit in ("app", "data", "network"))
    assert pipeline.env(smoke) == {"SiteUrl": f"#{{{app}.SiteUrl}}"}
    assert pipeline.env(load_test) == {
        "PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}",
        "SiteUrl": f"#{{{app}.SiteUrl}}",
        "ServiceName": f"#{{{app}.ServiceName}}",
        "LoadBalancerFullName": f"#{{{app}.LoadBalancerFullName}}",
        "ClusterName": f"#{{{network}.ClusterName}}",
        "DbClusterIdentifier": f"#{{{data}.DbClusterIdentifier}}",
    }
    settings = pipeline.project_env(load_test)
    assert {k: settings[k] for k in LOAD_TEST.env} == {
        "LOAD_TARGET": "staging",  # the regression gate's baselines are per target, profile and shape
        "LOAD_SHAPE": "step",
        "LOAD_PROFILE": "staging",
        "LOAD_RUN_TIME": "30m",
        "LOAD_PROCESSES": "2",
    }
    # The review and the upload run even when a threshold fails the build phase.
    spec = pipeline.buildspec(pipeline.project(load_test))
    assert spec["phases"]["post_build"]["commands"] == [c.text for c in LOAD_TEST.post_build]


def test_prod_smoke_test_follows_the_prod_deployment(pipeline: PipelineView) -> None:
    last_deploy = max(a["RunOrder"] for a in deploy_actions(pipeline, "Prod"))
    smoke = pipeline.action("Prod", SMOKE.name)
    assert smoke["RunOrder"] > last_deploy
    assert pipeline.env(smoke) == {"SiteUrl": f"#{{{namespace(pipeline, 'Prod', 'app')}.SiteUrl}}"}
    # only the record of the release (tests/test_pipeline_releases.py) follows it
    assert [a["Name"] for a in pipeline.actions("Prod")][-2:] == [SMOKE.name, RECORD_RELEASE.name]


def test_approval_comes_before_every_prod_deployment_and_notifies_the_topic(pipeline: PipelineView) -> None:
    approve = pipeline.action("Prod", "Approve")
    assert approve["ActionTypeId"] == {
        "Category": "Approval",
        "Owner": "AWS",
        "Provider": "Manual",
        "Version": "1",
    }
    assert all(approve["RunOrder"] < a["RunOrder"] for a in deploy_actions(pipeline, "Prod"))
    assert all(
        approve["RunOrder"] < a["RunOrder"]
        for a in pipeline.actions("Prod")
        if a["Name"].endswith(MIGRATE.name)
    )
    [topic] = pipeline.top.resources(PIPELINE.stack_name, "AWS::SNS::Topic")
    assert approve["Configuration"]["NotificationArn"] == {"Ref": topic}
    # The permission-broadening check runs (and, when it finds something, waits) before the release approval.
    check = pipeline.action("Prod", "ConfirmPermissionsBroadening.Check")
    assert check["RunOrder"] < pipeline.action("Prod", "ConfirmPermissionsBroadening.Confirm")["RunOrder"]
    assert pipeline.action("Prod", "ConfirmPermissionsBroadening.Confirm")["RunOrder"] < approve["RunOrder"]


def test_the_approval_links_to_this_runs_approval_page(pipeline: PipelineView) -> None:
    link = pipeline.action("Prod", "Approve")["Configuration"]["ExternalEntityLink"]
    [bucket] = pipeline.top.resources(PIPELINE.stack_name, "AWS::S3::Bucket").keys() & {
        k for k in pipeline.resources if k.startswith("Reports")
    }
    [(function, (separator, parts))] = link.items()
    assert function == "Fn::Join" and separator == ""
    text = "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
    # The S3 console's object page: a login, not a presigned URL that expires with a build's credentials.
    assert text == (
        f"https://{PIPELINE.region}.console.aws.amazon.com/s3/object/<{bucket}>?region={PIPELINE.region}"
        "&bucketType=general&prefix=runs/#{codepipeline.PipelineExecutionId}/approval.html"
    )


def test_a_failed_run_is_notified(pipeline: PipelineView) -> None:
    [rule] = pipeline.top.resources(
        PIPELINE.stack_name, "AWS::CodeStarNotifications::NotificationRule"
    ).values()
    [topic] = pipeline.top.resources(PIPELINE.stack_name, "AWS::SNS::Topic")
    [pipeline_id] = pipeline.top.resources(PIPELINE.stack_name, "AWS::CodePipeline::Pipeline")
    properties = rule["Properties"]
    assert properties["EventTypeIds"] == ["codepipeline-pipeline-pipeline-execution-failed"]
    assert properties["Targets"] == [{"TargetAddress": {"Ref": topic}, "TargetType": "SNS"}]
    assert "Ref" in json.dumps(properties["Resource"]) and pipeline_id in json.dumps(properties["Resource"])
    [policy] = pipeline.top.resources(PIPELINE.stack_name, "AWS::SNS::TopicPolicy").values()
    principals = json.dumps(policy["Properties"]["PolicyDocument"])
    assert "codestar-notifications.amazonaws.com" in principals
    assert '"aws:SecureTransport": "false"' in principals  # TLS only


def test_no_step_runs_twice(pipeline: PipelineView) -> None:
    """Each CodeBuild project is used by exactly one action, and no command list repeats in a stage."""
    used = [
        pipeline.project(a)["Properties"].get("Name") or a["Configuration"]["ProjectName"]["Ref"]
        for _, a in pipeline.all_actions()
        if a["ActionTypeId"]["Provider"] == "CodeBuild"
    ]
    assert len(used) == len(set(map(str, used)))
    for stage in pipeline.stage_names:
        steps = [
            tuple(pipeline.commands(pipeline.project(a)))
            for a in pipeline.actions(stage)
            if a["ActionTypeId"]["Provider"] == "CodeBuild"
        ]
        assert len(steps) == len(set(steps)), stage
