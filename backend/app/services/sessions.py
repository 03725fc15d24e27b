"""Token revocation: logout (this token) and "log out everywhere" (every token of the member so far).

Access tokens are JWTs, valid until they expire; revoking one means remembering it until then.

* A **logout** stores the token's SHA-256 (`token_revocations.token_digest`), kept until the token's own
  expiry. A **log out everywhere** bumps `users.token_generation` and stores a row with the new
  generation: every token carries the generation it was issued in (`gen`), and an older one is refused.
* Every revocation bumps `token_revocation_version` in its transaction (the row lock makes revocations
  commit in version order) and stores itself under that number (`seq`). A process that has read version
  N therefore knows, once it loaded the rows up to N, every revocation committed before that read.

How each request is checked, on every task, with nothing to wait for:

* routes that load the member (`/users/me`, uploads, ...) check the token in the same statement that
  reads the member's row: exact, and no extra round trip (`app.crud.users.get_for_token`);
* the feeds, most of the traffic, read no row on a cache hit: they read the revocation version together
  with the feed version (the one statement the feed cache already makes per request, or per batch of
  requests: app/services/feed_cache.py), and check the token against this process's `RevocationList`,
  which loads the new rows (one query) only when that version moved. The version is read by a statement
  that starts after the request arrived, so a request sent after a logout's response is refused: the
  bound is zero, not "a second or two".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.security import AccessToken

MAX_TOKEN_LIFETIME = timedelta(days=30)
"""The longest ACCESS_TOKEN_EXPIRE_MINUTES allows: a "log out everywhere" row is kept that long, so it
outlives every token it revokes whatever the setting was when they were issued."""

_BUMP = sa.text("UPDATE token_revocation_version SET version = version + 1 WHERE id = 1 RETURNING version")
_INSERT = sa.text(
    "INSERT INTO token_revocations (seq, user_id, token_digest, generation, expires_at) "
    "VALUES (:seq, :user_id, :digest, :generation, :expires_at) ON CONFLICT (token_digest) DO NOTHING"
)


async def _record(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    digest: bytes | None,
    generation: int | None,
    expires_at: datetime,
) -> None:
    seq = (await session.execute(_BUMP)).scalar_one()
    await session.execute(
        _INSERT,
        {
            "seq": seq,
            "user_id": user_id,
            "digest": digest,
            "generation": generation,
            "expires_at": expires_at,
        },
    )


async def revoke_token(session: AsyncSession, token: AccessToken) -> None:
    """Revoke this one token (idempotent), and commit."""
    await _record(
        session,
        user_id=token.user_id,
        digest=token.digest,
        generation=None,
        expires_at=datetime.fromtimestamp(token.expires, UTC),
    )
    await session.commit()


async def revoke_all(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Revoke every token of the member issued so far, and commit; returns the new generation."""
    generation = (
        await session.execute(
            sa.text(
                "UPDATE users SET token_generation = token_generation + 1 WHERE id = :id "
                "RETURNING token_generation"
            ),
            {"id": user_id},
        )
    ).scalar_one()
    await _record(
        session,
        user_id=user_id,
        digest=None,
        generation=generation,
        expires_at=datetime.now(UTC) + MAX_TOKEN_LIFETIME,
    )
    await session.commit()
    return int(generation)


async def prune(session: AsyncSession) -> int:
    """Delete revocations whose tokens have expired anyway (the cleanup runs it); returns how many."""
    result = await session.execute(sa.text("DELETE FROM token_revocations WHERE expires_at < now()"))
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


_LOAD = sa.text(
    "SELECT v.version, r.seq, r.user_id, r.token_digest, r.generation, extract(epoch FROM r.expires_at) "
    "FROM token_revocation_version v LEFT JOIN token_revocations r "
    "ON r.seq > :after AND r.expires_at > now() WHERE v.id = 1"
)


class RevocationList:
    """This process's copy of the revocations, as of `version` (module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.version = -1  # nothing loaded yet
        self._digests: dict[bytes, float] = {}  # digest -> expiry (epoch seconds)
        self._generations: dict[uuid.UUID, int] = {}  # member -> lowest generation still valid
        self._loading: asyncio.Task[None] | None = None
        self.loads = 0

    def is_revoked(self, token: AccessToken) -> bool:
        return token.digest in self._digests or token.generation < self._generations.get(token.user_id, 0)

    async def catch_up(self, version: int) -> None:
        """Load the revocations up to at least `version` (a version read after the request arrived).

        Concurrent callers share one load; a load that started before `version` committed may not hold
        it, so this loops until it does. Raises what the database raises.
        """
        while self.version < version:
            loading = self._loading
            if loading is None:
                loading = self._loading = asyncio.get_running_loop().create_task(self._load())
                loading.add_done_callback(self._loaded)
            await asyncio.shield(loading)

    def _loaded(self, task: asyncio.Task[None]) -> None:
        self._loading = None
        if not task.cancelled():
            task.exception()  # retrieved here; the callers awaiting it raise it

    async def _load(self) -> None:
        async with self._engine.connect() as connection:
            await self._apply(connection)

    async def _apply(self, connection: AsyncConnection) -> None:
        rows = (await connection.execute(_LOAD, {"after": self.version})).all()
        now = time.time()
        if self.version < 0 or len(self._digests) > 1024:  # forget what expired, now and then
            self._digests = {digest: expiry for digest, expiry in self._digests.items() if expiry > now}
        for _version, seq, user_id, digest, generation, expires in rows:
            if seq is None:
                continue
            if digest is not None:
                self._digests[bytes(digest)] = float(expires)
            if generation is not None:
                self._generations[user_id] = max(self._generations.get(user_id, 0), int(generation))
        self.version = max(int(rows[0][0]), self.version)
        self.loads += 1
