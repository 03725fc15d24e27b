"""Registering and logging in: the rules, independent of HTTP."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict, Unauthorized
from app.crud import users
from app.models import Token, User, UserCreate

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
