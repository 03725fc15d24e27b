"""The deployable Stage: one class, built once from the staging config and once from the prod config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from stages.app_stack import AppStack
from stages.config import EnvironmentConfig
from stages.data_stack import DataStack
from stages.migrations_stack import MigrationsStack
from stages.network_stack import NetworkStack

BACKEND_DIR = Path(__file__).resolve().parents[1] / "backend"

# Never part of the image: the build context is hashed at synth, so these would only churn the hash.
BACKEND_IMAGE_EXCLUDES = ["tests", ".venv", "**/__pycache__", "**/*.pyc", ".pytest_cache", ".ruff_cache"]


class YoctogramStage(cdk.Stage):
    """Network, data, migrations and app stacks of one environment (DESIGN: "Deploy order").

    Stacks talk by object references; CloudFormation exports follow from them. Issue 8 adds an `edge`
    stack (us-east-1: CloudFront certificate, WAF) before `network`, and hands CloudFront the app
    stack's load balancer, the data stack's buckets and the public key id (`media_signing_key_id`).

    `outputs` maps each DESIGN output name to its `CfnOutput`, for the pipeline's `env_from_cfn_outputs`.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, env=config.env, **kwargs)
        self.config = config
        cdk.Tags.of(self).add("project", "yoctogram")
        cdk.Tags.of(self).add("environment", config.name)

        # One image for the migrations and the services, so the schema is migrated by the code that ships.
        self.backend_image = ecs.ContainerImage.from_asset(
            str(BACKEND_DIR), platform=ecr_assets.Platform.LINUX_ARM64, exclude=BACKEND_IMAGE_EXCLUDES
        )

        self.network = NetworkStack(self, "Network", config=config)
        self.data = DataStack(
            self,
            "Data",
            config=config,
            vpc=self.network.vpc,
            task_security_group=self.network.task_security_group,
        )
        self.migrations = MigrationsStack(
            self,
            "Migrations",
            config=config,
            image=self.backend_image,
            data=self.data,
            media_signing_key_id=config.media_signing_key_id,
        )
        self.app = AppStack(
            self,
            "App",
            config=config,
            network=self.network,
            data=self.data,
            image=self.backend_image,
            media_signing_key_id=config.media_signing_key_id,
        )
        # The pipeline runs the migration task between these two (DESIGN: "Deploy order").
        self.app.add_stack_dependency(
            self.migrations, "the schema is migrated before new code serves traffic"
        )

        self.outputs: dict[str, cdk.CfnOutput] = {
            **self.network.outputs,
            **self.data.outputs,
            **self.migrations.outputs,
            **self.app.outputs,
        }
