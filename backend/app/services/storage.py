"""The images buckets: presigned uploads, existence checks, refusal markers, deletion.

One boto3 client per process (made in the lifespan). boto3 is blocking, so every call runs in a worker
thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.core.config import Settings
from app.core.errors import IMAGE_STORE_UNAVAILABLE, Unavailable
from yoctogram_common import keys

log = logging.getLogger("app.storage")

DEFAULT_CONTENT_TYPE = "image/jpeg"


def make_s3_client(settings: Settings) -> Any:
    """The process's S3 client: regional, SigV4, bounded retries and short timeouts (S3_* settings), so
    that a hung S3 is a 503 within seconds."""
    import boto3  # imported on first use: it is slow to import, and not every process needs it

    return boto3.client(
        "s3",
        region_name=settings.AWS_DEFAULT_REGION,
        endpoint_url=settings.AWS_ENDPOINT_URL or None,
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": settings.S3_MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=settings.S3_CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.S3_READ_TIMEOUT_SECONDS,
            max_pool_connections=32,
        ),
    )


def _missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


@dataclass
class PresignedPost:
    url: str
    fields: dict[str, str]


class ImageStorage:
    """What the API does with the two images buckets."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.public_bucket = settings.PUBLIC_IMAGES_BUCKET
        self.private_bucket = settings.PRIVATE_IMAGES_BUCKET
        self.max_upload_bytes = settings.MAX_UPLOAD_BYTES
        self.expires_seconds = settings.UPLOAD_URL_EXPIRES_SECONDS

    def bucket(self, public: bool) -> str:
        return self.public_bucket if public else self.private_bucket

    async def _call(self, what: str, function: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: function(**kwargs))
        except ClientError as error:
            if _missing(error):
                raise
            log.exception("S3 %s failed", what)
            raise Unavailable(IMAGE_STORE_UNAVAILABLE) from None
        except BotoCoreError:
            log.exception("S3 %s failed", what)
            raise Unavailable(IMAGE_STORE_UNAVAILABLE) from None

    async def presigned_post(self, *, key: str, public: bool, content_type: str) -> PresignedPost:
        """A POST policy for exactly `key`: 1 byte to MAX_UPLOAD_BYTES, exactly `content_type`, a short expiry.

        `fields` names every form field the policy checks (key, Content-Type and the signature fields),
        so a client that sends `fields` back unchanged, then the file, satisfies S3.
        """
        presigned = await self._call(
            "presigned POST",
            self.client.generate_presigned_post,
            Bucket=self.bucket(public),
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                ["content-length-range", 1, self.max_upload_bytes],
                # Pinned: the original is stored, and served, with the one type `generate` accepted.
                {"Content-Type": content_type},
            ],
            ExpiresIn=self.expires_seconds,
        )
        return PresignedPost(url=presigned["url"], fields=dict(presigned["fields"]))

    async def exists(self, *, key: str, public: bool) -> bool:
        try:
            await self._call("HEAD", self.client.head_object, Bucket=self.bucket(public), Key=key)
        except ClientError:
            return False
        return True

    async def read_json(self, *, key: str, public: bool) -> dict[str, Any] | None:
        """A small JSON object (a refusal marker), or None when it is missing or unreadable."""
        try:
            got = await self._call("GET", self.client.get_object, Bucket=self.bucket(public), Key=key)
            body = await anyio.to_thread.run_sync(lambda: got["Body"].read(64 * 1024))
        except ClientError:
            return None
        except BotoCoreError:  # the body stopped coming (read timeout): as unavailable as the GET itself
            log.exception("S3 GET body of %s failed", key)
            raise Unavailable(IMAGE_STORE_UNAVAILABLE) from None
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def keys_of(*, privacy: str, image_id: str) -> list[str]:
        """Every key one image may have: the original, each rendition, the refusal marker, and the original
        the compressor refused and moved to quarantine."""
        return keys.every_key(privacy, image_id)

    async def delete_keys(self, *, public: bool, keys: list[str]) -> None:
        """Delete `keys` from one bucket, 1000 a request (S3's limit); missing keys are no error."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            result = await self._call(
                "delete",
                self.client.delete_objects,
                Bucket=self.bucket(public),
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if result.get("Errors"):
                log.error("S3 delete left objects behind", extra={"errors": result["Errors"][:10]})
                raise Unavailable("Some files could not be deleted; try again")

    async def delete_all(self, *, privacy: str, image_id: str, public: bool) -> None:
        """Delete the original, every rendition and the refusal marker of one image."""
        await self.delete_keys(public=public, keys=self.keys_of(privacy=privacy, image_id=image_id))

    async def get_object(self, *, key: str, public: bool) -> dict[str, Any] | None:
        """The object's response (streaming body), or None when it does not exist (the local gateway)."""
        try:
            return dict(await self._call("GET", self.client.get_object, Bucket=self.bucket(public), Key=key))
        except ClientError:
            return None
