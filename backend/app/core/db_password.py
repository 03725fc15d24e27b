"""The database password read from Secrets Manager when a connection opens, so that rotation is safe.

Aurora's credentials rotate in place (single-user rotation, stages/components/database.py): the rotation
function sets a new password on the database (its `setSecret` step, the new password then labelled
`AWSPENDING`) and only afterwards makes it the secret's `AWSCURRENT` (`finishSecret`). Connections that
are open stay open; what matters is the password of each *new* connection. So a process keeps the last
password that worked and, when the database refuses it, reads `AWSCURRENT` again and then `AWSPENDING`,
and connects with whichever the database takes: no restart, no failed request in either window.

Secrets Manager is called only on the first connection and after a refusal; boto3 is blocking, so the
calls run in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg

log = logging.getLogger("app.db")

STAGES = ("AWSCURRENT", "AWSPENDING")


class SecretPassword:
    """Opens asyncpg connections with the password of `secret_id` (a JSON secret with a `password`)."""

    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client  # a boto3 Secrets Manager client
        self._secret_id = secret_id
        self._password: str | None = None
        self.reads = 0  # Secrets Manager calls (the tests check how few)

    async def connect(self, **connect_kwargs: Any) -> asyncpg.Connection:
        """`asyncpg.connect(**connect_kwargs)` with the password the database takes now."""
        if self._password is None:
            self._password = await self._read("AWSCURRENT")
            if self._password is None:
                raise RuntimeError(f"The database secret {self._secret_id} has no AWSCURRENT version")
        tried = self._password
        try:
            return await asyncpg.connect(password=tried, **connect_kwargs)
        except asyncpg.InvalidPasswordError as refused:
            error = refused
        # Rotated since it was read: finished (AWSCURRENT is new) or half-way (the database already has
        # AWSPENDING). Each version is tried once.
        for stage in STAGES:
            password = await self._read(stage)
            if password is None or password == tried:
                continue
            try:
                connection = await asyncpg.connect(password=password, **connect_kwargs)
            except asyncpg.InvalidPasswordError as refused:
                error = refused
                continue
            log.info("database password changed (rotation); new connections use the secret's %s", stage)
            self._password = password
            return connection
        raise error

    async def _read(self, stage: str) -> str | None:
        """The `password` of the secret's version labelled `stage`; None when no version has that label."""
        self.reads += 1
        try:
            reply = await asyncio.to_thread(
                self._client.get_secret_value, SecretId=self._secret_id, VersionStage=stage
            )
        except self._client.exceptions.ResourceNotFoundException:
            return None  # no AWSPENDING: no rotation under way
        password = json.loads(reply["SecretString"]).get("password")
        if not isinstance(password, str):
            raise RuntimeError(f"The database secret {self._secret_id} has no string field 'password'")
        return password


def make_secrets_client(region: str, endpoint_url: str | None) -> Any:
    import boto3  # imported on first use: slow to import, and only processes with a secret need it
    from botocore.config import Config

    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url or None,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10),
    )
