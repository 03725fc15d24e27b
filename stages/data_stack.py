"""Data stack: the database, the images buckets, the event queue and the service's own secret."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages import names
from stages.components.access_logs import AccessLogsBucket
from stages.components.database import Database
from stages.components.emptied_on_delete import EmptiedOnDelete
from stages.components.event_queue import EventQueue
from stages.components.images_buckets import ImagesBuckets, images_bucket_name
from stages.config import EnvironmentConfig
from stages.pinned_stack import PinnedStack


class DataStack(PinnedStack):
    """Everything stateful of a stage; retained and termination protected where `retain_data` is set.

    Also the EventBridge rule that feeds the event queue (see `EventQueue.subscribe_to_images`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        vpc: ec2.IVpc,
        task_security_group: ec2.ISecurityGroup,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, construct_id, config=config, termination_protection=config.retain_data, **kwargs
        )
        self.access_logs = AccessLogsBucket(self, "AccessLogs", config=config).bucket
        images = ImagesBuckets(self, "Images", config=config, access_logs=self.access_logs)
        self.public_images_bucket = images.public_bucket
        self.private_images_bucket = images.private_bucket
        # Names known at synth: the tasks' settings and policies use them without cross-stack exports.
        self.public_images_bucket_name = images_bucket_name(config, "public")
        self.private_images_bucket_name = images_bucket_name(config, "private")

        self.image_bucket_names = {
            "public": self.public_images_bucket_name,
            "private": self.private_images_bucket_name,
        }
        if not config.retain_data:
            # A paused staging deletes its stacks: the buckets must be empty by then.
            EmptiedOnDelete(
                self,
                "EmptiedOnDelete",
                config=config,
                buckets=[self.public_images_bucket, self.private_images_bucket, self.access_logs],
            )

        events = EventQueue(self, "Events", config=config)
        self.event_queue = events.queue
        self.event_dead_letter_queue = events.dead_letter_queue
        events.subscribe_to_images(self.image_bucket_names)

        self.database = Database(self, "Database", config=config, vpc=vpc)
        self.database.allow_from(task_security_group)

        # SECRET_KEY signs the service's tokens; generated here so no one ever sees or types it.
        self.secret_key = secretsmanager.Secret(
            self,
            "SecretKey",
            secret_name=names.secret_key_secret(config),
            description="SECRET_KEY of the Yoctogram API (token signing)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=config.removal_policy,
        )
        Validations.of(self.secret_key).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Rotating SECRET_KEY invalidates every issued token at once, logging all users out; it "
                "is replaced deliberately (new version plus a forced redeployment) after a suspected leak, "
                "not on a schedule.",
            )
        )

        self.outputs = {
            "DbClusterIdentifier": cdk.CfnOutput(
                self, "DbClusterIdentifier", value=self.database.cluster.cluster_identifier
            ),
            "EventQueueName": cdk.CfnOutput(self, "EventQueueName", value=self.event_queue.queue_name),
        }
