"""Passwords (argon2id, hashed off the event loop) and access tokens (PyJWT)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.core.config import Settings

# argon2id at OWASP's recommended floor (19 MiB, 2 passes, 1 lane). The library's defaults (64 MiB,
# 3 passes, 4 lanes) cost ~280 ms of CPU per login here (bench/results): a handful of logins would starve
# a one-vCPU task. Hashes carry their parameters, so older hashes keep verifying.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the user does not exist, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("yoctogram-dummy-password")


class InvalidToken(Exception):
    """The bearer token is malformed, expired or not ours."""


async def hash_password(password: str) -> str:
    """argon2id hash, computed in a worker thread (argon2 releases the GIL)."""
    return await anyio.to_thread.run_sync(_hasher.hash, password)


def _verify(hashed: str | None, password: str) -> bool:
    try:
        return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(hashed: str | None, password: str) -> bool:
    """True when `password` matches `hashed`; with `hashed=None` it spends the same time and says no."""
    return await anyio.to_thread.run_sync(_verify, hashed, password)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token: whose it is, the generation it was issued in, when it expires, and the
    SHA-256 of its text (what a logout stores: app/services/sessions.py)."""

    user_id: uuid.UUID
    generation: int
    expires: int
    digest: bytes


def create_access_token(user_id: uuid.UUID, settings: Settings, *, generation: int = 0) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES),
        "typ": "access",
        # The member's token generation at login: "log out everywhere" bumps it, and every token of an
        # older generation stops working. Tokens from before it existed read as generation 0.
        "gen": generation,
        # Unique per token: two logins in the same second would otherwise get the same token, and a
        # logout of one (which stores the token's digest) would revoke the other.
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.secret_key, algorithm=settings.JWT_ALGORITHM)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _decode(token: str, settings: Settings) -> AccessToken:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[settings.JWT_ALGORITHM],
            options={"require": ["exp", "iat", "sub"]},
        )
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        generation = claims.get("gen", 0)
        if type(generation) is not int or generation < 0:
            raise InvalidToken("bad generation")
        return AccessToken(uuid.UUID(str(claims["sub"])), generation, int(claims["exp"]), token_digest(token))
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise InvalidToken(str(error)) from None


# Tokens already verified: (token, key, algorithm) -> AccessToken. Verifying the HMAC and parsing the
# claims cost ~0.15 ms of CPU, as much as the rest of a cached feed page (bench/README.md); a member sends
# the same token with every request until it expires. The result is a pure function of the key, except
# for time: `exp` is checked again on every use (`iat`/`nbf`, once passed, stay passed). Bounded, LRU.
# Revocation is checked by the callers (app/api/deps.py, app/services/sessions.py), never remembered here.
_VERIFIED: OrderedDict[tuple[str, str, str], AccessToken] = OrderedDict()
_VERIFIED_MAX = 4096


def decode_access_token(token: str, settings: Settings) -> AccessToken:
    """The verified token; raises InvalidToken otherwise (malformed, expired, forged)."""
    key = (token, settings.secret_key, settings.JWT_ALGORITHM)
    known = _VERIFIED.get(key)
    if known is None:
        known = _decode(token, settings)
        _VERIFIED[key] = known
        if len(_VERIFIED) > _VERIFIED_MAX:
            _VERIFIED.popitem(last=False)
    else:
        _VERIFIED.move_to_end(key)
    if known.expires <= int(time.time()):  # as PyJWT decides it (no leeway)
        _VERIFIED.pop(key, None)
        raise InvalidToken("Signature has expired")
    return known
