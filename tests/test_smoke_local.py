"""The pipeline's smoke test against the real local stack: it passes on a whole site, and a media signing
key that the site does not trust (every private image 403) fails it, as it would fail the pipeline."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.background import PROJECT, LocalStack, is_ready
from devstack.postgres import free_port
from devstack.stack import StackSettings, app_environment
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
def untrusted_key_site(local_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second site (API, media gateway and web client) on the session's stack, its database, S3 and
    worker, whose API signs with the stack's key while its media gateway (CloudFront's part) trusts
    another: what a wrong `active_media_signing_key` or secret does in AWS."""
    assert local_stack.local_dir is not None and local_stack.s3_port and local_stack.pg_port
    settings = StackSettings(
        local_dir=local_stack.local_dir,
        port=local_stack.port,
        s3_port=local_stack.s3_port,
        pg_port=local_stack.pg_port,
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = app_environment(settings) | {
        "PORT": str(port),
        "MEDIA_BASE_URL": site,
        "FORWARD_FACING_NAME": f"127.0.0.1:{port}",
        "MEDIA_SIGNING_PUBLIC_KEY": other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
    }
    log = tmp_path_factory.mktemp("untrusted-site") / "api.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "app.serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not is_ready(site):
            assert api.poll() is None and time.monotonic() < deadline, Path(log).read_text()[-3000:]
            time.sleep(0.2)
        yield site
    finally:
        api.terminate()
        api.wait(timeout=30)


def test_smoke_fails_when_the_site_does_not_trust_the_signing_key(
    untrusted_key_site: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(untrusted_key_site, capsys)
    assert code == 1, out
    assert "FAIL  private media" in out and "media-signing-key.md" in out
    assert "ok    rendition" in out  # everything public worked: only the key is wrong
