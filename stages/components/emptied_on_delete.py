"""Buckets emptied when their stack is deleted, for environments without `retain_data` (staging).

CDK's `auto_delete_objects` grants its function through the bucket's policy; the images buckets'
policy belongs to the app stack (`images_bucket_policy`), and a bucket has only one. This function gets
its rights from its own role instead, so it works whatever the bucket policy says, or when it is gone
(and, unlike CDK's, it uses no AWS managed policy). Every bucket of a stage that is not retained uses it.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stages.config import EnvironmentConfig

HANDLER = Path(__file__).parent / "bucket_emptier" / "index.py"


class EmptiedOnDelete(Construct):
    """One function and one custom resource per bucket: on the stack's deletion, every version goes."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, buckets: list[s3.IBucket]
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Empties the named buckets when their stack is deleted",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[bucket.bucket_arn for bucket in buckets],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[bucket.arn_for_objects("*") for bucket in buckets],
            )
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text()),
            timeout=cdk.Duration.minutes(15),
            role=role,
            log_group=log_group,
            description="Empties buckets of an environment without retain_data when its stack is deleted",
        )
        stack = cdk.Stack.of(self)
        Validations.of(role).acknowledge(
            *(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{_nag_name(stack, bucket)}/*]",
                    reason="Deleting every object version of this bucket is the function's whole job, and it "
                    "exists only where retain_data is off.",
                )
                for bucket in buckets
            )
        )
        for index, bucket in enumerate(buckets):
            resource = cdk.CustomResource(
                self,
                f"Bucket{index}",
                service_token=function.function_arn,
                resource_type="Custom::EmptiedOnDelete",
                properties={"BucketName": bucket.bucket_name},
            )
            # Deleted before the bucket (and before the role loses its rights).
            resource.node.add_dependency(role, bucket)


def _nag_name(stack: cdk.Stack, bucket: s3.IBucket) -> str:
    """How cdk-nag writes a bucket's ARN in a finding: the ARN itself when known, else `<LogicalId.Arn>`."""
    if not cdk.Token.is_unresolved(bucket.bucket_arn):
        return bucket.bucket_arn
    resource = bucket.node.default_child
    assert isinstance(resource, cdk.CfnElement), bucket.node.path
    return f"<{stack.get_logical_id(resource)}.Arn>"
