"""Acknowledgments shared by every Fargate task definition of the stage."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ecs as ecs


def acknowledge_image_pull(task_definition: ecs.TaskDefinition) -> None:
    """The execution role's `ecr:GetAuthorizationToken` can only be granted on `*` (ECR has no ARN for it)."""
    role = task_definition.obtain_execution_role()
    policy = role.node.try_find_child("DefaultPolicy")
    assert policy is not None
    Validations.of(policy).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="ecr:GetAuthorizationToken, needed to pull the task's images from the CDK assets repository, is an "
            "account-level action that IAM only accepts on Resource '*'; the pull actions themselves are "
            "limited to the CDK assets repository.",
        )
    )
