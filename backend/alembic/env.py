"""Alembic environment: async (asyncpg), URL from the app's settings, metadata from the app's models."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import SQLModel

import app.models  # noqa: F401 - registers the tables on SQLModel.metadata
from app.core.config import get_settings
from app.core.db import connection_options

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else get_settings().database_url.render_as_string(hide_password=False)


def _engine() -> AsyncEngine:
    """A URL given by the caller (tests), else the app's settings, password from its secret if it has one.

    No statement timeout (a migration may rewrite a large table), but a lock timeout: an ALTER that waits
    for a lock queues every later query on that table behind it, so it gives up instead (the deploy fails
    and is retried) rather than stall the site.
    """
    settings = get_settings()
    options = connection_options(
        settings,
        application_name="yoctogram-migrate",
        statement_timeout_ms=None,
        lock_timeout_ms=settings.MIGRATION_LOCK_TIMEOUT_MS,
    )
    if config.attributes.get("database_url"):
        options = {"connect_args": options.get("connect_args", {})}  # the URL carries the password
    return create_async_engine(_url(), **options)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = _engine()
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
