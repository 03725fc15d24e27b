"""Dependencies the routes declare: settings, a session, the URL builder, the image storage, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import INVALID_TOKEN, Unauthorized
from app.core.security import AccessToken, InvalidToken, decode_access_token
from app.crud import users
from app.models import User
from app.services.media_urls import MediaUrlBuilder
from app.services.storage import ImageStorage

NOT_AUTHENTICATED = "Not authenticated; log in and send 'Authorization: Bearer <token>'"

_bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/v1/auth/login/")


# `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, two thread hops per
# request for an attribute read (bench/README.md, "Changes made from the benchmark").
# Named `app_*`: what the app built at start (`app.state`), not `app.core.config.get_settings`, which reads
# the environment.
async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def app_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


async def app_urls(request: Request) -> MediaUrlBuilder:
    urls: MediaUrlBuilder = request.app.state.urls
    return urls


async def app_storage(request: Request) -> ImageStorage:
    storage: ImageStorage = request.app.state.storage
    return storage


SettingsDep = Annotated[Settings, Depends(app_settings)]
SessionDep = Annotated[AsyncSession, Depends(app_session)]
UrlsDep = Annotated[MediaUrlBuilder, Depends(app_urls)]
StorageDep = Annotated[ImageStorage, Depends(app_storage)]


def access_token_from(
    settings: Settings, request: Request, credentials: HTTPAuthorizationCredentials | None
) -> AccessToken | None:
    """The verified token, or None when anonymous, without reading the member's row or the revocations.

    The callers check those (`optional_user` below; the cached feeds through the revocation list,
    app/services/sessions.py). A bad token or a malformed header is 401, never silently anonymous.
    """
    if credentials is None:
        if "authorization" in request.headers:
            raise Unauthorized("Malformed Authorization header; send 'Bearer <token>'")
        return None
    try:
        return decode_access_token(credentials.credentials, settings)
    except InvalidToken:
        raise Unauthorized(INVALID_TOKEN) from None


async def load_viewer(session: AsyncSession, token: AccessToken) -> User:
    """The member behind a valid token; 401 when they were deleted or deactivated since it was issued, or
    the token was revoked (logout, log out everywhere)."""
    user = await users.get_for_token(session, token)
    if user is None:
        raise Unauthorized(INVALID_TOKEN)
    return user


async def optional_user(
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User | None:
    """The caller, or None when anonymous. A bad token is 401, never silently anonymous."""
    token = access_token_from(settings, request, credentials)
    return None if token is None else await load_viewer(session, token)


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    return user


async def bearer_token(
    settings: SettingsDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessToken:
    """The caller's verified token (signature and expiry only: for logging out, which may be repeated)."""
    token = access_token_from(settings, request, credentials)
    if token is None:
        raise Unauthorized(NOT_AUTHENTICATED)
    return token


OptionalUser = Annotated[User | None, Depends(optional_user)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CurrentUser = Annotated[User, Depends(current_user)]
BearerToken = Annotated[AccessToken, Depends(bearer_token)]
