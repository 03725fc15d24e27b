"""Queries on users."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import AccessToken
from app.models import TokenRevocation, User


class DuplicateUser(Exception):
    """The username or the email is taken (case-insensitively)."""


async def get(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_for_token(session: AsyncSession, token: AccessToken) -> User | None:
    """The active member behind `token` if the token was not revoked since: one statement, which reads
    the member's row and looks the token up among the logouts (app/services/sessions.py)."""
    revoked = sa.exists().where(TokenRevocation.token_digest == token.digest)  # type: ignore[arg-type]
    row = (
        await session.execute(sa.select(User, revoked).where(User.id == token.user_id))  # type: ignore[arg-type]
    ).first()
    if row is None:
        return None
    user, is_revoked = row
    if is_revoked or not user.is_active or token.generation < user.token_generation:
        return None
    return user


async def token_is_valid(connection: Any, token: AccessToken) -> bool:
    """`get_for_token` on a driver (asyncpg) connection, without loading the row: for the feeds when the
    revocation version cannot be read (app/api/routes/feed.py)."""
    return bool(
        await connection.fetchval(
            "SELECT is_active AND token_generation <= $2 AND NOT EXISTS "
            "(SELECT 1 FROM token_revocations WHERE token_digest = $3) FROM users WHERE id = $1",
            token.user_id,
            token.generation,
            token.digest,
        )
    )


async def find_by_login(session: AsyncSession, login: str) -> User | None:
    """The user whose username or email matches `login`, ignoring case."""
    needle = login.strip().lower()
    column = sa.func.lower(User.email) if "@" in needle else sa.func.lower(User.username)
    result = await session.execute(sa.select(User).where(column == needle))
    return result.scalar_one_or_none()


async def exists(session: AsyncSession, *, username: str, email: str) -> bool:
    query = sa.select(sa.literal(1)).where(
        sa.or_(sa.func.lower(User.username) == username.lower(), sa.func.lower(User.email) == email.lower())
    )
    return (await session.execute(query.limit(1))).first() is not None


async def create(session: AsyncSession, *, username: str, email: str, hashed_password: str) -> User:
    """Insert (flushed, not committed); DuplicateUser when a concurrent or earlier insert took the name or
    email (the session is rolled back then)."""
    user = User(username=username, email=email, hashed_password=hashed_password)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise DuplicateUser from None
    return user


async def delete(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user; the images table's foreign key cascades to its rows."""
    await session.execute(sa.delete(User).where(User.id == user_id))  # type: ignore[arg-type]


async def is_active(connection: Any, user_id: uuid.UUID) -> bool:
    """Whether the member exists and is active, on a driver (asyncpg) connection: one indexed read."""
    return bool(await connection.fetchval("SELECT is_active FROM users WHERE id = $1", user_id))
