"""The bucket that receives S3 server access logs and the load balancer's access logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stages.config import EnvironmentConfig


class AccessLogsBucket(Construct):
    """SSE-S3 encrypted (the only encryption ALB and S3 log delivery accept), TLS only, private.

    Also CloudFront's standard logs (under `cloudfront/`). CloudFront delivers them by granting its log
    account an object ACL, so ACLs stay enabled (bucket owner preferred: the bucket owns every object);
    block-public-access still rejects any public ACL.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=config.removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=cdk.Duration.days(config.log_retention_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        Validations.of(self.bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket is the destination of the images buckets' and the load balancer's access "
                "logs; logging its own accesses into itself would loop, and a second log bucket would only "
                "move this finding there.",
            )
        )
