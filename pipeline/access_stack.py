"""The roles through which the pipeline's own steps reach into an environment's account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from stages import names
from stages.components.migration_task import migration_role_name
from stages.config import PipelineConfig
from stages.stage import YoctogramStage

CONTAINER_ASSETS_REPOSITORY = "cdk-{qualifier}-container-assets-{account}-{region}"
"""The bootstrap's ECR repository, where the pipeline's Assets stage pushes every image."""


@dataclass(frozen=True)
class StepAccess:
    """One step's way into the account: its CodeBuild role (pipeline account) assumes `role_name` here."""

    step: str
    """The step's role in the pipeline account is `PipelineConfig.role_name(step)`."""
    role_name_suffix: str

    def role_name(self, environment: str) -> str:
        return f"yoctogram-{environment}-pipeline-{self.role_name_suffix}"


MIGRATE_ACCESS = StepAccess("migrate", "migrate")
IMAGE_SCAN_ACCESS = StepAccess("image-scan", "image-scan")
METRICS_ACCESS = StepAccess("loadtest", "metrics")
SERVING_ACCESS = StepAccess("serving", "serving")


def role_arn(access: StepAccess, stage: YoctogramStage) -> str:
    """The ARN of an access role, known without deploying anything (its name is fixed)."""
    config = stage.config
    return f"arn:aws:iam::{config.account}:role/{access.role_name(config.name)}"


class PipelineAccessStack(cdk.Stack):
    """Deployed into each environment's account next to the stage, by the pipeline's self-mutation.

    CodeBuild runs in the pipeline's account, and the CDK bootstrap's roles in an environment's account
    only deploy stacks and publish assets. Three steps need a little more, each through its own role
    that trusts exactly that step's CodeBuild role (by ARN, as a condition, so the trust can be written
    before that role exists):

    - `migrate`: run the migration task definition once and read its log (pre step of the app stack);
    - `image-scan`: read ECR's findings for the images in the bootstrap repository;
    - `serving`: read what the stage's cluster runs and the compressor's image (after each App deploy,
      `pipeline.serving`); and
    - `metrics` (where load tests run): read CloudWatch for the capacity review.

    ECR's registry scanning configuration is one per account and region, and may belong to the account's
    or organization's own setup (Amazon Inspector): the stack sets it only when the environment's
    `ecr_scanning` asks to (`registry_scanning`), and then replaces whatever was there.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: YoctogramStage,
        pipeline: PipelineConfig,
        load_tested: bool,
        **kwargs: Any,
    ) -> None:
        config = stage.config
        super().__init__(
            scope,
            construct_id,
            env=config.env,
            stack_name=config.stack_name("pipeline-access"),
            description=f"Roles the {pipeline.name} pipeline's steps assume in the {config.name} account",
            **kwargs,
        )
        cdk.Tags.of(self).add("project", "yoctogram")
        cdk.Tags.of(self).add("environment", config.name)
        self.pipeline = pipeline
        self.environment_name = config.name
        qualifier = cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
        region, account = config.region, config.account
        repository = CONTAINER_ASSETS_REPOSITORY.format(qualifier=qualifier, account=account, region=region)
        repository_arn = f"arn:aws:ecr:{region}:{account}:repository/{repository}"

        # --- migrate -------------------------------------------------------------------------------
        family = stage.migrations.migration.task_definition.family
        task_definitions = f"arn:aws:ecs:{region}:{account}:task-definition/{family}:*"
        tasks = f"arn:aws:ecs:{region}:{account}:task/*"
        passable_roles = [
            f"arn:aws:iam::{account}:role/{migration_role_name(config.name, kind)}"
            for kind in ("task", "execution")
        ]
        migration_logs = (
            f"arn:aws:logs:{region}:{account}:log-group:{stage.migrations.stack_name}-*:log-stream:migrate/*"
        )
        self.migrate_role = self._role(
            "Migrate", MIGRATE_ACCESS, "runs the migration task before the app stack"
        )
        self.migrate_role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:RunTask"], resources=[task_definitions])
        )
        self.migrate_role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:DescribeTasks", "ecs:StopTask"], resources=[tasks])
        )
        self.migrate_role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:DescribeTaskDefinition"], resources=["*"])
        )
        self.migrate_role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=passable_roles,
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        self.migrate_role.add_to_policy(
            iam.PolicyStatement(actions=["logs:GetLogEvents"], resources=[migration_logs])
        )
        self._acknowledge(
            self.migrate_role,
            {
                task_definitions: "RunTask is allowed on every revision of the migration task's family only: "
                "each release registers a new revision, whose number the stack cannot know in advance.",
                tasks: "DescribeTasks and StopTask take task ARNs, which exist only once the step has started "
                "the task; ECS offers no narrower pattern that names the migration task's runs.",
                "*": "ecs:DescribeTaskDefinition (to find the migration task's log stream) supports no "
                "resource-level permissions, so IAM only accepts it on Resource '*'.",
                migration_logs: "The migration task's log group has a CloudFormation-generated name; the "
                "pattern is its stack's prefix and the task's `migrate/` stream prefix, read-only.",
            },
        )

        # --- image-scan ----------------------------------------------------------------------------
        self.image_scan_role = self._role(
            "ImageScan", IMAGE_SCAN_ACCESS, "reads ECR's scan findings of new images"
        )
        self.image_scan_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:DescribeImages", "ecr:DescribeImageScanFindings", "ecr:StartImageScan"],
                resources=[repository_arn],
            )
        )
        if config.ecr_scanning != "basic":
            # ECR reads enhanced findings from Inspector as the caller: with Inspector's scanning ("account"
            # may be an organization's), DescribeImageScanFindings needs these two as well.
            self.image_scan_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["inspector2:ListFindings", "inspector2:ListCoverage"], resources=["*"]
                )
            )
            self._acknowledge(
                self.image_scan_role,
                {
                    "*": "inspector2:ListFindings and ListCoverage support no resource-level permissions; ECR "
                    "calls them as the caller to return enhanced (Inspector) scan findings. Read-only.",
                },
            )
        self.registry_scanning = registry_scanning(self, config.ecr_scanning, qualifier=qualifier)

        # --- serving -------------------------------------------------------------------------------
        cluster = names.ecs_cluster(config)
        cluster_arn = f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"
        services = f"arn:aws:ecs:{region}:{account}:service/{cluster}/*"
        cluster_tasks = f"arn:aws:ecs:{region}:{account}:task/{cluster}/*"
        function_arn = f"arn:aws:lambda:{region}:{account}:function:{names.compressor_function(config)}"
        self.serving_role = self._role("Serving", SERVING_ACCESS, "reads what serves after each App deploy")
        self.serving_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:ListServices", "ecs:ListTasks"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}},
            )
        )
        self.serving_role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:DescribeServices"], resources=[services])
        )
        self.serving_role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:DescribeTasks"], resources=[cluster_tasks])
        )
        self.serving_role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:DescribeImages"], resources=[repository_arn])
        )
        self.serving_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:GetFunction"], resources=[function_arn])
        )
        self._acknowledge(
            self.serving_role,
            {
                "*": "ecs:ListServices and ecs:ListTasks take no service or task resource (IAM only accepts "
                "'*' for them); the condition ecs:cluster limits both to this stage's cluster. Read-only.",
                services: "DescribeServices on the services of this stage's cluster only; their names are "
                "generated by CloudFormation, so the stack cannot name them. Read-only.",
                cluster_tasks: "DescribeTasks on the tasks of this stage's cluster only; task ids exist only "
                "once ECS starts them. Read-only.",
            },
        )

        # --- metrics -------------------------------------------------------------------------------
        self.metrics_role: iam.Role | None = None
        if load_tested:
            self.metrics_role = self._role(
                "Metrics", METRICS_ACCESS, "reads CloudWatch for the capacity review"
            )
            self.metrics_role.add_to_policy(
                iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
            )
            self._acknowledge(
                self.metrics_role,
                {
                    "*": "cloudwatch:GetMetricData supports no resource-level permissions; the role can only "
                    "read metrics, and only the load-test step's CodeBuild role may assume it.",
                },
            )

    def _role(self, construct_id: str, access: StepAccess, purpose: str) -> iam.Role:
        pipeline_role = f"arn:aws:iam::{self.pipeline.account}:role/{self.pipeline.role_name(access.step)}"
        return iam.Role(
            self,
            construct_id,
            role_name=access.role_name(self.environment_name),
            description=f"The {self.pipeline.name} pipeline's {access.step} step {purpose}",
            # The account, narrowed to one role by ARN: a condition, unlike a role principal, does not need
            # the pipeline's role to exist when this stack deploys first.
            assumed_by=iam.AccountPrincipal(self.pipeline.account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": pipeline_role}}
            ),
            max_session_duration=cdk.Duration.hours(1),
        )

    @staticmethod
    def _acknowledge(role: iam.Role, reasons: dict[str, str]) -> None:
        """cdk-nag IAM5 findings of the role's policy, one per wildcard resource, each with its reason."""
        policy = role.node.find_child("DefaultPolicy")
        Validations.of(policy).acknowledge(
            *(
                cdk.Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason)
                for resource, reason in reasons.items()
            )
        )


