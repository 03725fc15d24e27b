"""Test users: a pool from a file (`LOADTEST_USERS`), or fresh users registered for this run.

Fresh users carry the run id in their name (`lt-<run id>-<persona letter><n>`), so every account a run
made can be traced to it, and a random password that only the run's ledger knows.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

USERNAME_MAX = 32
EMAIL_DOMAIN = "loadtest.example.com"  # RFC 2606: reserved, so no mail can ever reach anyone


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    from_pool: bool = False

    @property
    def email(self) -> str:
        return f"{self.username.lower()}@{EMAIL_DOMAIN}"


class PoolError(ValueError):
    """The users file is unreadable or malformed; the message names the line."""


def read_pool(path: Path) -> list[Credentials]:
    """Parse a users file: one `username:password` per line; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PoolError(f"cannot read the users file {path}: {error.strerror}") from None
    users: list[Credentials] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, password = line.partition(":")
        if not sep or not username or not password:
            raise PoolError(f"{path}:{number}: expected `username:password`")
        users.append(Credentials(username.strip(), password, from_pool=True))
    if not users:
        raise PoolError(f"the users file {path} holds no users")
    return users


class AccountSource:
    """Hands each simulated user its credentials: the next pool user, or a new unique account.

    Thread/greenlet-safe. Names include the pid of the process that makes them (read at each call:
    Locust's `--processes` forks after this object exists), so worker processes never collide.
    """

    def __init__(self, run_id: str, pool: list[Credentials] | None = None) -> None:
        self.run_id = run_id
        self.pool = pool
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next(self, persona: str) -> Credentials:
        with self._lock:
            n = next(self._counter)
        if self.pool:
            return self.pool[(n - 1) % len(self.pool)]
        return Credentials(new_username(self.run_id, persona, os.getpid(), n), secrets.token_urlsafe(18))


def new_username(run_id: str, persona: str, pid: int, n: int) -> str:
    """`lt-<run id>-<persona letter><pid base36><n>`: unique per run, process and user, at most 32 chars."""
    suffix = f"{persona[:1].lower()}{_base36(pid)}x{n}"
    name = f"lt-{run_id}-{suffix}"
    if len(name) > USERNAME_MAX:
        raise ValueError(f"username {name!r} is longer than {USERNAME_MAX}; use a shorter run id")
    return name


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out
