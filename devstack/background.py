"""Start and stop the local stack (`python -m devstack up`) in the background, as a child process.

The one helper for everything that needs a whole local stack for a while: `python -m loadtests run` (when
no --host is given and nothing answers on the local port), `make rehearse`, the load-test and browser
tests. Its output goes to a log file (never a pipe nobody reads); SIGTERM stops it cleanly (devstack
stops its services in order), and `python -m devstack down` with the same LOCAL_DIR is the fallback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
READY_PATH = "/api/v1/health/ready"


def spawn_up(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m devstack up` in the background, as a user runs `make up`: in its own session (a Ctrl-C
    meant for its caller must not hit it before the caller stops it in order), its output appended to
    `log_path`."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "devstack", "up"],
            cwd=PROJECT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class LocalStackError(RuntimeError):
    """The local stack did not come up; the message holds the end of its log."""


def is_ready(base_url: str, timeout: float = 2.0) -> bool:
    """True when the API at `base_url` answers its readiness check with 200."""
    url = base_url.rstrip("/") + READY_PATH
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only, checked
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class LocalStack:
    """`python -m devstack up` with its own LOCAL_DIR and ports, logging to `log_path`."""

    local_dir: Path | None
    port: int
    log_path: Path
    s3_port: int | None = None
    pg_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PORT"] = str(self.port)
        if self.local_dir is not None:
            env["LOCAL_DIR"] = str(self.local_dir)
        if self.s3_port is not None:
            env["S3_PORT"] = str(self.s3_port)
        if self.pg_port is not None:
            env["LOCAL_PG_PORT"] = str(self.pg_port)
        return env

    def start(self, timeout: float = 240.0) -> None:
        """Start the stack and wait until its API is ready; raise LocalStackError with the log otherwise."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = spawn_up(self.env(), self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalStackError(
                    f"the local stack exited with code {self.process.returncode}; "
                    f"end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            if is_ready(self.base_url):
                return
            time.sleep(0.2)
        self.stop()
        raise LocalStackError(
            f"the local stack was not ready within {timeout:.0f} s; end of {self.log_path}:\n{_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 90.0) -> None:
        """SIGTERM and wait; if it hangs, `devstack down` (same LOCAL_DIR) stops what it left behind."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=10)
                with self.log_path.open("ab") as log:
                    subprocess.run(
                        [sys.executable, "-m", "devstack", "down"],
                        cwd=PROJECT,
                        env=self.env(),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        timeout=120,
                        check=False,
                    )
        self.process = None
