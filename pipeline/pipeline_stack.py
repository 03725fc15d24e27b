"""The pipeline stack: a self-mutating CDK Pipelines pipeline from a push to prod."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import pipelines
from constructs import Construct

from pipeline import access_stack
from pipeline.access_stack import (
    IMAGE_SCAN_ACCESS,
    METRICS_ACCESS,
    MIGRATE_ACCESS,
    SERVING_ACCESS,
    PipelineAccessStack,
)
from pipeline.commands import (
    APPROVAL,
    APPROVAL_PAGE,
    BASELINE_PREFIX,
    CHANGES_PAGE,
    IMAGE_SCAN,
    JUNIT_DIR,
    JUNIT_FILE,
    LOAD_TEST,
    MIGRATE,
    PROD_CHANGES,
    RECORD_RELEASE,
    RELEASES_PREFIX,
    SERVING,
    SMOKE,
    SYNTH,
    console_object_url,
)
from pipeline.nag import Known, acknowledge_known_findings
from pipeline.steps import EXECUTION_ID, NPM_CACHE, PIP_CACHE, codebuild_step, runtime_versions
from stages.config import PipelineConfig
from stages.stage import YoctogramStage

REPO_ROOT = Path(__file__).resolve().parents[1]

CDK_ASSETS_VERSION = "4.7.3"
"""`cdk-assets` for the Assets stage, pinned (CDK Pipelines installs `latest` otherwise)."""

STEP_IMAGE = codebuild.LinuxBuildImage.AMAZON_LINUX_2023_5
"""x86_64: synth, tests, smoke and load test (Python 3.12 and Node 22 among its runtimes)."""
ASSET_IMAGE = codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0
"""arm64: both images are arm64, and building them on x86 needs emulation (slow, and it fails)."""


CONNECTION_PREFIXES = ("codeconnections", "codestar-connections")
"""The service prefixes of a CodeConnections connection's ARN and actions (renamed in 2024; both live)."""


def cdk_cli_version() -> str:
    """The CDK CLI that package.json pins: the self-mutation step installs the same one."""
    package = json.loads((REPO_ROOT / "package.json").read_text())
    return str(package["devDependencies"]["aws-cdk"])


