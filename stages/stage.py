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
from stages.edge_stack import EdgeStack
from stages.migrations_stack import MigrationsStack
from stages.network_stack import NetworkStack

BACKEND_DIR = Path(__file__).resolve().parents[1] / "backend"

# Never part of the image: the build context is hashed at synth, so these would only churn the hash.
BACKEND_IMAGE_EXCLUDES = ["tests", ".venv", "**/__pycache__", "**/*.pyc", ".pytest_cache", ".ruff_cache"]


class YoctogramStage(cdk.Stage):
    """Edge, network, data, migrations and app stacks of one environment (docs/design.md: "Deploy order").

    Stacks talk by object references, and every reference between them is weak: the consuming template
    reads the producing stack's output with `Fn::GetStackOutput` (naming the producer's region when it
    differs). Chosen over the CDK's strong cross-region references for the edge stack (us-east-1) ->
    app and migrations stacks (us-west-2) because those need an SSM parameter writer and reader (two
    custom resources, two Lambda functions and their roles) in the stacks, and couple the stacks so that
    replacing a certificate or key group blocks on the consumers ("deadly embrace"). The cost of weak
    references is that CloudFormation does not stop the producer from removing a value that a consumer
    still uses; here the stacks only ever deploy together, producer first, from the pipeline, so each
    consumer is updated right after the value it reads changes. (cdk.json sets the same default for
    the whole app; it is pinned here so the decision does not hinge on that flag.)

    `frontend_build` is the web client's build folder (see `stages.components.web_client`).
    `outputs` maps each docs/design.md output name to its `CfnOutput`, for the pipeline's `env_from_cfn_outputs`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        frontend_build: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, env=config.env, **kwargs)
        cdk.CrossStackReferences.of(self).consume(cdk.ReferenceStrength.WEAK)
        self.config = config
        cdk.Tags.of(self).add("project", "yoctogram")
        cdk.Tags.of(self).add("environment", config.name)

        # One image for the migrations and the services, so the schema is migrated by the code that ships.
        # backend/yoctogram_common links to the package the compressor shares: copied, not linked, into
        # the build context (a link out of the context would not reach the Docker build).
        self.backend_image = ecs.ContainerImage.from_asset(
            str(BACKEND_DIR),
            platform=ecr_assets.Platform.LINUX_ARM64,
            exclude=BACKEND_IMAGE_EXCLUDES,
            follow_symlinks=cdk.SymlinkFollowMode.ALWAYS,
        )

        self.edge = EdgeStack(self, "Edge", config=config)
        self.network = NetworkStack(self, "Network", config=config)
        # Certificate validation is the slowest and likeliest first-deploy failure: let it gate the rest.
        self.network.add_stack_dependency(
            self.edge, "the edge stack deploys first (docs/design.md: deploy order)"
        )
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
            media_signing_key_id=self.edge.media_signing.key_id,
        )
        self.app = AppStack(
            self,
            "App",
            config=config,
            edge=self.edge,
            network=self.network,
            data=self.data,
            image=self.backend_image,
            media_signing_key_id=self.edge.media_signing.key_id,
            frontend_build=frontend_build,
        )
        # The migrations and the app import the data stack's resources by name (no reference to order them).
        for consumer in (self.migrations, self.app):
            consumer.add_stack_dependency(
                self.data, "the data stack's secrets, queues and database come first"
            )
        # The pipeline runs the migration task between these two (docs/design.md: "Deploy order").
        self.app.add_stack_dependency(
            self.migrations, "the schema is migrated before new code serves traffic"
        )

        self.outputs: dict[str, cdk.CfnOutput] = {
            **self.network.outputs,
            **self.data.outputs,
            **self.migrations.outputs,
            **self.app.outputs,
        }
