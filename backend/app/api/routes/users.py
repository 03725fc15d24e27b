"""The caller's account and others' profiles."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.api.deps import CurrentUser, OptionalUser, SessionDep, StorageDep
from app.api.responses import DATABASE_DOWN, OPTIONAL_AUTH, TOKEN_OPTIONAL, TOKEN_REQUIRED, error
from app.core.errors import NotFound
from app.crud import users
from app.models import ProfilePublic, Success, UserPublic
from app.services import accounts

router = APIRouter(prefix="/users", tags=["users"], responses=DATABASE_DOWN)


@router.get("/me", response_model=UserPublic, responses=TOKEN_REQUIRED)
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic(id=user.id, username=user.username, email=user.email, bio=user.bio)


@router.get(
    "/profile/{user_id}",
    response_model=ProfilePublic,
    responses={404: error("No such user"), **TOKEN_OPTIONAL},
    openapi_extra=OPTIONAL_AUTH,
)
async def profile(user_id: uuid.UUID, session: SessionDep, _viewer: OptionalUser) -> ProfilePublic:
    user = await users.get(session, user_id)
    if user is None or not user.is_active:
        raise NotFound("No such user")
    return ProfilePublic(username=user.username, bio=user.bio)


@router.delete("/me", response_model=Success, responses=TOKEN_REQUIRED)
async def delete_me(user: CurrentUser, session: SessionDep, storage: StorageDep) -> Success:
    """Delete my account, every post of mine and every file of those posts."""
    await accounts.delete_account(session, storage, user)
    return Success()