class PipelineStack(cdk.Stack):
    """Source -> Build (tests, synth) -> UpdatePipeline -> Assets -> Staging -> Prod.

    - Staging: ECR's findings gate the new images; the migration task runs before the app stack; after
      the stage, the serving check (`pipeline.serving`: deployments completed and healthy on this run's
      image digests), the smoke test, then the `step` load test with the staging thresholds, whose run folder
      and capacity review go to the reports bucket (`runs/<execution id>/` and `latest/`) and whose JUnit
      file goes to a CodeBuild report group.
    - Prod: `ConfirmPermissionsBroadening` and the prod change report (this run's prod templates against
      the record of the release that last reached prod, beside the capacity review), the approval page
      (`pipeline.approval`), then a manual approval whose link opens that page (capacity review,
      regression verdict, change report, image scan, permission broadening) and whose comment links the
      change report, then the
      stage with its migration, then the serving check and the smoke test, then the record of this release (`releases/prod/`
      of the reports bucket, which does not expire).
    - The topic hears of approvals waiting, of permission broadening and of every failed run.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PipelineConfig,
        staging: YoctogramStage,
        prod: YoctogramStage,
        access: Mapping[str, PipelineAccessStack],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=config.env,
            stack_name=config.stack_name,
            description="Yoctogram's self-mutating pipeline: push -> staging -> load test -> approval -> prod",
            **kwargs,
        )
        cdk.Tags.of(self).add("project", "yoctogram")
        self.config = config
        for stack in access.values():
            # `cdk deploy` of this stack (self-mutation) deploys the roles its steps assume first.
            self.add_stack_dependency(
                stack, "the pipeline's steps assume roles in the environments' accounts"
            )

        self.topic = sns.Topic(
            self, "Notifications", display_name=f"{config.name} pipeline", enforce_ssl=True
        )
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))
        self.cache_bucket = self._bucket("BuildCache", expire_days=30)
        self.reports_bucket = self._bucket(
            "Reports", expire_days=config.reports_retention_days, prefix="runs/"
        )
        self.report_group = codebuild.ReportGroup(
            self,
            "LoadTestResults",
            type=codebuild.ReportGroupType.TEST,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.step_roles = {
            access_step.step: self._step_role(
                access_step.step, [staging, prod] if access_step != METRICS_ACCESS else [staging]
            )
            for access_step in (MIGRATE_ACCESS, IMAGE_SCAN_ACCESS, METRICS_ACCESS, SERVING_ACCESS)
        }
        self._grant_reports(self.step_roles[METRICS_ACCESS.step])
        # The image scan's result, for the approval page: its one file of the run folder.
        self.step_roles[IMAGE_SCAN_ACCESS.step].add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.reports_bucket.arn_for_objects("runs/*/image-scan/*")],
            )
        )
        self.approval_page_role = self._codebuild_role("ApprovalPageStepRole", APPROVAL.name)
        self._grant_approval_page(self.approval_page_role)
        self.record_role = self._codebuild_role("RecordReleaseStepRole", RECORD_RELEASE.name)
        self.changes_role = self._codebuild_role("ProdChangesStepRole", PROD_CHANGES.name)
        self._grant_release_record(self.record_role, self.changes_role)

        self.source = source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.connection_arn, trigger_on_push=True
        )
        synth = codebuild_step(
            SYNTH,
            input=source,
            # The commit the stages' processes and web client report as their build (pipeline_app.py).
            env={"COMMIT_ID": source.source_attribute("CommitId")},
            primary_output_directory="cdk.out",
            build_environment=codebuild.BuildEnvironment(compute_type=codebuild.ComputeType.MEDIUM),
            cache_bucket=self.cache_bucket,
            cache_paths=(PIP_CACHE, NPM_CACHE),
            timeout=cdk.Duration.minutes(60),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=config.name,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=synth,
            self_mutation=True,
            cli_version=cdk_cli_version(),
            cdk_assets_cli_version=CDK_ASSETS_VERSION,
            # One CodeBuild project per asset type, not one per asset: each image is built once.
            publish_assets_in_parallel=False,
            # Staging and prod are other accounts: the artifact buckets need KMS keys they can be granted.
            cross_account_keys=True,
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=STEP_IMAGE, compute_type=codebuild.ComputeType.SMALL
                ),
                partial_build_spec=runtime_versions(),
            ),
            asset_publishing_code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=ASSET_IMAGE,
                    compute_type=codebuild.ComputeType.LARGE,
                    # Lambda refuses an image index with a provenance attestation, which newer Docker
                    # (buildx) adds by default; ECS would take it. Plain single-platform manifests only.
                    environment_variables={
                        "BUILDX_NO_DEFAULT_ATTESTATIONS": codebuild.BuildEnvironmentVariable(value="1")
                    },
                ),
                cache=codebuild.Cache.local(codebuild.LocalCacheMode.DOCKER_LAYER),
            ),
            self_mutation_code_build_defaults=pipelines.CodeBuildOptions(
                role_policy=[self._deploy_access_stacks(access.values())]
            ),
        )

        image_scan = codebuild_step(
            IMAGE_SCAN,
            input=source,
            additional_inputs={"cdk.out": synth},
            env={
                "IMAGE_SCAN_ROLE_ARNS": ",".join(
                    access_stack.role_arn(IMAGE_SCAN_ACCESS, s) for s in (staging, prod)
                ),
                "REPORTS_BUCKET": self.reports_bucket.bucket_name,
                "PIPELINE_EXECUTION_ID": EXECUTION_ID,
            },
            role=self.step_roles[IMAGE_SCAN_ACCESS.step],
            cache_bucket=self.cache_bucket,
            cache_prefix="ImageScan",
        )
        load_test = codebuild_step(
            LOAD_TEST,
            input=source,
            stage=staging,
            env={
                "METRICS_ROLE_ARN": access_stack.role_arn(METRICS_ACCESS, staging),
                "TARGET_REGION": staging.config.region,
                "REPORTS_BUCKET": self.reports_bucket.bucket_name,
                "PIPELINE_EXECUTION_ID": EXECUTION_ID,
            },
            role=self.step_roles[METRICS_ACCESS.step],
            build_environment=codebuild.BuildEnvironment(compute_type=codebuild.ComputeType.MEDIUM),
            cache_bucket=self.cache_bucket,
            cache_prefix="LoadTest",
            buildspec={
                "reports": {
                    self.report_group.report_group_arn: {
                        "files": [JUNIT_FILE],
                        "base-directory": JUNIT_DIR,
                        "file-format": "JUNITXML",
                    }
                }
            },
            timeout=cdk.Duration.minutes(90),
        )
        staging_serving = self._serving(staging, source, synth)
        staging_smoke = self._smoke(staging, source)
        staging_smoke.add_step_dependency(staging_serving)
        load_test.add_step_dependency(staging_smoke)
        self.pipeline.add_stage(
            staging,
            pre=[image_scan],
            stack_steps=[pipelines.StackSteps(stack=staging.app, pre=[self._migrate(staging, source)])],
            post=[staging_serving, staging_smoke, load_test],
        )

        broadening = pipelines.ConfirmPermissionsBroadening(
            "ConfirmPermissionsBroadening", stage=prod, notification_topic=self.topic
        )
        # The prod change report: fails (before the approval) on a stateful prod resource replaced or
        # removed without an allowance in changes-allowed.toml, as `make changes` does.
        prod_changes = codebuild_step(
            PROD_CHANGES,
            input=source,
            additional_inputs={"cdk.out": synth},
            env={"REPORTS_BUCKET": self.reports_bucket.bucket_name, "PIPELINE_EXECUTION_ID": EXECUTION_ID},
            role=self.changes_role,
            cache_bucket=self.cache_bucket,
            cache_prefix=PROD_CHANGES.name,
            cache_paths=(PIP_CACHE, NPM_CACHE),
        )
        # One page for the approver: every report of the run, each with its status (pipeline.approval).
        approval_page = codebuild_step(
            APPROVAL,
            input=source,
            env={"REPORTS_BUCKET": self.reports_bucket.bucket_name, "PIPELINE_EXECUTION_ID": EXECUTION_ID},
            role=self.approval_page_role,
            cache_bucket=self.cache_bucket,
            cache_prefix=APPROVAL.name,
        )
        approval_page.add_step_dependency(prod_changes)
        self.review_url = console_object_url(
            config.region, self.reports_bucket.bucket_name, f"runs/{EXECUTION_ID}/{APPROVAL_PAGE}"
        )
        self.changes_url = console_object_url(
            config.region, self.reports_bucket.bucket_name, f"runs/{EXECUTION_ID}/{CHANGES_PAGE}"
        )
        approval = pipelines.ManualApprovalStep(
            "Approve",
            comment=(
                "Staging passed its serving check, smoke test and load test. The link opens this run's "
                "approval page (sign in to the pipeline account's console): the capacity review, the "
                "regression verdict, the prod change report, the image scan and permission broadening, each "
                "with its status at the top; check the capacity figures it proposes for stages/config.py "
                f"PROD before approving. The prod change report alone: {self.changes_url}"
            ),
            review_url=self.review_url,
            notification_topic=self.topic,
        )
        approval.add_step_dependency(broadening)
        approval.add_step_dependency(approval_page)
        prod_serving = self._serving(prod, source, synth)
        prod_smoke = self._smoke(prod, source)
        prod_smoke.add_step_dependency(prod_serving)
        # The record of the release that reached prod: after the deployment and its smoke test passed.
        record = codebuild_step(
            RECORD_RELEASE,
            input=source,
            additional_inputs={"cdk.out": synth},
            env={
                "REPORTS_BUCKET": self.reports_bucket.bucket_name,
                "PIPELINE_EXECUTION_ID": EXECUTION_ID,
                "COMMIT_ID": source.source_attribute("CommitId"),
            },
            role=self.record_role,
            cache_bucket=self.cache_bucket,
            cache_prefix=RECORD_RELEASE.name,
        )
        record.add_step_dependency(prod_smoke)
        self.pipeline.add_stage(
            prod,
            pre=[broadening, prod_changes, approval_page, approval],
            stack_steps=[pipelines.StackSteps(stack=prod.app, pre=[self._migrate(prod, source)])],
            post=[prod_serving, prod_smoke, record],
        )

        self.pipeline.build_pipeline()
        self._grant_connection_use(config.connection_arn)
        self._pin_security_check_cli()
        self.pipeline.pipeline.notify_on(
            "NotifyOnFailure",
            self.topic,
            events=[codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED],
            notification_rule_name=f"{config.name}-pipeline-failed",
        )
        # CodePipeline's replica bucket for the edge stacks' region lives in a support stack of its own.
        support = {id(s.stack): s.stack for s in self.pipeline.pipeline.cross_region_support.values()}
        support.pop(id(self), None)
        self.acknowledged: set[Known] = acknowledge_known_findings([self, *support.values()])

    def _grant_connection_use(self, connection_arn: str) -> None:
        """Let the Source action use the connection, whatever its ARN's service prefix.

        CDK Pipelines grants only `codestar-connections:UseConnection`, but connections made since 2024
        (console, or `aws codeconnections create-connection`) have `arn:aws:codeconnections:` ARNs, and
        IAM matches an action's prefix to the resource's: the first run would fail at Source. Both
        actions, on the ARN under both prefixes (the same connection, as AWS's managed policy does).
        """
        source_stage = self.pipeline.pipeline.node.find_child("Source")
        roles = [
            child
            for child in source_stage.node.find_all()
            if isinstance(child, iam.Role) and child.node.id == "CodePipelineActionRole"
        ]
        assert len(roles) == 1, f"expected one Source action role, found {len(roles)}"
        service, rest = connection_arn.split(":")[2], ":".join(connection_arn.split(":")[3:])
        assert service in CONNECTION_PREFIXES, connection_arn
        roles[0].add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"{prefix}:UseConnection" for prefix in CONNECTION_PREFIXES],
                resources=[f"arn:aws:{prefix}:{rest}" for prefix in CONNECTION_PREFIXES],
            )
        )

    def _pin_security_check_cli(self) -> None:
        """Make `ConfirmPermissionsBroadening` install the CDK CLI that package.json pins.

        CDK Pipelines writes a bare `npm install -g aws-cdk` (whatever is newest on the day) into that
        step's CodeBuild project, with no option to change it; every other step already uses the pinned
        CLI (`cli_version`). The project's buildspec is rewritten with the version added, and nothing else.
        """
        check = self.pipeline.node.find_child("PipelinesSecurityCheck").node.find_child("CDKSecurityCheck")
        project = check.node.default_child
        assert isinstance(project, codebuild.CfnProject)
        unpinned = '"npm install -g aws-cdk"'
        pinned = f'"npm install -g aws-cdk@{cdk_cli_version()}"'
        # The buildspec names the auto-approve function, so it resolves to an Fn::Join of text and references.
        separator, parts = self.resolve(project.source)["buildSpec"]["Fn::Join"]
        hits = sum(part.count(unpinned) for part in parts if isinstance(part, str))
        assert hits == 1, f"CDK Pipelines' security check buildspec changed: {hits} unpinned CLI installs"
        pinned_parts = [part.replace(unpinned, pinned) if isinstance(part, str) else part for part in parts]
        project.add_property_override("Source.BuildSpec", {"Fn::Join": [separator, pinned_parts]})

    # --- steps -------------------------------------------------------------------------------------
    def _migrate(self, stage: YoctogramStage, source: pipelines.IFileSetProducer) -> pipelines.CodeBuildStep:
        return codebuild_step(
            MIGRATE,
            input=source,
            stage=stage,
            env={
                "TARGET_ROLE_ARN": access_stack.role_arn(MIGRATE_ACCESS, stage),
                "TARGET_REGION": stage.config.region,
            },
            role=self.step_roles[MIGRATE_ACCESS.step],
            cache_bucket=self.cache_bucket,
            cache_prefix=f"{stage.stage_name}/Migrate",
            timeout=cdk.Duration.minutes(45),
        )

    def _serving(
        self, stage: YoctogramStage, source: pipelines.IFileSetProducer, synth: pipelines.IFileSetProducer
    ) -> pipelines.CodeBuildStep:
        """Right after the stage's stacks: its deployments, tasks, compressor and API against this run's
        images (the synth output says which), through the stage account's read-only serving role."""
        return codebuild_step(
            SERVING,
            input=source,
            additional_inputs={"cdk.out": synth},
            stage=stage,
            env={
                "SERVING_ROLE_ARN": access_stack.role_arn(SERVING_ACCESS, stage),
                "TARGET_REGION": stage.config.region,
                "STAGE_ID": stage.stage_name,
                "COMMIT_ID": self.source.source_attribute("CommitId"),
            },
            role=self.step_roles[SERVING_ACCESS.step],
            cache_bucket=self.cache_bucket,
            cache_prefix=f"{stage.stage_name}/Serving",
            # A gradual deployment may still be baking when the stack update returns: it waits (30 min).
            timeout=cdk.Duration.minutes(45),
        )

    def _smoke(self, stage: YoctogramStage, source: pipelines.IFileSetProducer) -> pipelines.CodeBuildStep:
        return codebuild_step(
            SMOKE,
            input=source,
            stage=stage,
            cache_bucket=self.cache_bucket,
            cache_prefix=f"{stage.stage_name}/Smoke",
            timeout=cdk.Duration.minutes(20),
        )

    # --- resources ---------------------------------------------------------------------------------
    def _bucket(self, construct_id: str, *, expire_days: int, prefix: str | None = None) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(prefix=prefix, expiration=cdk.Duration.days(expire_days)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=cdk.Duration.days(1)),
            ],
        )

    def _step_role(self, step: str, stages: list[YoctogramStage]) -> iam.Role:
        """A step's CodeBuild role, by a fixed name the environments' access roles trust."""
        access = {a.step: a for a in (MIGRATE_ACCESS, IMAGE_SCAN_ACCESS, METRICS_ACCESS, SERVING_ACCESS)}[
            step
        ]
        role = iam.Role(
            self,
            "".join(part.capitalize() for part in step.split("-")) + "StepRole",
            role_name=self.config.role_name(step),
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"CodeBuild role of the {self.config.name} pipeline's {step} step",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[access_stack.role_arn(access, stage) for stage in stages],
            )
        )
        return role

    def _grant_reports(self, role: iam.Role) -> None:
        """The load-test step writes `runs/<execution id>/` and replaces `latest/`; it reads only the
        regression gate's baselines (`baseline/`, which the release record writes)."""
        bucket = self.reports_bucket
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects("runs/*"), bucket.arn_for_objects("latest/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[bucket.arn_for_objects("latest/*")])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{BASELINE_PREFIX}*")]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["latest/*", f"{BASELINE_PREFIX}*"]}},
            )
        )
        self.report_group.grant_write(role)

    def _grant_approval_page(self, role: iam.Role) -> None:
        """The approval page's step reads the run folder (listing it, so a missing report is a 404, not a
        403) and writes only the page."""
        bucket = self.reports_bucket
        for statement in (
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("runs/*")]),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["runs/*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"runs/*/{APPROVAL_PAGE}")]
            ),
        ):
            role.add_to_policy(statement)

    def _codebuild_role(self, construct_id: str, step: str) -> iam.Role:
        return iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"CodeBuild role of the {self.config.name} pipeline's {step} step",
        )

    def _grant_release_record(self, recorder: iam.Role, reader: iam.Role) -> None:
        """The record of the release that last reached prod (`releases/prod/`, see pipeline/releases.py).

        The recording step writes `releases/prod/*` (each release under its execution id, and `latest/`,
        whose older files it removes: it can delete nothing else) and reads the run folder it copies from
        `runs/`. The comparing step reads `releases/prod/*` and writes only its report, beside the capacity
        review in `runs/<execution id>/changes/`. No lifecycle rule covers `releases/` (`_bucket`). The
        bucket is not versioned (`latest/` of the reports is replaced on every run): each release stays
        under its execution id instead, which nothing may delete.

        The recording step also adds the release's load test to the regression gate's baselines: it reads
        their index and writes `baseline/*` (pipeline/baseline.py), and deletes nothing there either.
        """
        bucket = self.reports_bucket
        latest = f"{RELEASES_PREFIX}latest/*"
        baselines = f"{BASELINE_PREFIX}*"
        for statement in (
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{RELEASES_PREFIX}*"), bucket.arn_for_objects(baselines)],
            ),
            iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[bucket.arn_for_objects(latest)]),
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("runs/*"), bucket.arn_for_objects(baselines)],
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["runs/*", latest, baselines]}},
            ),
        ):
            recorder.add_to_policy(statement)
        for statement in (
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{RELEASES_PREFIX}*")]
            ),
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{RELEASES_PREFIX}*"]}},
            ),
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[bucket.arn_for_objects("runs/*/changes/*")]
            ),
        ):
            reader.add_to_policy(statement)

    def _deploy_access_stacks(self, stacks: Any) -> iam.PolicyStatement:
        """Self-mutation deploys the access stacks (other accounts) through their bootstrap roles."""
        qualifier = cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
        resources = []
        for stack in stacks:
            account, region = stack.account, stack.region
            for kind in ("deploy", "file-publishing"):
                resources.append(
                    f"arn:aws:iam::{account}:role/cdk-{qualifier}-{kind}-role-{account}-{region}"
                )
        return iam.PolicyStatement(actions=["sts:AssumeRole"], resources=resources)
