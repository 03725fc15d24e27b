"""Alembic: upgrade on an empty database, a full round trip, and models that agree with migrations."""

from __future__ import annotations

import asyncio
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from app.migrate import downgrade, upgrade
from devstack.postgres import LocalPostgres


def _fresh_database(postgres_server: LocalPostgres) -> str:
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    postgres_server.ensure_database(name)
    return name


def _tables(postgres_server: LocalPostgres, name: str) -> set[str]:
    listed = postgres_server.psql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database=name
    )
    return set(listed.split()) if listed else set()


def test_upgrade_head_on_an_empty_database_then_round_trip(postgres_server: LocalPostgres) -> None:
    name = _fresh_database(postgres_server)
    url = postgres_server.url(database=name)
    upgrade("head", database_url=url)
    assert _tables(postgres_server, name) == {
        "alembic_version",
        "users",
        "images",
        "feed_version",
        "feed_changes",
        "token_revocations",
        "token_revocation_version",
        "login_throttle",
    }
    downgrade("base", database_url=url)
    assert _tables(postgres_server, name) == {"alembic_version"}
    upgrade("head", database_url=url)
    assert {"users", "images"} <= _tables(postgres_server, name)
    postgres_server.psql(f'DROP DATABASE "{name}"')


def test_models_and_migrations_agree(postgres_server: LocalPostgres) -> None:
    import app.models  # noqa: F401 - registers the tables

    name = _fresh_database(postgres_server)
    upgrade("head", database_url=postgres_server.url(database=name))

    # compare_metadata needs a sync connection: asyncpg through SQLAlchemy's run_sync gives one.
    async def diff() -> list[object]:
        async_engine = create_async_engine(postgres_server.url(database=name))
        async with async_engine.connect() as connection:
            result = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), SQLModel.metadata
                )
            )
        await async_engine.dispose()
        return list(result)

    assert asyncio.run(diff()) == []
    postgres_server.psql(f'DROP DATABASE "{name}"')
