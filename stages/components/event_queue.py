"""The queue of S3 object events that the event worker consumes, with its dead-letter queue."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stages import names
from stages.components.image_events import objects_created
from stages.components.images_buckets import ORIGINALS, RENDITIONS
from stages.config import EnvironmentConfig

MAX_RECEIVES = 5
"""Deliveries of one event before it is parked in the dead-letter queue (and the alarm fires)."""


class EventQueue(Construct):
    """SQS queue (SSE, TLS only) fed by EventBridge (`subscribe_to_images`) and its dead-letter queue.

    The visibility timeout exceeds the worker's per-message work (a database update and at most one
    S3 HEAD) by a wide margin, so a slow message is not handed to a second worker while in flight.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=names.event_dead_letter_queue(config),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=config.removal_policy,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=names.event_queue(config),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(120),
            retention_period=cdk.Duration.days(4),
            receive_message_wait_time=cdk.Duration.seconds(20),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES
            ),
            removal_policy=config.removal_policy,
        )

    def subscribe_to_images(self, bucket_names: Mapping[str, str]) -> events.Rule:
        """Every `Object Created` under originals and renditions of both buckets goes to the queue.

        The rule lives next to the queue: the queue policy that lets EventBridge send names the rule, so a
        rule in a later stack would make this stack depend on it (a cycle). Events EventBridge fails to
        deliver (after its own retries) land in the dead-letter queue, whose alarm already exists.
        """
        rule = events.Rule(
            self,
            "ImageEvents",
            description="Objects created under originals/ and renditions/ of the images buckets: event worker",
            event_pattern=objects_created(bucket_names, (ORIGINALS, RENDITIONS)),
        )
        rule.add_target(targets.SqsQueue(self.queue, dead_letter_queue=self.dead_letter_queue))
        return rule
