"""The event worker: its own small Fargate service, from the backend image, consuming the event queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stages.components.backend_settings import ARM64_LINUX, EVENT_WORKER_COMMAND, BackendSettings
from stages.components.network import PRIVATE
from stages.components.telemetry import TaskTelemetry
from stages.config import EnvironmentConfig


class EventWorker(Construct):
    """`python -m app.events` as a service of `worker_tasks` tasks (docs/design.md: "How the service learns...").

    A service of its own rather than a second container in the web task: it scales and fails apart
    from the API, and a web deployment's rollback does not restart it mid-message. The task role may
    consume `queue`; the app stack adds reading refusal markers (`*.rejected`), and nothing else.
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
        router_image: ecs.ContainerImage,
        settings: BackendSettings,
        datadog_api_key: secretsmanager.ISecret,
        queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=f"yoctogram-{config.name}-event-worker",
            cpu=config.worker_cpu,
            memory_limit_mib=config.worker_memory_mib,
            runtime_platform=ARM64_LINUX,
        )
        telemetry = TaskTelemetry(
            self,
            "Telemetry",
            config=config,
            task_definition=self.task_definition,
            service="yoctogram-event-worker",
            router_image=router_image,
            datadog_api_key=datadog_api_key,
        )
        settings.grant_to(self.task_definition)
        self.task_definition.add_container(
            "Worker",
            container_name="worker",
            image=image,
            command=EVENT_WORKER_COMMAND,
            essential=True,
            environment=settings.environment,
            secrets=settings.secrets,
            stop_timeout=cdk.Duration.seconds(30),
            docker_labels=telemetry.docker_labels,
            logging=telemetry.app_logging,
        )
        queue.grant_consume_messages(self.task_definition.task_role)
        Validations.of(self.task_definition).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-ECS2",
                reason="The event worker's plain environment is the web task's (names, the queue URL and "
                "pool sizes, the database secret's ARN, no credential); SECRET_KEY and the signing key come "
                "from Secrets Manager as ECS secrets, the database password from its secret when it connects.",
            )
        )

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=config.worker_tasks,
            security_groups=[task_security_group],
            vpc_subnets=PRIVATE,
            assign_public_ip=False,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
        )
