"""The one-off migration task definition, run by the pipeline before the app stack deploys."""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from stages.components.backend_settings import MIGRATE_COMMAND, BackendSettings
from stages.components.one_off_task import one_off_task
from stages.config import EnvironmentConfig


def migration_role_name(environment: str, kind: str) -> str:
    """IAM name of the migration task's `task` or `execution` role in `environment`."""
    return f"yoctogram-{environment}-migrate-{kind}"


class MigrationTask(Construct):
    """`python -m app.migrate` from the new backend image, with the service's settings.

    Not a service: the pipeline's pre step runs it once per deployment (`aws ecs run-task` with the
    network stack's `ClusterName`, `TaskSubnetIds` and `TaskSecurityGroupId`) and waits for exit 0, so
    the schema is migrated before new code serves traffic. Logs go to CloudWatch only: a short task
    needs no Datadog agent, and its output is what a failed deployment is debugged from.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        image: ecs.ContainerImage,
        settings: BackendSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        # Named, so the pipeline's migrate step may pass exactly these two roles to the task it starts
        # (pipeline/access_stack.py), not every role of the account.
        self.task_role = iam.Role(
            self,
            "TaskRole",
            role_name=migration_role_name(config.name, "task"),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="The migration task: reaches the database only (and reads its password from the secret)",
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            role_name=migration_role_name(config.name, "execution"),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="ECS starts the migration task: pulls its image, reads its secrets, writes its logs",
        )
        self.log_group, self.task_definition = one_off_task(
            self,
            config=config,
            name="migrate",
            command=MIGRATE_COMMAND,
            image=image,
            settings=settings,
            who="The migration task",
            task_role=self.task_role,
            execution_role=self.execution_role,
        )
