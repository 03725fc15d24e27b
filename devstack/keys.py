"""Local secrets made on first start and kept in `.local/`: the media signing key pair and SECRET_KEY.

In AWS the signing key's private half lives in Secrets Manager and its public half in a CloudFront key
group; locally the stack plays CloudFront's part with the same pair (docs/design.md, "URLs").
"""

from __future__ import annotations

import secrets
from pathlib import Path

LOCAL_KEY_ID = "K-LOCAL-YOCTOGRAM"


def ensure_signing_key(folder: Path) -> tuple[str, str]:
    """Return (private PEM, public PEM), generating a 2048-bit RSA pair into `folder` if missing."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / "media-signing-key.pem"
    public_path = folder / "media-signing-key.pub.pem"
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = private_path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(private_path)
        public_path.unlink(missing_ok=True)
    private_pem = private_path.read_text()
    if not public_path.exists():
        loaded = serialization.load_pem_private_key(private_pem.encode(), password=None)
        public_path.write_bytes(
            loaded.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_pem, public_path.read_text()


def ensure_secret_key(folder: Path) -> str:
    """A stable local SECRET_KEY, so tokens survive a restart of the local stack."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
