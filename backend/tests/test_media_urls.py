"""The URL builder: public URLs stable, private URLs signed exactly as CloudFront checks them."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from app.services.media_urls import MediaUrlBuilder, SignatureError, canned_policy, verify_signed_url

BASE = "https://cdn.example.com"
WINDOW = 3600


@dataclass
class FakeImage:
    public: bool
    state: str
    id: uuid.UUID

    @property
    def original_key(self) -> str:
        return f"{'public' if self.public else 'private'}/originals/{self.id}"

    @property
    def rendition_key(self) -> str:
        return f"{'public' if self.public else 'private'}/renditions/{self.id}.webp"


@pytest.fixture(scope="module")
def builder(signing_key: tuple[str, str]) -> MediaUrlBuilder:
    return MediaUrlBuilder(
        base_url=BASE + "/", key_id="KID", private_key_pem=signing_key[0], window_seconds=WINDOW
    )


def _parts(url: str) -> tuple[str, dict[str, str]]:
    split = urlsplit(url)
    return f"{split.scheme}://{split.netloc}{split.path}", {k: v[0] for k, v in parse_qs(split.query).items()}


def test_public_urls_are_plain_and_stable(builder: MediaUrlBuilder) -> None:
    image = FakeImage(public=True, state="uploaded", id=uuid.uuid4())
    first = builder.download_url(image, now=1_000_000)
    assert first == f"{BASE}/public/originals/{image.id}"
    assert builder.download_url(image, now=9_999_999) == first


def test_ready_images_point_at_the_rendition(builder: MediaUrlBuilder) -> None:
    image = FakeImage(public=False, state="ready", id=uuid.uuid4())
    resource, _ = _parts(builder.download_url(image, now=1_000_000))
    assert resource == f"{BASE}/private/renditions/{image.id}.webp"


def test_signature_verifies_as_cloudfront_does(
    builder: MediaUrlBuilder, signing_key: tuple[str, str]
) -> None:
    """Rebuild the canned policy from the URL alone and check the RSA-SHA1 signature with the public key."""
    now = 1_700_000_123
    resource, query = _parts(builder.signed_url("private/originals/abc", now=now))
    assert query["Key-Pair-Id"] == "KID"
    expires = int(query["Expires"])
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()
    assert policy == canned_policy(resource, expires)
    signature = base64.b64decode(query["Signature"].replace("-", "+").replace("_", "=").replace("~", "/"))
    public_key = load_pem_public_key(signing_key[1].encode())
    sha1 = hashes.SHA1()  # noqa: S303 - what CloudFront uses
    public_key.verify(signature, policy, padding.PKCS1v15(), sha1)  # type: ignore[union-attr, call-arg, arg-type]
    assert not set(query["Signature"]) & set("+=/")


def test_expiry_is_the_end_of_the_next_whole_window(builder: MediaUrlBuilder) -> None:
    start = 1_700_000_000 // WINDOW * WINDOW
    for offset in (0, 1, WINDOW - 1):
        assert builder.expiry(start + offset) == start + 2 * WINDOW
    # Valid for at least one whole window, never more than two.
    assert WINDOW < builder.expiry(start + WINDOW - 1) - (start + WINDOW - 1) <= 2 * WINDOW


def test_private_url_is_stable_within_a_window_and_changes_across(builder: MediaUrlBuilder) -> None:
    start = 1_700_000_000 // WINDOW * WINDOW
    early = builder.signed_url("private/originals/x", now=start + 5)
    late = builder.signed_url("private/originals/x", now=start + WINDOW - 5)
    next_window = builder.signed_url("private/originals/x", now=start + WINDOW + 5)
    assert early == late
    assert next_window != early


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r, q: (r.replace("/x", "/y"), q),
        lambda r, q: (r, {**q, "Signature": q["Signature"][:-6] + "AAAAAA"}),
        lambda r, q: (r, {**q, "Expires": str(int(q["Expires"]) + 3600)}),
        lambda r, q: (r, {**q, "Key-Pair-Id": "OTHER"}),
        lambda r, q: (r, {k: v for k, v in q.items() if k != "Signature"}),
    ],
    ids=["other-key", "other-signature", "longer-expiry", "other-key-pair", "no-signature"],
)
def test_tampered_urls_are_refused(builder: MediaUrlBuilder, tamper: object) -> None:
    resource, query = _parts(builder.signed_url("private/originals/x", now=1_700_000_000))
    resource, query = tamper(resource, query)  # type: ignore[operator]
    with pytest.raises(SignatureError):
        verify_signed_url(
            resource=resource,
            expires=query.get("Expires"),
            signature=query.get("Signature"),
            key_pair_id=query.get("Key-Pair-Id"),
            public_key=builder.public_key,
            expected_key_id="KID",
            now=1_700_000_000,
        )


def test_expired_urls_are_refused(builder: MediaUrlBuilder) -> None:
    resource, query = _parts(builder.signed_url("private/originals/x", now=1_700_000_000))
    common = {
        "resource": resource,
        "signature": query["Signature"],
        "key_pair_id": "KID",
        "public_key": builder.public_key,
        "expected_key_id": "KID",
    }
    verify_signed_url(expires=query["Expires"], now=int(query["Expires"]) - 1, **common)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="expired"):
        verify_signed_url(expires=query["Expires"], now=int(query["Expires"]), **common)  # type: ignore[arg-type]


def test_only_rsa_keys_are_accepted() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    with pytest.raises(ValueError, match="RSA"):
        MediaUrlBuilder(base_url=BASE, key_id="K", private_key_pem=pem)
