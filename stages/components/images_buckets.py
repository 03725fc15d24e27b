"""The two images buckets (docs/design.md: "Images: buckets, keys, states")."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stages import names
from stages.config import EnvironmentConfig
from yoctogram_common.keys import ORIGINALS, PRIVACIES, QUARANTINE, RENDITIONS

# The key layout is the one the backend and the compressor use (yoctogram_common.keys): originals/ uploaded
# by browsers and never modified; renditions/ (`.webp`, `.jpg`, `.rejected` markers) written by the
# compressor; quarantine/ for the originals it refused, never served.
__all__ = ["ORIGINALS", "PRIVACIES", "QUARANTINE", "RENDITIONS"]


def object_arn(bucket_name: str, privacy: str, folder: str, name: str = "*") -> str:
    """ARN of the keys `{privacy}/{folder}/{name}` of a bucket (`name` may be a pattern)."""
    return f"arn:aws:s3:::{bucket_name}/{privacy}/{folder}/{name}"


def bucket_arn(bucket_name: str) -> str:
    """ARN of a bucket known by name."""
    return f"arn:aws:s3:::{bucket_name}"


class ImagesBucket(Construct):
    """One images bucket: private, encrypted, TLS only, events to EventBridge, uploads from the site.

    Browsers POST originals straight to the bucket with a presigned form, so CORS allows exactly the
    site's origin and the POST method; uploads that never complete are aborted after a day. Bucket
    notifications go to EventBridge (set on the bucket itself, so no notification custom resource and
    its Lambda are needed); EventBridge rules route them to the compressor and the event queue.

    The bucket's policy (TLS only; CloudFront reads the originals and renditions under the bucket's own
    privacy prefix, for this stage's distribution only) is written by the app stack, which owns the
    distribution (`images_bucket_policy`): written here it could only name the account's distributions,
    since naming the one distribution would make this stack depend on the app stack, a cycle. A bucket
    has one policy, so nothing here may add a statement to it (no `enforce_ssl`, no auto-delete).

    With `images_recoverable_days`, the bucket is versioned and noncurrent versions (what a delete or
    an overwrite leaves) expire after that many days.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        privacy: str,
        bucket_name: str,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=config.images_recoverable_days is not None,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=f"s3/{bucket_name}/",
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST],
                    allowed_origins=[config.site_url],
                    allowed_headers=["*"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(1)
                ),
                *(
                    [
                        s3.LifecycleRule(
                            id="ExpireDeletedVersions",
                            noncurrent_version_expiration=cdk.Duration.days(config.images_recoverable_days),
                            expired_object_delete_marker=True,
                        )
                    ]
                    if config.images_recoverable_days is not None
                    else []
                ),
            ],
            removal_policy=config.removal_policy,
        )
        Validations.of(self.bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S10",
                reason="TLS is required by the bucket's policy, which the app stack writes with the statement "
                "for its CloudFront distribution (images_bucket_policy; a bucket has one policy).",
            )
        )
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )


def images_bucket_policy(
    scope: Construct, construct_id: str, *, bucket_name: str, privacy: str, distribution_arn: str
) -> s3.CfnBucketPolicy:
    """The whole policy of one images bucket, written by the stack that owns the distribution.

    TLS only, and CloudFront (origin access control) reads the originals and renditions under the
    bucket's own privacy prefix for `distribution_arn` only. Retained when its stack goes: deleting the
    app stack must not leave the bucket without its TLS rule (and the bucket's own deletion takes it).
    """
    document = iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="DenyWithoutTls",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:*"],
                resources=[bucket_arn(bucket_name), f"{bucket_arn(bucket_name)}/*"],
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            ),
            iam.PolicyStatement(
                sid="CloudFrontReadsImages",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[object_arn(bucket_name, privacy, folder) for folder in (ORIGINALS, RENDITIONS)],
                conditions={"StringEquals": {"AWS:SourceArn": distribution_arn}},
            ),
        ]
    )
    policy = s3.CfnBucketPolicy(scope, construct_id, bucket=bucket_name, policy_document=document)
    policy.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
    return policy


def images_bucket_name(config: EnvironmentConfig, privacy: str) -> str:
    """Deterministic, globally unique bucket name (`stages.names.images_bucket`).

    Known at synth time so task policies and their cdk-nag acknowledgments name the real ARN.
    """
    return names.images_bucket(config, privacy)


class ImagesBuckets(Construct):
    """The public and the private images bucket: two buckets so a mistake on one cannot expose the other."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, access_logs: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.public_bucket = ImagesBucket(
            self,
            "Public",
            config=config,
            privacy="public",
            bucket_name=images_bucket_name(config, "public"),
            access_logs=access_logs,
        ).bucket
        self.private_bucket = ImagesBucket(
            self,
            "Private",
            config=config,
            privacy="private",
            bucket_name=images_bucket_name(config, "private"),
            access_logs=access_logs,
        ).bucket
