"""Registering and logging in: the rules, independent of HTTP."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict, Unauthorized
from app.crud import images, users
from app.models import Token, User, UserCreate
from app.services.storage import ImageStorage

DUPLICATE = "That username or email is already registered; log in, or choose another"
BAD_LOGIN = "Incorrect username/email or password"


async def register(session: AsyncSession, data: UserCreate) -> User:
    """Create the account; Conflict when the username or email is taken, even under a concurrent race."""
    if await users.exists(session, username=data.username, email=data.email):
        raise Conflict(DUPLICATE)
    hashed = await security.hash_password(data.password)
    try:
        return await users.create(session, username=data.username, email=data.email, hashed_password=hashed)
    except users.DuplicateUser:
        raise Conflict(DUPLICATE) from None


async def login(session: AsyncSession, *, login: str, password: str, settings: Settings) -> Token:
    """A bearer token for valid credentials of an active user; Unauthorized otherwise (same message)."""
    user = await users.find_by_login(session, login)
    hashed, active, user_id = (user.hashed_password, user.is_active, user.id) if user else (None, False, None)
    # No transaction stays open while argon2 runs (it is slow on purpose): give the connection back.
    await session.rollback()
    ok = await security.verify_password(hashed, password)
    if not ok or not active or user_id is None:
        raise Unauthorized(BAD_LOGIN)
    return Token(access_token=security.create_access_token(user_id, settings))


async def delete_account(session: AsyncSession, storage: ImageStorage, user: User) -> None:
    """Delete every object of every image of the user, then the user (its rows go with it).

    Objects go first: if S3 fails, the account and its rows stay, and the call can be repeated.
    """
    user_id = user.id
    owned = await images.owned_by(session, user_id)
    await session.rollback()  # no transaction stays open during the S3 calls (this expires `user`)
    for public in (True, False):
        keys = [
            key
            for image_id, is_public in owned
            if is_public == public
            for key in storage.keys_of(privacy="public" if public else "private", image_id=str(image_id))
        ]
        await storage.delete_keys(public=public, keys=keys)
    await users.delete(session, user_id)
