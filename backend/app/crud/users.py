"""Queries on users."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User


class DuplicateUser(Exception):
    """The username or the email is taken (case-insensitively)."""


async def get(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


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
    """Insert and commit; DuplicateUser when a concurrent or earlier insert took the name or email."""
    user = User(username=username, email=email, hashed_password=hashed_password)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise DuplicateUser from None
    return user


async def delete(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user; the images table's foreign key cascades to its rows."""
    await session.execute(sa.delete(User).where(User.id == user_id))  # type: ignore[arg-type]
    await session.commit()


async def is_active(connection: Any, user_id: uuid.UUID) -> bool:
    """Whether the member exists and is active, on a driver (asyncpg) connection: one indexed read."""
    return bool(await connection.fetchval("SELECT is_active FROM users WHERE id = $1", user_id))
