"""Login throttling: attempts per account name and per client address, shared by every task.

Each login attempt first takes a slot in two fixed-window counters (`login_throttle`), in one statement:
one for the name it logs in with (lowercased, whether or not such an account exists, so a 429 says
nothing about that) and one for the client's address. Over either limit, the attempt is refused with 429
and `Retry-After` (until the window ends) before any password is checked. A successful login gives its
slot back and clears the account's count: only failures add up. Taking the slot before checking the
password makes concurrent attempts count too: 100 at once get no more through than 100 in a row.

The address is what the edge reports (`CLIENT_ADDRESS_HEADER`: CloudFront-Viewer-Address in AWS), else
the connection's peer; an IPv6 address counts as its /64 (one subscriber's prefix). Keys are SHA-256 of
the kind and the value: the table holds no login name and no address.

Per-account limits let anyone lock an account's logins for one window by failing on purpose; the window
is short (LOGIN_THROTTLE_WINDOW_SECONDS) and a per-address limit alone would let a botnet guess freely.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.core.config import Settings
from app.core.errors import TooManyRequests

TOO_MANY = "Too many login attempts; wait for the time in Retry-After, then try again"

_TAKE = sa.text(
    """
    INSERT INTO login_throttle AS t (key, window_started, attempts)
    SELECT key, now(), 1 FROM unnest(CAST(:keys AS bytea[])) AS key ORDER BY key
    ON CONFLICT (key) DO UPDATE SET
        attempts = CASE WHEN t.window_started <= now() - make_interval(secs => :window) THEN 1
                        ELSE t.attempts + 1 END,
        window_started = CASE WHEN t.window_started <= now() - make_interval(secs => :window) THEN now()
                              ELSE t.window_started END
    RETURNING key, attempts,
        extract(epoch FROM t.window_started + make_interval(secs => :window) - now())
    """
)
_GIVE_BACK = sa.text("UPDATE login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = :address")


def _key(kind: str, value: str) -> bytes:
    return hashlib.sha256(f"{kind}\0{value}".encode()).digest()


def client_address(request: Request, settings: Settings) -> str:
    """The address to count attempts by (module docstring)."""
    raw = None
    if settings.CLIENT_ADDRESS_HEADER:
        header = request.headers.get(settings.CLIENT_ADDRESS_HEADER)
        if header:
            # "198.51.100.10:46532" or "2001:db8::1:46532": the address, a colon, the port.
            raw = header.rsplit(":", 1)[0].strip("[] ") if ":" in header else header.strip()
    if raw is None:
        raw = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class LoginThrottle:
    """The two counters of one login attempt."""

    def __init__(self, settings: Settings, *, login: str, address: str) -> None:
        self._window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
        self._limits: dict[bytes, int] = {}
        self._account = _key("account", login.strip().lower())
        self._address = _key("address", address)
        if settings.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT:
            self._limits[self._account] = settings.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT
        if settings.LOGIN_MAX_ATTEMPTS_PER_ADDRESS:
            self._limits[self._address] = settings.LOGIN_MAX_ATTEMPTS_PER_ADDRESS

    async def take(self, session: AsyncSession) -> None:
        """Count this attempt (committed at once); TooManyRequests when a limit is exceeded."""
        if not self._limits:
            return
        rows = (
            await session.execute(_TAKE, {"keys": sorted(self._limits), "window": float(self._window)})
        ).all()
        await session.commit()
        waits = [float(remaining) for key, attempts, remaining in rows if attempts > self._limits[bytes(key)]]
        if waits:
            raise TooManyRequests(TOO_MANY, retry_after=max(1, math.ceil(max(waits))))

    async def succeeded(self, session: AsyncSession) -> None:
        """The password was right: clear the account's count, give the address its attempt back."""
        if not self._limits:
            return
        await session.execute(sa.text("DELETE FROM login_throttle WHERE key = :key"), {"key": self._account})
        await session.execute(_GIVE_BACK, {"address": self._address})
        await session.commit()


async def prune(session: AsyncSession, settings: Settings) -> int:
    """Delete counters whose window is over (the cleanup runs it); returns how many."""
    result = await session.execute(
        sa.text("DELETE FROM login_throttle WHERE window_started < now() - make_interval(secs => :window)"),
        {"window": float(settings.LOGIN_THROTTLE_WINDOW_SECONDS)},
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
