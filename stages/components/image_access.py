"""Least-privilege access to the images buckets, key prefix by key prefix (docs/design.md: "Images: buckets, keys")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_iam as iam

from stages.components.images_buckets import bucket_arn, object_arn


def grant_image_objects(
    role: iam.IRole,
    *,
    who: str,
    bucket_names: Mapping[str, str],
    grants: Sequence[tuple[str, str, Sequence[str], str]],
    list_buckets: bool,
) -> None:
    """Allow `role` exactly `grants` in every images bucket, each under the bucket's own privacy prefix.

    `grants` holds (folder, key name pattern, actions, why), e.g. `("renditions", "*.rejected",
    ["s3:GetObject"], "reads refusal markers")`: the resource is `{bucket}/{privacy}/{folder}/{pattern}`.
    `list_buckets` adds `s3:ListBucket` so that a HEAD or GET of a missing key answers 404, not 403. It is
    granted on the bucket without an `s3:prefix` condition: that 404-or-403 check is not a listing and
    carries no prefix, so a prefix condition would leave it at 403; the buckets hold nothing but images.

    Image ids are unknown at deploy time, so every object resource ends in a pattern: each one is
    acknowledged (cdk-nag IAM5) on the role's policy with `who` and `why`.
    """
    acknowledgments = []
    for privacy, bucket_name in bucket_names.items():
        for folder, pattern, actions, why in grants:
            resource = object_arn(bucket_name, privacy, folder, pattern)
            role.add_to_principal_policy(iam.PolicyStatement(actions=sorted(actions), resources=[resource]))
            acknowledgments.append(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{resource}]",
                    reason=f"{who} {why}: {', '.join(sorted(actions))} on keys '{privacy}/{folder}/{pattern}' of "
                    f"the {privacy} images bucket only, where keys are named by image ids unknown at deploy time.",
                )
            )
        if list_buckets:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn(bucket_name)])
            )
    policy = role.node.try_find_child("DefaultPolicy")
    assert policy is not None, "the grants above create the role's default policy"
    Validations.of(policy).acknowledge(*acknowledgments)
