"""Uploads straight to S3, confirmation, media URLs and deletion."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field

from app.api.deps import CurrentUser, OptionalUser, SessionDep, UrlsDep
from app.services import images
from app.services.storage import ImageStorage

router = APIRouter(prefix="/images", tags=["images"])


def _storage(request: Request) -> ImageStorage:
    storage: ImageStorage = request.app.state.storage
    return storage


class GenerateRequest(BaseModel):
    """Optional body: the type of the file to upload (defaults to image/jpeg)."""

    content_type: str | None = Field(default=None, max_length=100, examples=["image/png"])


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


@router.post(
    "/upload/{privacy}/generate",
    response_model=GenerateResponse,
    responses={
        400: {"description": "Privacy is not public or private"},
        401: {"description": "Not logged in"},
    },
)
async def generate(
    privacy: str,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    body: Annotated[GenerateRequest | None, Body()] = None,
) -> GenerateResponse:
    image, post = await images.generate_upload(
        session,
        _storage(request),
        owner=user,
        privacy=privacy,
        content_type=body.content_type if body else None,
    )
    return GenerateResponse(url=post.url, fields=post.fields, id=image.id)


@router.post(
    "/upload/{image_id}/confirm",
    response_model=ImageStatus,
    responses={404: {"description": "No such image of yours"}, 409: {"description": "Not uploaded yet"}},
)
async def confirm(
    image_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser
) -> ImageStatus:
    image = await images.confirm(session, _storage(request), image_id=image_id, owner=user)
    return ImageStatus(id=image.id, state=image.state)


@router.get(
    "/media/{image_id}",
    response_model=MediaResponse,
    responses={
        404: {"description": "No such visible image"},
        422: {"description": "Rejected by the compressor"},
    },
)
async def media(
    image_id: uuid.UUID, request: Request, session: SessionDep, urls: UrlsDep, viewer: OptionalUser
) -> MediaResponse:
    uri = await images.media_uri(session, _storage(request), urls, image_id=image_id, viewer=viewer)
    return MediaResponse(uri=uri)


@router.delete(
    "/{image_id}", response_model=Deleted, responses={404: {"description": "No such image of yours"}}
)
async def delete(image_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser) -> Deleted:
    await images.delete(session, _storage(request), image_id=image_id, owner=user)
    return Deleted()
