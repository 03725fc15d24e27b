"""Registering and logging in: the rules, independent of HTTP."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.config import Settings
from app.core.errors import INVALID_TOKEN, Conflict, Unauthorized
from app.crud import images, users
from app.models import Token, User, UserCreate
from app.services import sessions
from app.services.login_throttle import LoginThrottle
from app.services.storage import ImageStorage

DUPLICATE = "That username or email is already registered; log in, or choose another"
BAD_LOGIN = "Incorrect username/email or password"


async def register(session: AsyncSession, data: UserCreate) -> User:
    """Create the account; Conflict when the username or email is taken, even under a concurrent race."""
    if await users.exists(session, username=data.username, email=data.email):
        raise Conflict(DUPLICATE)
    hashed = await security.hash_password(data.password)
    try:
        user = await users.create(session, username=data.username, email=data.email, hashed_password=hashed)
        await session.commit()
    except users.DuplicateUser:
        raise Conflict(DUPLICATE) from None
    return user


async def login(
    session: AsyncSession, *, login: str, password: str, settings: Settings, address: str
) -> Token:
    """A bearer token for valid credentials of an active user; Unauthorized otherwise (same message);
    TooManyRequests when this name or this address failed too often lately (app/services/login_throttle.py)."""
    throttle = LoginThrottle(settings, login=login, address=address)
    await throttle.take(session)
    user = await users.find_by_login(session, login)
    hashed, active = (user.hashed_password, user.is_active) if user else (None, False)
    user_id, generation = (user.id, user.token_generation) if user else (None, 0)
    # No transaction stays open while argon2 runs (it is slow on purpose): give the connection back.
    await session.rollback()
    ok = await security.verify_password(hashed, password)
    if not ok or not active or user_id is None:
        raise Unauthorized(BAD_LOGIN)
    await throttle.succeeded(session)
    return Token(access_token=security.create_access_token(user_id, settings, generation=generation))


async def logout(session: AsyncSession, token: security.AccessToken) -> None:
    """Revoke this token on every task (repeating it is harmless); Unauthorized if its member is gone."""
    if await users.get(session, token.user_id) is None:
        raise Unauthorized(INVALID_TOKEN)
    await sessions.revoke_token(session, token)


async def logout_everywhere(session: AsyncSession, user: User) -> None:
    """Revoke every token of the member issued so far, this one included."""
    await sessions.revoke_all(session, user.id)


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
    await session.commit()
