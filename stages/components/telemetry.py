"""Observability sidecars of a Fargate task: the Datadog agent and the FireLens log router."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages.config import EnvironmentConfig

LOG_ROUTER_DIR = Path(__file__).resolve().parents[1] / "log_router"
LOG_ROUTER_CONFIG_FILE = "/fluent-bit/etc/yoctogram.conf"


def log_router_image(scope: Construct, *, config: EnvironmentConfig) -> ecs.ContainerImage:
    """AWS for Fluent Bit with our output file baked in (Fargate reads FireLens config from the image)."""
    asset = ecr_assets.DockerImageAsset(
        scope,
        "LogRouterImage",
        directory=str(LOG_ROUTER_DIR),
        platform=ecr_assets.Platform.LINUX_ARM64,
        build_args={"BASE_IMAGE": config.log_router_base_image},
    )
    return ecs.ContainerImage.from_docker_image_asset(asset)


class TaskTelemetry(Construct):
    """Adds the Datadog agent and the log router to `task_definition`; the app logs through `app_logging`.

    - The Datadog agent (not essential: the app keeps serving if it stops) collects the ECS Fargate
      metrics of the task and receives DogStatsD on localhost (APM off: the backend runs no tracer). Its API key comes from the
      Secrets Manager secret named in config, injected by ECS at start; it never appears in a template.
    - The app container logs through FireLens; the router sends every record to Datadog and to
      `app_log_group` in CloudWatch (retention from config). The sidecars' own logs go straight to
      CloudWatch (`sidecar_log_group`), so a broken router still leaves a trace.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        task_definition: ecs.TaskDefinition,
        service: str,
        router_image: ecs.ContainerImage,
        datadog_api_key: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        self.app_log_group = logs.LogGroup(
            self, "AppLogs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.sidecar_log_group = logs.LogGroup(
            self, "SidecarLogs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        api_key = ecs.Secret.from_secrets_manager(datadog_api_key)
        datadog_env = {"DD_SITE": config.datadog_site, "DD_ENV": config.name, "DD_SERVICE": service}

        task_definition.add_firelens_log_router(
            "LogRouter",
            container_name="log-router",
            image=router_image,
            essential=True,
            memory_reservation_mib=64,
            firelens_config=ecs.FirelensConfig(
                type=ecs.FirelensLogRouterType.FLUENTBIT,
                options=ecs.FirelensOptions(
                    config_file_type=ecs.FirelensConfigFileType.FILE,
                    config_file_value=LOG_ROUTER_CONFIG_FILE,
                    enable_ecs_log_metadata=True,
                ),
            ),
            environment={
                **datadog_env,
                "AWS_REGION": config.region,
                "APP_LOG_GROUP": self.app_log_group.log_group_name,
            },
            secrets={"DD_API_KEY": api_key},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="log-router", log_group=self.sidecar_log_group),
        )
        # FireLens writes to CloudWatch with the task role.
        self.app_log_group.grant_write(task_definition.task_role)

        task_definition.add_container(
            "DatadogAgent",
            container_name="datadog-agent",
            image=ecs.ContainerImage.from_registry(config.datadog_agent_image),
            essential=False,
            memory_reservation_mib=256,
            environment={
                **datadog_env,
                "ECS_FARGATE": "true",
                # No tracer runs in the backend (no ddtrace), so there are no traces to receive: off, so
                # nobody reads an empty APM page as "no latency problem".
                "DD_APM_ENABLED": "false",
                "DD_DOGSTATSD_NON_LOCAL_TRAFFIC": "true",
            },
            secrets={"DD_API_KEY": api_key},
            health_check=ecs.HealthCheck(
                command=["CMD", "agent", "health"],
                interval=cdk.Duration.seconds(30),
                timeout=cdk.Duration.seconds(5),
                retries=3,
                start_period=cdk.Duration.seconds(15),
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="datadog-agent", log_group=self.sidecar_log_group),
        )

        self.app_logging = ecs.LogDrivers.firelens()
        self.docker_labels = {"com.datadoghq.tags.env": config.name, "com.datadoghq.tags.service": service}
