"""The local stack as a user runs it (`python -m devstack up` / `down`), and the faults the suite applies.

The stack runs in a temporary folder (LOCAL_DIR) on free ports, in its own process group. Its processes are
found as devstack finds them: the record in LOCAL_DIR/run (children.json), PostgreSQL's pid file, and for
what is left afterwards `devstack.stack.stack_processes` (the YOCTOGRAM_LOCAL_DIR marker, PostgreSQL's
working directory, the `devstack up` command line).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

from devstack.background import is_ready, spawn_up
from devstack.chaos.verdict import Fault
from devstack.postgres import LocalPostgres, free_port
from devstack.stack import StackSettings, stack_processes

PROJECT = Path(__file__).resolve().parents[2]
BANNER_END = "Ctrl-C (or `make down`"
"""The last line `devstack up` prints once every service runs (the event worker included)."""
EXTERNAL_SERVICES = ("DATABASE_URL", "POSTGRES_HOST", "AWS_ENDPOINT_URL")
"""Settings that would make `devstack up` use services of the caller's instead of starting its own."""
UP_TIMEOUT_S = 120.0
RECOVERY_TIMEOUT_S = 90.0
HANG_S = 5.0
ORPHANED_S = 2.0
"""How long the services of a killed `devstack up` keep running before the user runs `devstack down`."""


class ChaosError(RuntimeError):
    """The suite could not go on (the stack did not start, a process to kill was not found...)."""


