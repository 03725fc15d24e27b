"""The database password from Secrets Manager, through a rotation, against real PostgreSQL (scram-sha-256
password checks) and the local AWS server's Secrets Manager: each step of a single-user rotation as the
rotation function does it, with no restart of the engine."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import make_engine
from app.core.errors import DATABASE_UNAVAILABLE
from app.main import create_app
from devstack.postgres import LocalPostgres
from devstack.s3server import client

from .conftest import backend_env, migrate_to_head


@dataclass
class Rotating:
    """A login role whose password lives in a secret, and the means to rotate it."""

    role: str
    secret_id: str
    secrets: Any
    postgres: LocalPostgres

    def set_on_database(self, password: str) -> None:
        self.postgres.psql(f"ALTER ROLE \"{self.role}\" PASSWORD '{password}'")

    def put(self, password: str, stage: str) -> str:
        """A new secret version labelled `stage` (AWSPENDING: the rotation's createSecret step)."""
        version = str(uuid.uuid4())
        self.secrets.put_secret_value(
            SecretId=self.secret_id,
            ClientRequestToken=version,
            SecretString=json.dumps({"username": self.role, "password": password}),
            VersionStages=[stage],
        )
        return version

    def finish(self, version: str) -> None:
        """The rotation's finishSecret step: `version` becomes AWSCURRENT."""
        current = next(
            v["VersionId"]
            for v in self.secrets.list_secret_version_ids(SecretId=self.secret_id)["Versions"]
            if "AWSCURRENT" in v.get("VersionStages", [])
        )
        self.secrets.update_secret_version_stage(
            SecretId=self.secret_id,
            VersionStage="AWSCURRENT",
            MoveToVersionId=version,
            RemoveFromVersionId=current,
        )
        self.secrets.update_secret_version_stage(
            SecretId=self.secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=version
        )

    def settings(self, settings: Settings, **overrides: Any) -> Settings:
        return settings.model_copy(
            update={
                "DATABASE_URL": None,
                "POSTGRES_HOST": "127.0.0.1",
                "POSTGRES_PORT": self.postgres.port,
                "POSTGRES_USER": self.role,
                "POSTGRES_DB": self.postgres.database,
                "POSTGRES_PASSWORD_SECRET_ID": self.secret_id,
                **overrides,
            }
        )


@pytest.fixture
def rotating(postgres_server: LocalPostgres, moto_endpoint: str) -> Iterator[Rotating]:
    role = f"rotating_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'first-password' CREATEDB")
    postgres_server.psql(f'GRANT ALL ON DATABASE "{postgres_server.database}" TO "{role}"')
    secrets = client("secretsmanager", moto_endpoint)
    secret_id = f"yoctogram/test/{role}"
    secrets.create_secret(
        Name=secret_id, SecretString=json.dumps({"username": role, "password": "first-password"})
    )
    yield Rotating(role, secret_id, secrets, postgres_server)
    secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    postgres_server.psql(f'REVOKE ALL ON DATABASE "{postgres_server.database}" FROM "{role}"')
    postgres_server.psql(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
async def engine(rotating: Rotating, settings: Settings) -> AsyncIterator[AsyncEngine]:
    # POSTGRES_PASSWORD is wrong on purpose: only the secret's password may be used.
    engine = make_engine(rotating.settings(settings, POSTGRES_PASSWORD=SecretStr("not-the-password")))
    yield engine
    await engine.dispose()


async def _who(engine: AsyncEngine) -> str:
    """A new connection (the pool is emptied first) and who it is logged in as."""
    await engine.dispose()
    async with engine.connect() as connection:
        return str((await connection.execute(sa.text("SELECT current_user"))).scalar_one())


def _reads(engine: AsyncEngine) -> int:
    """How many times the engine read the secret."""
    creator = engine.sync_engine.pool._creator  # the engine's connect function (SQLAlchemy's adaptor)
    password = _find_secret_password(creator)
    return password.reads


def _find_secret_password(creator: Any) -> Any:
    # SQLAlchemy wraps async_creator; the partial of SecretPassword.connect is in the closure.
    from app.core.db_password import SecretPassword

    seen: list[Any] = [creator]
    while seen:
        item = seen.pop()
        owner = getattr(getattr(item, "func", None), "__self__", None)
        if isinstance(owner, SecretPassword):
            return owner
        seen.extend(cell.cell_contents for cell in (getattr(item, "__closure__", None) or ()))
    raise AssertionError("no SecretPassword behind the engine's connections")


async def test_connections_use_the_secrets_password_read_once(
    engine: AsyncEngine, rotating: Rotating
) -> None:
    assert await _who(engine) == rotating.role
    assert await _who(engine) == rotating.role
    assert _reads(engine) == 1  # read for the first connection, then kept


async def test_a_rotation_half_way_and_finished_needs_no_restart(
    engine: AsyncEngine, rotating: Rotating
) -> None:
    assert await _who(engine) == rotating.role
    # createSecret + setSecret: the database has the pending password, AWSCURRENT is still the old one.
    version = rotating.put("second-password", "AWSPENDING")
    rotating.set_on_database("second-password")
    assert await _who(engine) == rotating.role  # refused with the old one, then AWSCURRENT, then AWSPENDING
    reads = _reads(engine)
    assert await _who(engine) == rotating.role  # the pending password is now kept: no more reads
    assert _reads(engine) == reads
    # finishSecret: the new version becomes AWSCURRENT; the kept password still works.
    rotating.finish(version)
    assert await _who(engine) == rotating.role
    assert _reads(engine) == reads


async def test_a_rotation_that_finished_unseen_is_picked_up(engine: AsyncEngine, rotating: Rotating) -> None:
    assert await _who(engine) == rotating.role
    version = rotating.put("third-password", "AWSPENDING")
    rotating.set_on_database("third-password")
    rotating.finish(version)
    assert await _who(engine) == rotating.role


async def test_a_password_the_secret_does_not_hold_is_refused(
    engine: AsyncEngine, rotating: Rotating
) -> None:
    assert await _who(engine) == rotating.role
    rotating.set_on_database("set-by-hand-elsewhere")
    with pytest.raises(sa.exc.DBAPIError, match="password authentication failed"):
        await _who(engine)


def test_migrations_read_the_password_from_the_secret(rotating: Rotating, settings: Settings) -> None:
    """`python -m app.migrate` (the migration task) with only the secret to go by."""
    database = f"migrate_{uuid.uuid4().hex[:8]}"
    rotating.postgres.psql(f'CREATE DATABASE "{database}" OWNER "{rotating.role}"')
    try:
        env = backend_env(
            settings,
            DATABASE_URL="",
            POSTGRES_HOST="127.0.0.1",
            POSTGRES_PORT=str(rotating.postgres.port),
            POSTGRES_USER=rotating.role,
            POSTGRES_PASSWORD="not-the-password",
            POSTGRES_DB=database,
            POSTGRES_PASSWORD_SECRET_ID=rotating.secret_id,
        )
        migrate_to_head(env, rotating.postgres, database)
    finally:
        rotating.postgres.psql(f'DROP DATABASE IF EXISTS "{database}"')


async def test_the_api_answers_503_when_the_database_refuses_the_password(
    rotating: Rotating, settings: Settings
) -> None:
    database = settings.database_url.database  # the API tests' database, migrated
    grants = f'SCHEMA public TO "{rotating.role}"'
    rotating.postgres.psql(f'GRANT CONNECT ON DATABASE "{database}" TO "{rotating.role}"')
    rotating.postgres.psql(
        f"GRANT USAGE ON {grants}; GRANT SELECT ON ALL TABLES IN {grants}", database=database
    )
    try:
        app = create_app(rotating.settings(settings, POSTGRES_DB=database))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                profile = f"/api/v1/users/profile/{uuid.uuid4()}"
                assert (await http.get(profile)).status_code == 404  # connected, with the secret's password
                rotating.set_on_database("set-by-hand-elsewhere")
                await app.state.engine.dispose()  # the next request opens a new connection
                response = await http.get(profile)
    finally:
        revokes = f'SCHEMA public FROM "{rotating.role}"'
        rotating.postgres.psql(
            f"REVOKE ALL ON ALL TABLES IN {revokes}; REVOKE ALL ON {revokes}", database=database
        )
        rotating.postgres.psql(f'REVOKE ALL ON DATABASE "{database}" FROM "{rotating.role}"')
    assert response.status_code == 503
    assert response.json() == {"success": False, "detail": DATABASE_UNAVAILABLE}
