"""The two images buckets (DESIGN: "Images: buckets, keys, states")."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stages import names
from stages.config import EnvironmentConfig

PRIVACIES = ("public", "private")
ORIGINALS = "originals"
"""`{privacy}/originals/{image_id}`: uploaded by browsers, never modified."""
RENDITIONS = "renditions"
"""`{privacy}/renditions/{image_id}.webp` (or `.jpg`) and `.rejected` markers: written by the compressor."""


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

    CloudFront (origin access control) may read the originals and renditions under the bucket's own
    privacy prefix. The distribution lives in the app stack, which deploys after this one, so the
    statement names the account's distributions (`distribution/*`) rather than the one distribution:
    naming it would make this stack depend on the app stack, a cycle. The account holds one environment.
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
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
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
                )
            ],
            removal_policy=config.removal_policy,
        )
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsImages",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[object_arn(bucket_name, privacy, folder) for folder in (ORIGINALS, RENDITIONS)],
                conditions={
                    "ArnLike": {"AWS:SourceArn": f"arn:aws:cloudfront::{config.account}:distribution/*"}
                },
            )
        )


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
