"""Session-wide services for every test tree: a real PostgreSQL and a real S3 + SQS server on loopback,
and (for the tests that need the whole app) a local stack.

Each starts once per test session, when a test first asks for it, on free ports, from nothing, with the
same code `make up` runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.background import LocalStack
from devstack.keys import ensure_signing_key
from devstack.postgres import LocalPostgres, free_port
from devstack.s3server import S3ServerProcess

# Tests never reach AWS: dummy credentials, a fixed region, and no profile from the developer's machine.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_EC2_METADATA_DISABLED": "true",
        # The backend refuses to start without APP_ENV (docs/design.md); every test runs it locally.
        "APP_ENV": "local",
    }
)
for leaked in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "DATABASE_URL"):
    os.environ.pop(leaked, None)


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    """A world-traversable scratch folder (the PostgreSQL service account must reach into it)."""
    path = Path(tempfile.mkdtemp(prefix="yoctogram-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(scratch_dir: Path) -> Iterator[LocalPostgres]:
    """A real PostgreSQL 16 server, started from nothing for this session."""
    server = LocalPostgres(root=scratch_dir / "postgres", port=free_port())
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3ServerProcess]:
    server = S3ServerProcess(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(s3_server: S3ServerProcess) -> str:
    """The endpoint URL of the session's S3 + SQS server (buckets and queue of docs/design.md exist)."""
    return s3_server.endpoint_url


@pytest.fixture(scope="session")
def signing_key(scratch_dir: Path) -> tuple[str, str]:
    """(private PEM, public PEM) of a media signing key made for this session."""
    return ensure_signing_key(scratch_dir / "keys")


def make_local_stack(root: Path) -> LocalStack:
    """A `python -m devstack up` in `root/local` on free ports, logging to `root/stack.log` (not started)."""
    root.chmod(0o755)  # when root, PostgreSQL runs as another system user that must reach into it
    local_dir = root / "local"
    local_dir.mkdir(exist_ok=True)
    local_dir.chmod(0o755)
    return LocalStack(
        local_dir=local_dir,
        port=free_port(),
        s3_port=free_port(),
        pg_port=free_port(),
        log_path=root / "stack.log",
    )


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The whole app on loopback (PostgreSQL, S3 + SQS, API, event worker, compressor), started once per
    session, exactly as a developer starts it (same module, LOCAL_DIR and ports by environment)."""
    root = Path(tempfile.mkdtemp(prefix="yoctogram-stack-"))
    stack = make_local_stack(root)
    stack.start(timeout=240)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
