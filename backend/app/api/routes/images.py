"""Uploads straight to S3, confirmation, media URLs and deletion."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser, OptionalUser, SessionDep, StorageDep, UrlsDep
from app.api.responses import (
    DATABASE_DOWN,
    OPTIONAL_AUTH,
    TOKEN_OPTIONAL,
    TOKEN_REQUIRED,
    UNREADABLE_BODY,
    error,
)
from app.services import images

router = APIRouter(prefix="/images", tags=["images"], responses=DATABASE_DOWN)


class GenerateRequest(BaseModel):
    """Optional body: the type of the file to upload (defaults to image/jpeg)."""

    content_type: str | None = Field(
        default=None,
        max_length=100,
        examples=["image/png"],
        description=(
            f"One of {', '.join(images.UPLOAD_CONTENT_TYPES)} (case-insensitive; "
            f"{', '.join(images.CONTENT_TYPE_ALIASES)} are taken as their standard names). The form "
            "pins it: the file must be POSTed with exactly the `Content-Type` of `fields`."
        ),
    )


class GenerateResponse(BaseModel):
    success: bool = True
    url: str
    fields: dict[str, str]
    id: uuid.UUID


class ImageStatus(BaseModel):
    success: bool = True
    id: uuid.UUID
    state: str


class MediaResponse(BaseModel):
    success: bool = True
    uri: str


class Deleted(BaseModel):
    success: bool = True


_THE_NEW_IMAGE = {
    # OpenAPI links: what a client (and the stateful fuzz phase) does next with the id it got.
    name: {"operationId": operation, "parameters": {"image_id": "$response.body#/id"}, "description": text}
    for name, operation, text in (
        (
            "Confirm",
            "confirm_api_v1_images_upload__image_id__confirm_post",
            "Confirm the upload, once POSTed",
        ),
        ("Media", "media_api_v1_images_media__image_id__get", "Its URL, once uploaded"),
        ("Delete", "delete_api_v1_images__image_id__delete", "Delete it, uploaded or not"),
    )
}


@router.post(
    "/upload/{privacy}/generate",
    response_model=GenerateResponse,
    responses={
        200: {"links": _THE_NEW_IMAGE},
        400: error(
            "The privacy is not `public` or `private`, or the body could not be read (send UTF-8 JSON)"
        ),
        **TOKEN_REQUIRED,
        409: error("The account was deleted while the request ran"),
        413: UNREADABLE_BODY[413],
        422: error(
            "The body is not valid, or its content_type is not one of the accepted image types "
            f"({', '.join(images.UPLOAD_CONTENT_TYPES)})"
        ),
    },
)
async def generate(
    # Documented as a choice; any other value is answered 400, as the published API does (not 422).
    privacy: Annotated[str, Path(json_schema_extra={"enum": ["public", "private"]})],
    session: SessionDep,
    storage: StorageDep,
    user: CurrentUser,
    body: Annotated[GenerateRequest | None, Body()] = None,
) -> GenerateResponse:
    image, post = await images.generate_upload(
        session,
        storage,
        owner=user,
        privacy=privacy,
        content_type=body.content_type if body else None,
    )
    return GenerateResponse(url=post.url, fields=post.fields, id=image.id)


@router.post(
    "/upload/{image_id}/confirm",
    response_model=ImageStatus,
    responses={
        **TOKEN_REQUIRED,
        404: error("No such image of yours"),
        409: error("The file has not been uploaded yet: POST it to the presigned URL first"),
    },
)
async def confirm(
    image_id: uuid.UUID, session: SessionDep, storage: StorageDep, user: CurrentUser
) -> ImageStatus:
    image = await images.confirm(session, storage, image_id=image_id, owner=user)
    return ImageStatus(id=image.id, state=image.state)


@router.get(
    "/media/{image_id}",
    response_model=MediaResponse,
    responses={
        **TOKEN_OPTIONAL,
        404: error("No such image, not one the caller may see, or not uploaded yet"),
        422: error("The image was rejected by the compressor (`detail` says why), or the id is not a UUID"),
    },
    openapi_extra=OPTIONAL_AUTH,
)
async def media(
    image_id: uuid.UUID, session: SessionDep, storage: StorageDep, urls: UrlsDep, viewer: OptionalUser
) -> MediaResponse:
    uri = await images.media_uri(session, storage, urls, image_id=image_id, viewer=viewer)
    return MediaResponse(uri=uri)


@router.delete(
    "/{image_id}", response_model=Deleted, responses={**TOKEN_REQUIRED, 404: error("No such image of yours")}
)
async def delete(image_id: uuid.UUID, session: SessionDep, storage: StorageDep, user: CurrentUser) -> Deleted:
    await images.delete(session, storage, image_id=image_id, owner=user)
    return Deleted()
