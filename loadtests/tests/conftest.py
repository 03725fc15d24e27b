"""A real local stack for the load-test smoke runs: `python -m devstack up` on free ports in a tmp folder.

It starts once per session, exactly as a developer starts it (same module, environment variables for
LOCAL_DIR and the ports), logs to a file, and is stopped with SIGTERM at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.background import LocalStack
from devstack.postgres import free_port


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The whole app on loopback (PostgreSQL, S3 + SQS, API, event worker, compressor)."""
    root = Path(tempfile.mkdtemp(prefix="yoctogram-loadtests-"))
    root.chmod(0o755)  # when root, PostgreSQL runs as another system user that must reach into it
    local_dir = root / "local"
    local_dir.mkdir()
    local_dir.chmod(0o755)
    stack = LocalStack(
        local_dir=local_dir,
        port=free_port(),
        s3_port=free_port(),
        pg_port=free_port(),
        log_path=root / "stack.log",
    )
    stack.start(timeout=240)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
