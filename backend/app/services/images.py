"""Uploads, confirmation, media URLs and deletion: the rules of docs/design.md, independent of HTTP."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, Conflict, NotFound, Unprocessable
from app.crud import images
from app.models import Image, ImageState, User
from app.services.media_urls import MediaUrlBuilder
from app.services.storage import DEFAULT_CONTENT_TYPE, ImageStorage, PresignedPost

log = logging.getLogger("app.images")

NOT_FOUND = "No such image"
DEFAULT_REJECTION = (
    "The file could not be processed as an image; upload a JPEG, PNG, GIF, WebP, BMP or AVIF file"
)

# The types `generate` accepts: exactly the formats the compressor renders (compressor/rendition.py
# RENDERABLE_CONTENT_TYPES, a separate image) and the web client offers: tests check they agree.
# No SVG, HTML or anything else a browser would run. The policy pins the one chosen, so the stored
# original carries it.
UPLOAD_CONTENT_TYPES: tuple[str, ...] = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/avif",
)
# Non-standard spellings that existing clients send, mapped to the canonical type.
CONTENT_TYPE_ALIASES: dict[str, str] = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
}
UNSUPPORTED_TYPE = f"content_type must be one of {', '.join(UPLOAD_CONTENT_TYPES)}"


def upload_content_type(content_type: str | None) -> str:
    """The canonical accepted type of `content_type` (default image/jpeg); 422 for any other."""
    wanted = (content_type or "").strip().lower()
    if not wanted:
        return DEFAULT_CONTENT_TYPE
    wanted = CONTENT_TYPE_ALIASES.get(wanted, wanted)
    if wanted not in UPLOAD_CONTENT_TYPES:
        raise Unprocessable(UNSUPPORTED_TYPE)
    return wanted


def parse_privacy(privacy: str) -> bool:
    """True for 'public', False for 'private'; 400 otherwise."""
    if privacy not in ("public", "private"):
        raise BadRequest("Privacy must be 'public' or 'private'")
    return privacy == "public"


async def generate_upload(
    session: AsyncSession, storage: ImageStorage, *, owner: User, privacy: str, content_type: str | None
) -> tuple[Image, PresignedPost]:
    """Make the `pending` row and the presigned POST for its original."""
    public = parse_privacy(privacy)
    content_type = upload_content_type(content_type)
    image = await images.create_pending(session, owner_id=owner.id, public=public)
    await session.commit()
    post = await storage.presigned_post(key=image.original_key, public=public, content_type=content_type)
    return image, post


async def _visible(session: AsyncSession, image_id: uuid.UUID, viewer: User | None) -> Image:
    image = await images.get(session, image_id)
    if image is None or (not image.public and (viewer is None or viewer.id != image.owner_id)):
        raise NotFound(NOT_FOUND)  # another's private image is indistinguishable from none
    return image


async def _owned(session: AsyncSession, image_id: uuid.UUID, owner: User) -> Image:
    image = await images.get(session, image_id)
    if image is None or image.owner_id != owner.id:
        raise NotFound(NOT_FOUND)
    return image


async def _catch_up(session: AsyncSession, storage: ImageStorage, image: Image) -> bool:
    """For a `pending` row, HEAD the original once and move the row to `uploaded` if it is there."""
    if not await storage.exists(key=image.original_key, public=image.public):
        return False
    await images.move(session, image.id, ImageState.UPLOADED)
    await session.commit()
    await session.refresh(image)
    return True


async def confirm(session: AsyncSession, storage: ImageStorage, *, image_id: uuid.UUID, owner: User) -> Image:
    """The client says the upload finished; idempotent; 409 while S3 does not have the original."""
    image = await _owned(session, image_id, owner)
    if image.state == ImageState.PENDING and not await _catch_up(session, storage, image):
        raise Conflict("The file has not been uploaded yet: POST it to the presigned URL first")
    return image


async def media_uri(
    session: AsyncSession,
    storage: ImageStorage,
    urls: MediaUrlBuilder,
    *,
    image_id: uuid.UUID,
    viewer: User | None,
) -> str:
    """The URL of the bytes: the rendition when `ready`, else the original."""
    image = await _visible(session, image_id, viewer)
    if image.state == ImageState.PENDING and not await _catch_up(session, storage, image):
        raise NotFound("The image has not been uploaded yet")
    if image.state == ImageState.REJECTED:
        raise Unprocessable(f"The image was rejected: {image.rejected_reason or DEFAULT_REJECTION}")
    return urls.download_url(image)


async def delete(session: AsyncSession, storage: ImageStorage, *, image_id: uuid.UUID, owner: User) -> None:
    """Delete every object of the image, then its row (a failed S3 delete keeps the row for a retry)."""
    image = await _owned(session, image_id, owner)
    await storage.delete_all(privacy=image.privacy, image_id=str(image.id), public=image.public)
    await images.delete(session, image.id)
    await session.commit()
