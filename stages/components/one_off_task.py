"""A backend command as a task definition of its own: one container, CloudWatch logs, no sidecars."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from stages.components.backend_settings import ARM64_LINUX, BackendSettings
from stages.config import EnvironmentConfig


def one_off_task(
    scope: Construct,
    *,
    config: EnvironmentConfig,
    name: str,
    command: list[str],
    image: ecs.ContainerImage,
    settings: BackendSettings,
    environment: dict[str, str] | None = None,
    who: str,
    task_role: iam.IRole | None = None,
    execution_role: iam.IRole | None = None,
) -> tuple[logs.LogGroup, ecs.FargateTaskDefinition]:
    """Add to `scope` the log group (`Logs`) and task definition (`TaskDefinition`, family
    `yoctogram-<env>-<name>`, 0.25 vCPU / 0.5 GB) of a short-lived backend command such as the migration.

    A short run needs no Datadog agent: its output goes to CloudWatch, where a failed run is debugged
    from. `environment` is added to the service's plain settings; `who` names the task in the cdk-nag
    acknowledgment of those settings.
    """
    log_group = logs.LogGroup(
        scope, "Logs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
    )
    task_definition = ecs.FargateTaskDefinition(
        scope,
        "TaskDefinition",
        family=f"yoctogram-{config.name}-{name}",
        task_role=task_role,
        execution_role=execution_role,
        cpu=256,
        memory_limit_mib=512,
        runtime_platform=ARM64_LINUX,
    )
    settings.grant_to(task_definition)
    task_definition.add_container(
        name.capitalize(),
        container_name=name,
        image=image,
        command=command,
        essential=True,
        environment={**settings.environment, **(environment or {})},
        secrets=settings.secrets,
        logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=log_group),
    )
    Validations.of(task_definition).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-ECS2",
            reason=f"{who} gets the service's plain settings so the backend's settings validate (names and "
            "sizes only); its database settings are ECS secrets from the Aurora secret, and the password is read "
            "from that secret (its role may) when it connects.",
        )
    )
    return log_group, task_definition
