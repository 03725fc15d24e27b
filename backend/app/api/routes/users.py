"""The caller's account and others' profiles."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.api.deps import CurrentUser, OptionalUser, SessionDep
from app.core.errors import NotFound
from app.crud import users
from app.models import ProfilePublic, UserPublic

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserPublic, responses={401: {"description": "Not logged in"}})
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic(id=user.id, username=user.username, email=user.email, bio=user.bio)


@router.get(
    "/profile/{user_id}", response_model=ProfilePublic, responses={404: {"description": "No such user"}}
)
async def profile(user_id: uuid.UUID, session: SessionDep, _viewer: OptionalUser) -> ProfilePublic:
    user = await users.get(session, user_id)
    if user is None or not user.is_active:
        raise NotFound("No such user")
    return ProfilePublic(username=user.username, bio=user.bio)
