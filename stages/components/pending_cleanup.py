"""The scheduled pending-row cleanup: `python -m app.cleanup` as a Fargate task, run by an EventBridge rule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from stages.components.backend_settings import CLEANUP_COMMAND, BackendSettings
from stages.components.network import PRIVATE
from stages.components.one_off_task import one_off_task
from stages.config import EnvironmentConfig

# The command holds one database connection at a time (backend/README.md, "The database connection budget").
CLEANUP_POOL = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}


class PendingCleanup(Construct):
    """Removes `pending` rows whose upload never came (docs/design.md: "Pending rows older than a day are removed
    by a cleanup command"), and settles rows whose events were lost (app/services/reconcile.py), every
    `config.pending_cleanup_every_hours`.

    A task definition of its own, like the migration task: a short run needs no Datadog agent (logs go to
    CloudWatch), and its role may only read originals and renditions (the app stack grants that) and
    invoke the compressor (`reconcile_with`), not everything the API may do. The command is idempotent and safe beside the running service, so a retried or overlapping
    run does no harm; a rule invocation that cannot start the task raises the `pending-cleanup-failed`
    alarm (Monitoring), and a run that fails (`report_failures_to`) is published to the alarm topic.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        cluster: ecs.ICluster,
        task_security_group: ec2.ISecurityGroup,
        image: ecs.ContainerImage,
        settings: BackendSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.cluster = cluster
        self.log_group, self.task_definition = one_off_task(
            self,
            config=config,
            name="cleanup",
            command=CLEANUP_COMMAND,
            image=image,
            settings=settings,
            environment=CLEANUP_POOL,
            who="The cleanup task",
        )
        # EventBridge's role, written out: exactly RunTask of this task definition in this cluster and
        # PassRole of its two roles. (The target's own default adds ecs:TagResource on every task of the
        # cluster, which only tagged launches need; this one launches untagged.)
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="EventBridge starts the pending-row cleanup task",
        )
        self.schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[self.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}},
            )
        )
        self.schedule_role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    self.task_definition.task_role.role_arn,
                    self.task_definition.obtain_execution_role().role_arn,
                ],
            )
        )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="Runs python -m app.cleanup: removes pending image rows whose upload never came",
            schedule=events.Schedule.rate(cdk.Duration.hours(config.pending_cleanup_every_hours)),
            targets=[
                targets.EcsTask(
                    cluster=cluster,
                    task_definition=self.task_definition,
                    launch_type=ecs.LaunchType.FARGATE,
                    platform_version=ecs.FargatePlatformVersion.LATEST,
                    subnet_selection=PRIVATE,
                    security_groups=[task_security_group],
                    assign_public_ip=False,
                    role=self.schedule_role.without_policy_updates(),
                    retry_attempts=2,
                    max_event_age=cdk.Duration.hours(1),
                )
            ],
        )

    def reconcile_with(self, compressor: lambda_.IFunction) -> None:
        """Let the run hand an original that has no rendition and no refusal marker (its events were lost)
        to `compressor` again: an asynchronous invoke of exactly that function, named in the task's
        COMPRESSOR_FUNCTION_NAME."""
        container = self.task_definition.default_container
        assert container is not None  # one_off_task adds the one container
        container.add_environment("COMPRESSOR_FUNCTION_NAME", compressor.function_name)
        self.task_definition.add_to_task_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[compressor.function_arn])
        )

    def report_failures_to(self, topic: sns.ITopic) -> events.Rule:
        """Publish to `topic` every cleanup run that stops with a non-zero exit or fails to start."""
        stack = cdk.Stack.of(self)
        family = f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:task-definition/{self.task_definition.family}:"
        detail = events.EventField.from_path
        return events.Rule(
            self,
            "Failures",
            description="A pending-row cleanup run failed: published to the alarm topic",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Task State Change"],
                detail={
                    "clusterArn": [self.cluster.cluster_arn],
                    "taskDefinitionArn": [{"prefix": family}],
                    "lastStatus": ["STOPPED"],
                    "$or": [
                        {"containers": {"name": ["cleanup"], "exitCode": [{"anything-but": 0}]}},
                        {"stopCode": ["TaskFailedToStart"]},
                    ],
                },
            ),
            targets=[
                targets.SnsTopic(
                    topic,
                    message=events.RuleTargetInput.from_text(
                        f"The pending-row cleanup task {detail('$.detail.taskArn')} stopped without finishing: "
                        f"{detail('$.detail.stoppedReason')} (stop code {detail('$.detail.stopCode')}). "
                        f"Its log group {self.log_group.log_group_name} says why; the next scheduled run "
                        "tries again."
                    ),
                )
            ],
        )
