"""The key group CloudFront trusts for `/private/*` signed URLs (DESIGN: "URLs that reach the bytes")."""

from __future__ import annotations

import hashlib

from aws_cdk import aws_cloudfront as cloudfront
from constructs import Construct

from stages.config import EnvironmentConfig


class MediaSigningKey(Construct):
    """The public key from config, in a key group of its own.

    The private half is the API's `MEDIA_SIGNING_PRIVATE_KEY` (Secrets Manager, created by operators, see
    stages/runbooks/media-signing-key.md); `key_id` is the CloudFront id of the public key, the API's
    `MEDIA_SIGNING_KEY_ID` (the `Key-Pair-Id` of every signed URL).

    CloudFront never changes a public key in place, so a new key in config means a new `PublicKey`:
    its name carries the key's fingerprint, so CloudFormation can create the new one before it deletes
    the old one.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        encoded_key = config.media_signing_public_key.strip() + "\n"
        self.public_key = cloudfront.PublicKey(
            self,
            "PublicKey",
            public_key_name=f"yoctogram-{config.name}-media-{self.fingerprint(encoded_key)}",
            comment="Yoctogram: verifies signed URLs of private images",
            encoded_key=encoded_key,
        )
        self.key_group = cloudfront.KeyGroup(
            self,
            "KeyGroup",
            key_group_name=f"yoctogram-{config.name}-media",
            comment="Yoctogram: keys trusted for /private/*",
            items=[self.public_key],
        )
        self.key_id = self.public_key.public_key_id

    @staticmethod
    def fingerprint(encoded_key: str) -> str:
        """A short, stable digest of a PEM key: part of the CloudFront key's name."""
        return hashlib.sha256(encoded_key.encode()).hexdigest()[:12]
