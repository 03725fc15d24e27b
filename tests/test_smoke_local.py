"""The pipeline's smoke test against the real local stack: it passes on a whole site, and a media signing
key that the site does not trust (every private image 403) fails it, as it would fail the pipeline."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import make_local_stack
from devstack.background import LocalStack
from devstack.keys import ensure_signing_key
from pipeline import smoke

pytestmark = pytest.mark.slow


def run(base_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = smoke.main(["--url", base_url, "--wait", "30", "--rendition-timeout", "60"])
    return code, capsys.readouterr().out


def test_smoke_passes_against_the_local_stack(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(local_stack.base_url, capsys)
    assert code == 0, out
    assert "ok    private media" in out and "403 without the signature" in out


@pytest.fixture(scope="module")
def untrusted_key_stack() -> Iterator[LocalStack]:
    """A local stack whose API signs with one key while its media gateway (CloudFront's part) trusts
    another: what a wrong `active_media_signing_key` or secret does in AWS."""
    root = Path(tempfile.mkdtemp(prefix="yoctogram-badkey-"))
    stack = make_local_stack(root)
    assert stack.local_dir is not None
    keys = stack.local_dir / "keys"
    ensure_signing_key(keys)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    (keys / "media-signing-key.pub.pem").write_bytes(
        other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    stack.start(timeout=240)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_smoke_fails_when_the_site_does_not_trust_the_signing_key(
    untrusted_key_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(untrusted_key_stack.base_url, capsys)
    assert code == 1, out
    assert "FAIL  private media" in out and "media-signing-key.md" in out
    assert "ok    rendition" in out  # everything public worked: only the key is wrong