class Stack:
    """One local stack in `root/local`, its `devstack up` output appended to `root/up.log`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.local_dir = root / "local"
        self.log_path = root / "up.log"
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.port, self.s3_port, self.pg_port = sorted(ports)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @classmethod
    def in_new_folder(cls, parent: Path | None = None) -> Stack:
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="yoctogram-chaos-", dir=parent))
        root.chmod(0o755)  # when root, PostgreSQL runs as another system user that must reach into it
        (root / "local").mkdir()
        (root / "local").chmod(0o755)
        return cls(root)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> dict[str, int]:
        return {"PORT": self.port, "S3_PORT": self.s3_port, "LOCAL_PG_PORT": self.pg_port}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in EXTERNAL_SERVICES}
        env.update({name: str(port) for name, port in self.ports.items()})
        env["LOCAL_DIR"] = str(self.local_dir)
        return env

    def settings(self) -> StackSettings:
        return StackSettings(
            local_dir=self.local_dir, port=self.port, s3_port=self.s3_port, pg_port=self.pg_port
        )

    # --- output ------------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def output(self, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_output(self, since: int, phrases: tuple[str, ...], timeout: float = 15.0) -> str:
        """The output since `since` once it holds every phrase (or whatever it holds after `timeout`)."""
        deadline = time.monotonic() + timeout
        said = self.output(since)
        while not all(phrase in said for phrase in phrases) and time.monotonic() < deadline:
            time.sleep(0.1)
            said = self.output(since)
        return said

    def _note(self, line: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"\n### chaos: {line}\n")

    # --- lifecycle ---------------------------------------------------------------------------
    def up(self, timeout: float = UP_TIMEOUT_S) -> None:
        """`devstack up` in its own process group; returns once it printed its banner and is ready."""
        if self.process is not None and self.process.poll() is None:
            raise ChaosError("`devstack up` is already running")
        self.starts += 1
        self._note(f"devstack up (start {self.starts})")
        offset = self.log_size()
        self.process = spawn_up(self.env(), self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChaosError(
                    f"`devstack up` exited with code {self.process.returncode}:\n{self.output(offset)[-3000:]}"
                )
            if BANNER_END in self.output(offset) and is_ready(self.base_url):
                return
            time.sleep(0.2)
        raise ChaosError(f"`devstack up` was not up within {timeout:.0f} s:\n{self.output(offset)[-3000:]}")

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code of `devstack up` once it stopped by itself (None: still running at the timeout)."""
        if self.process is None:
            raise ChaosError("`devstack up` was never started")
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def down(self) -> subprocess.CompletedProcess[str]:
        """`devstack down` with the stack's settings, as a user runs `make down`; its output goes to the log."""
        self._note("devstack down")
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "down"],
            cwd=PROJECT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        with self.log_path.open("a") as log:
            log.write(result.stdout + result.stderr)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        return result

    def discard(self) -> None:
        """Stop whatever still runs and delete the folder (PostgreSQL's stand-in folder too)."""
        self.resume_s3()
        if self.running() or self.leftovers():
            self.down()
        subprocess.run(
            [sys.executable, "-m", "devstack", "reset"],
            cwd=PROJECT,
            env=self.env(),
            capture_output=True,
            timeout=180,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    # --- what runs ---------------------------------------------------------------------------
    def children(self) -> dict[str, int]:
        """The services `devstack up` recorded (name -> pid)."""
        try:
            recorded = json.loads((self.local_dir / "run" / "children.json").read_text())
        except (OSError, ValueError) as error:
            raise ChaosError(f"no record of the stack's services: {error}") from None
        return {str(name): int(pid) for name, pid in recorded.items()}

    def postgres(self) -> LocalPostgres:
        return LocalPostgres(root=self.local_dir / "postgres", port=self.pg_port)

    def leftovers(self) -> list[str]:
        """Every process of this stack still running, found as `devstack down` finds them."""
        found = []
        for process in stack_processes(self.settings()):
            try:
                command = " ".join(process.cmdline())[:100]
            except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone meanwhile
                command = "(exited meanwhile)"
            found.append(f"{command} (pid {process.pid})")
        return found

    def listening(self) -> list[int]:
        """The stack's ports that still accept connections."""
        taken = []
        for port in self.ports.values():
            with socket.socket() as sock:
                sock.settimeout(1.0)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    taken.append(port)
        return taken

    def s3_answers(self) -> bool:
        """The S3 server answers HTTP (an anonymous request: AccessDenied is an answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.s3_port}/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, urllib.error.URLError):
            return False

    def healthy(self) -> bool:
        """Every dependency answers: the API is ready (the database answers), S3 answers, the worker runs."""
        if not self.running() or not is_ready(self.base_url) or not self.s3_answers():
            return False
        with contextlib.suppress(ChaosError):
            return _alive(self.children().get("worker"))
        return False

    def wait_healthy(self, now: Callable[[], float], timeout: float = RECOVERY_TIMEOUT_S) -> float | None:
        """The time (on `now`'s clock) when every dependency answered again; None if not within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return now()
            time.sleep(0.2)
        return None

    def resume_s3(self) -> None:
        """SIGCONT the S3 server (harmless when it runs): never leave it stopped, whatever happened."""
        with contextlib.suppress(ChaosError, ProcessLookupError, PermissionError):
            os.kill(self.children()["s3"], signal.SIGCONT)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# --- the faults ----------------------------------------------------------------------------------
# Each applies its fault to a running stack, waits until every dependency answers again (restarting the
# stack as a user would where the stack stops), and returns what happened.

FaultStep = Callable[[Stack, Callable[[], float]], Fault]


def kill_postgres(stack: Stack, now: Callable[[], float]) -> Fault:
    """kill -9 of the postmaster: `devstack up` starts PostgreSQL again; the API answers 503 meanwhile."""
    offset = stack.log_size()
    postgres = stack.postgres()
    pid = postgres.postmaster_pid()
    if pid is None:
        raise ChaosError("PostgreSQL's postmaster.pid names no running process")
    fault = Fault("kill -9 PostgreSQL", now())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline and postgres.postmaster_pid() in (None, pid):
        time.sleep(0.1)
    fault.recovered = stack.wait_healthy(now)
    # The API answers as soon as PostgreSQL accepts connections; `devstack up` says so a moment later.
    said = stack.wait_output(offset, ("PostgreSQL stopped unexpectedly; restarting it", "PostgreSQL is back"))
    restarted = "PostgreSQL stopped unexpectedly; restarting it" in said and "PostgreSQL is back" in said
    fault.reaction_ok = restarted and stack.running()
    fault.reaction = (
        "`devstack up` restarted PostgreSQL and kept running"
        if fault.reaction_ok
        else f"expected `devstack up` to restart PostgreSQL; it said: {said.strip()[-300:]!r}"
    )
    return fault


def hang_s3(stack: Stack, now: Callable[[], float]) -> Fault:
    """SIGSTOP the S3 server for HANG_S seconds, then SIGCONT: S3 calls time out (503), nothing stops."""
    pid = stack.children()["s3"]
    fault = Fault(f"hang S3 (SIGSTOP {HANG_S:g} s)", now())
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(HANG_S)
    finally:
        os.kill(pid, signal.SIGCONT)
    fault.recovered = stack.wait_healthy(now)
    fault.reaction_ok = stack.running() and stack.children().get("s3") == pid
    fault.reaction = (
        "`devstack up` kept running; S3 answered again after SIGCONT"
        if fault.reaction_ok
        else "`devstack up` or its S3 server did not survive the hang"
    )
    return fault


def _kill_service(name: str) -> FaultStep:
    """kill -9 of one service: `devstack up` says which died and stops the rest; the user runs it again."""

    def step(stack: Stack, now: Callable[[], float]) -> Fault:
        offset = stack.log_size()
        pid = stack.children()[name]
        fault = Fault(f"kill -9 {name}", now())
        os.kill(pid, signal.SIGKILL)
        code = stack.wait_exit(timeout=60)
        said = stack.output(offset)
        left = stack.leftovers() if code is not None else ["`devstack up` itself (still running after 60 s)"]
        message = next((line for line in said.splitlines() if line.startswith("ERROR:")), "")
        fault.reaction_ok = code not in (None, 0) and f"{name} stopped unexpectedly" in message and not left
        if fault.reaction_ok:
            fault.reaction = f"`devstack up` stopped everything, saying {message!r}; started again"
        else:
            fault.reaction = (
                f"expected `devstack up` to stop everything with a clear message; exit code {code}, "
                f"message {message!r}, still running: {left}"
            )
            if left:  # as a user would, after reading the message
                stack.down()
        stack.up()
        fault.recovered = stack.wait_healthy(now)
        return fault

    step.__name__ = f"kill_{name}"
    return step


kill_s3 = _kill_service("s3")
kill_worker = _kill_service("worker")


def kill_up(stack: Stack, now: Callable[[], float]) -> Fault:
    """kill -9 of `devstack up` alone: its services run on, orphaned; `devstack down` stops them all, and
    the user starts the stack again."""
    if stack.process is None:
        raise ChaosError("`devstack up` is not running")
    fault = Fault("kill -9 devstack up", now())
    os.kill(stack.process.pid, signal.SIGKILL)
    stack.process.wait(timeout=30)
    time.sleep(ORPHANED_S)
    orphans = stack.leftovers()
    down = stack.down()
    left = stack.leftovers()
    fault.reaction_ok = bool(orphans) and down.returncode == 0 and not left and not stack.listening()
    if fault.reaction_ok:
        fault.reaction = f"its {len(orphans)} orphaned processes served on; `devstack down` stopped them all"
    else:
        fault.reaction = (
            f"`devstack down` exited {down.returncode} ({(down.stdout + down.stderr).strip()[-300:]!r}); "
            f"orphans before: {len(orphans)}; still running after: {left}; listening: {stack.listening()}"
        )
    stack.up()
    fault.recovered = stack.wait_healthy(now)
    return fault


FAULTS: list[FaultStep] = [kill_postgres, hang_s3, kill_s3, kill_worker, kill_up]
