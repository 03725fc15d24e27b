"""Migrations stack: the one-off migration task definition with the new backend image."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from stages.components.backend_settings import backend_settings
from stages.components.migration_task import MigrationTask
from stages.components.task_roles import acknowledge_image_pull
from stages.config import EnvironmentConfig
from stages.pinned_stack import PinnedStack


class MigrationsStack(PinnedStack):
    """Deploys the migration task definition; the pipeline runs it as the app stack's pre step."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        image: ecs.ContainerImage,
        media_signing_key_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        settings = backend_settings(self, config=config, media_signing_key_id=media_signing_key_id)
        self.migration = MigrationTask(self, "Migration", config=config, image=image, settings=settings)
        acknowledge_image_pull(self.migration.task_definition)
        self.outputs = {
            "MigrationTaskDefinitionArn": cdk.CfnOutput(
                self, "MigrationTaskDefinitionArn", value=self.migration.task_definition.task_definition_arn
            ),
        }
