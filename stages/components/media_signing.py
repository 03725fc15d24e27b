"""The key group CloudFront trusts for `/private/*` signed URLs (docs/design.md: "URLs that reach the bytes")."""

from __future__ import annotations

from aws_cdk import aws_cloudfront as cloudfront
from constructs import Construct

from stages.config import EnvironmentConfig


class MediaSigningKeys(Construct):
    """Every public key of `media_signing_keys`, in one key group.

    The private halves are secrets created by operators (stages/runbooks/media-signing-key.md); the API
    signs with the active key: `key_id` is its CloudFront id, the API's `MEDIA_SIGNING_KEY_ID` (the
    `Key-Pair-Id` of every signed URL).

    CloudFront never changes a public key's PEM in place (UpdatePublicKey takes only the comment), and
    CloudFormation would try exactly that for a new PEM under the same logical id. So each key's construct
    id (and so its logical id) and its name carry the key's fingerprint: a new key is a new resource, and
    a key kept across a rotation keeps its resource. During a rotation the group holds the old and the new
    key, so URLs signed with either verify.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.public_keys: dict[str, cloudfront.PublicKey] = {
            key.fingerprint: cloudfront.PublicKey(
                self,
                f"PublicKey{key.fingerprint}",
                public_key_name=f"yoctogram-{config.name}-media-{key.fingerprint}",
                comment="Yoctogram: verifies signed URLs of private images",
                encoded_key=key.encoded_key,
            )
            for key in config.media_signing_keys
        }
        self.key_group = cloudfront.KeyGroup(
            self,
            "KeyGroup",
            key_group_name=f"yoctogram-{config.name}-media",
            comment="Yoctogram: keys trusted for /private/*",
            items=list(self.public_keys.values()),
        )
        self.key_id = self.public_keys[config.active_media_signing_key].public_key_id