def registry_scanning(
    scope: Construct, mode: str, *, qualifier: str
) -> ecr.CfnRegistryScanningConfiguration | None:
    """The registry's scanning configuration for `EnvironmentConfig.ecr_scanning`, or None for `account`.

    It is a singleton of the account's registry in the region: creating it replaces every scanning rule
    there (an organization's Inspector setup included), and the rules it replaced are kept nowhere. Both
    modes scan the CDK assets repository on push:

    - `basic`: ECR's own scan of operating-system packages; free; findings say nothing about fixes.
    - `enhanced`: Amazon Inspector, which also scans language packages (pip, npm) and says whether a fixed
      version exists (`fixAvailable`, which `pipeline.image_scan_allowlist.UNFIXABLE_FAILS` can act on).
      Inspector bills each image it scans, about $0.09 per image pushed in US regions when this was
      written (a release pushes at most three new images per environment: backend, compressor, log
      router; see Amazon Inspector pricing), and turns Inspector's ECR scanning on for the account. Scan
      on push, not continuous: continuous rescans ($0.01 each) would rescan every image the repository
      holds within Inspector's re-scan duration, whenever a new CVE is published.
    """
    if mode == "account":
        return None
    if mode not in ("basic", "enhanced"):
        raise ValueError(f"ecr_scanning is 'account', 'basic' or 'enhanced', not {mode!r}")
    return ecr.CfnRegistryScanningConfiguration(
        scope,
        "ScanOnPush",
        scan_type=mode.upper(),
        rules=[
            ecr.CfnRegistryScanningConfiguration.ScanningRuleProperty(
                scan_frequency="SCAN_ON_PUSH",
                repository_filters=[
                    ecr.CfnRegistryScanningConfiguration.RepositoryFilterProperty(
                        filter=f"cdk-{qualifier}-container-assets-*", filter_type="WILDCARD"
                    )
                ],
            )
        ],
    )
