"""Dependencies the routes declare: settings, a session, the URL builder, the caller."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.security import InvalidToken, decode_access_token
from app.crud import users
from app.models import User
from app.services.media_urls import MediaUrlBuilder

INVALID_TOKEN = "Invalid or expired token; log in again"  # noqa: S105 - a message, not a secret

_bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login/")


# `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, two thread hops per
# request for an attribute read (bench/README.md, "Changes made from the benchmark").
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


async def get_urls(request: Request) -> MediaUrlBuilder:
    urls: MediaUrlBuilder = request.app.state.urls
    return urls


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
UrlsDep = Annotated[MediaUrlBuilder, Depends(get_urls)]


def viewer_id_from(
    settings: Settings, request: Request, credentials: HTTPAuthorizationCredentials | None
) -> uuid.UUID | None:
    """The id in a valid token, or None when anonymous, without reading the member's row.

    For routes that check the member themselves only when they need to (the cached feeds: a
    deactivated or deleted member changes the feed version, so their cached pages are never served).
    A bad token or a malformed header is 401, never silently anonymous.
    """
    if credentials is None:
        if "authorization" in request.headers:
            raise Unauthorized("Malformed Authorization header; send 'Bearer <token>'")
        return None
    try:
        return decode_access_token(credentials.credentials, settings)
    except InvalidToken:
        raise Unauthorized(INVALID_TOKEN) from None


async def load_viewer(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The member behind a valid token; 401 when they were deleted or deactivated since it was issued."""
    user = await users.get(session, user_id)
    if user is None or not user.is_active:
        raise Unauthorized(INVALID_TOKEN)
    return user


async def optional_user(
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    """The caller, or None when anonymous. A bad token is 401, never silently anonymous."""
    user_id = viewer_id_from(settings, request, credentials)
    return None if user_id is None else await load_viewer(session, user_id)


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized("Not authenticated; log in and send 'Authorization: Bearer <token>'")
    return user


OptionalUser = Annotated[User | None, Depends(optional_user)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CurrentUser = Annotated[User, Depends(current_user)]
