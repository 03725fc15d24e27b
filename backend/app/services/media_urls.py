"""The one URL builder for image bytes (docs/design.md, "URLs that reach the bytes").

`MEDIA_BASE_URL` + key. Public keys give stable, cacheable URLs. Private keys give CloudFront signed URLs
(canned policy, RSA-SHA1 as CloudFront requires) that expire at the end of the *next* whole window, so an
image keeps the same URL for a whole window and browsers cache it. Signatures are cached per
(resource, expiry): a feed page re-signs nothing it signed before in the same window.

`verify_signed_url` is the other half, used by the local media gateway: it accepts exactly what
CloudFront would accept for a canned-policy URL.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.models import ImageState

# CloudFront's URL-safe base64: '+' -> '-', '=' -> '_', '/' -> '~'.
_TO_CF = str.maketrans({"+": "-", "=": "_", "/": "~"})
_FROM_CF = str.maketrans({"-": "+", "_": "=", "~": "/"})


class ImageLike(Protocol):
    @property
    def public(self) -> bool: ...

    @property
    def state(self) -> str: ...

    @property
    def original_key(self) -> str: ...

    @property
    def rendition_key(self) -> str: ...


def canned_policy(resource: str, expires: int) -> bytes:
    """The canned policy CloudFront reconstructs from a signed URL (no whitespace, fixed key order)."""
    return json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(
            "MEDIA_SIGNING_PRIVATE_KEY must be an RSA private key (CloudFront key groups use RSA)"
        )
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("MEDIA_SIGNING_PUBLIC_KEY must be an RSA public key (CloudFront key groups use RSA)")
    return key


class MediaUrlBuilder:
    """Builds download URLs; one instance per process (made in the app's lifespan)."""

    def __init__(
        self,
        *,
        base_url: str,
        key_id: str,
        private_key_pem: str,
        window_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key_id = key_id
        self.window_seconds = window_seconds
        self.clock = clock
        self._private_key = load_private_key(private_key_pem)
        self.public_key = self._private_key.public_key()
        self._sign = lru_cache(maxsize=65536)(self._sign_uncached)

    def expiry(self, now: float | None = None) -> int:
        """End of the next whole window: valid for at least one window, the same all window long."""
        now = self.clock() if now is None else now
        return (int(now) // self.window_seconds + 2) * self.window_seconds

    def _sign_uncached(self, resource: str, expires: int) -> str:
        policy = canned_policy(resource, expires)
        sha1 = hashes.SHA1()  # noqa: S303 - CloudFront signed URLs are RSA-SHA1, by its specification
        signature = self._private_key.sign(policy, padding.PKCS1v15(), sha1)
        return base64.b64encode(signature).decode().translate(_TO_CF)

    def public_url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def signed_url(self, key: str, now: float | None = None) -> str:
        resource = self.public_url(key)
        expires = self.expiry(now)
        query = urlencode(
            {"Expires": expires, "Signature": self._sign(resource, expires), "Key-Pair-Id": self.key_id}
        )
        return f"{resource}?{query}"

    def url_for_key(self, key: str, *, public: bool, now: float | None = None) -> str:
        return self.public_url(key) if public else self.signed_url(key, now)

    def download_url(self, image: ImageLike, now: float | None = None) -> str:
        """The rendition's URL when the image is `ready`, else the original's."""
        key = image.rendition_key if image.state == ImageState.READY else image.original_key
        return self.url_for_key(key, public=image.public, now=now)


class SignatureError(Exception):
    """Why a signed URL is refused (CloudFront answers 403 for each of these)."""


def verify_signed_url(
    *,
    resource: str,
    expires: str | None,
    signature: str | None,
    key_pair_id: str | None,
    public_key: rsa.RSAPublicKey,
    expected_key_id: str,
    now: float | None = None,
) -> None:
    """Accept a canned-policy signed URL exactly as CloudFront does, or raise SignatureError."""
    if not (expires and signature and key_pair_id):
        raise SignatureError("missing Expires, Signature or Key-Pair-Id")
    if key_pair_id != expected_key_id:
        raise SignatureError("unknown Key-Pair-Id")
    try:
        expires_at = int(expires)
        raw = base64.b64decode(signature.translate(_FROM_CF), validate=True)
    except ValueError:
        raise SignatureError("malformed Expires or Signature") from None
    if (time.time() if now is None else now) >= expires_at:
        raise SignatureError("expired")
    try:
        sha1 = hashes.SHA1()  # noqa: S303 - as CloudFront verifies
        public_key.verify(raw, canned_policy(resource, expires_at), padding.PKCS1v15(), sha1)
    except InvalidSignature:
        raise SignatureError("signature does not match") from None
