"""The database engine (one per process, made in the app's lifespan) and sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.core.config import Settings


def make_engine(settings: Settings) -> AsyncEngine:
    """An asyncpg engine whose pool is sized from the settings (README: the connection budget)."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        pool_pre_ping=True,  # a restarted or failed-over database costs one retry, not an error
        pool_recycle=1800,
        connect_args={
            "server_settings": {
                "application_name": "yoctogram",
                "statement_timeout": str(settings.DB_STATEMENT_TIMEOUT_MS),
            },
            "timeout": settings.DB_POOL_TIMEOUT,
        },
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session that is always closed; callers commit explicitly."""
    async with maker() as session:
        yield session
