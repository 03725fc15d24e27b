"""The compressor: a container-image Lambda (arm64) that writes a rendition for every uploaded original."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stages import names
from stages.components.image_access import grant_image_objects
from stages.components.image_events import objects_created
from stages.components.images_buckets import ORIGINALS, QUARANTINE, RENDITIONS
from stages.config import EnvironmentConfig

# QUARANTINE (`{privacy}/quarantine/{image_id}`): an original the compressor refused, moved out of
# `originals/`. No CloudFront behaviour serves it (the bucket policies grant CloudFront originals/ and
# renditions/ only) and no event rule matches it; it is kept for people to look at and deleted with its
# image.
__all__ = ["QUARANTINE", "Compressor"]
COMPRESSOR_DIR = Path(__file__).resolve().parents[2] / "compressor"
# Never part of the image (on top of compressor/.dockerignore): the folder is hashed at synth, and tool
# caches would only churn the hash and trigger a rebuild.
COMPRESSOR_IMAGE_EXCLUDES = [
    "tests",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "**/__pycache__",
    "**/*.pyc",
]


class Compressor(Construct):
    """`compressor/` as a Lambda, triggered by EventBridge for originals only.

    - The rule matches `Object Created` under `{privacy}/originals/` only, and the function writes under
      `{privacy}/renditions/` and `{privacy}/quarantine/` only, so it can never trigger itself. A refused
      original is copied to quarantine and deleted from originals, so it is never served.
    - Bounded: reserved concurrency from config; events beyond it wait in Lambda's async queue.
    - Failures go to `failures` (SQS, alarmed): an invocation that still fails after the configured async
      retries or outlives the maximum event age (on-failure destination), and an event that EventBridge
      could not deliver (the rule target's dead-letter queue). Bad images are not failures: the function
      writes a `.rejected` marker and succeeds.
    - Its role has exactly what the function does with S3 (see the grants) plus writing its own log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        bucket_names: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        settings = config.compressor
        function_name = names.compressor_function(config)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.failures = sqs.Queue(
            self,
            "Failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        Validations.of(self.failures).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the compressor's dead-letter path (Lambda on-failure destination "
                "and the EventBridge target's dead-letter queue); nothing consumes it automatically, an alarm "
                "fires on its first message and operators replay or discard what it holds.",
            )
        )
        # A role of our own rather than the CDK default: the default attaches the AWS managed basic execution
        # policy (logs on every group of the account); this one writes only to the function's log group.
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Yoctogram compressor: its log group and the images keys it works on",
        )
        self.log_group.grant_write(role)

        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            function_name=function_name,
            description="Writes the WebP rendition (or a .rejected marker) of every uploaded original",
            code=lambda_.DockerImageCode.from_image_asset(
                str(COMPRESSOR_DIR),
                platform=ecr_assets.Platform.LINUX_ARM64,
                exclude=COMPRESSOR_IMAGE_EXCLUDES,
                follow_symlinks=cdk.SymlinkFollowMode.ALWAYS,  # yoctogram_common, shared with the backend
            ),
            architecture=lambda_.Architecture.ARM_64,
            memory_size=settings.memory_mib,
            timeout=cdk.Duration.seconds(settings.timeout_seconds),
            reserved_concurrent_executions=settings.reserved_concurrency,
            environment={
                "MAX_LONG_EDGE": str(settings.max_long_edge),
                "OUTPUT_FORMAT": settings.output_format,
                "WEBP_QUALITY": str(settings.webp_quality),
                "LOG_LEVEL": settings.log_level,
            },
            role=role,
            log_group=self.log_group,
            retry_attempts=settings.retry_attempts,
            max_event_age=cdk.Duration.minutes(settings.max_event_age_minutes),
            on_failure=destinations.SqsDestination(self.failures),
        )
        self.function.node.add_dependency(self.log_group)

        grant_image_objects(
            role,
            who="The compressor",
            bucket_names=bucket_names,
            grants=[
                (
                    ORIGINALS,
                    "*",
                    ["s3:GetObject", "s3:DeleteObject"],
                    "downloads the original it was told about, and removes it once it is refused and copied "
                    "to quarantine",
                ),
                (
                    RENDITIONS,
                    "*",
                    ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "HEADs, writes and replaces the rendition and the refusal marker of an original",
                ),
                (QUARANTINE, "*", ["s3:PutObject"], "copies a refused original out of the served prefixes"),
            ],
            list_buckets=True,
        )

        self.rule = events.Rule(
            self,
            "OriginalCreated",
            description="Originals created in the images buckets: the compressor (never renditions)",
            event_pattern=objects_created(bucket_names, (ORIGINALS,)),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                self.function,
                dead_letter_queue=self.failures,
                retry_attempts=settings.retry_attempts,
                max_event_age=cdk.Duration.minutes(settings.max_event_age_minutes),
            )
        )
