"""`make up`: the whole app on one laptop, wired as docs/design.md describes, stopped by Ctrl-C or `make down`.

Services, in start order: PostgreSQL (embedded, unless DATABASE_URL / POSTGRES_HOST point elsewhere),
the S3 + SQS server (moto, unless AWS_ENDPOINT_URL points elsewhere), the migrations (once), the API with
the media gateway and the web client on one origin, the event worker and the compressor dispatcher.
Every process we start writes its log to `.local/logs/<name>.log` (`make logs` follows them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import keys
from devstack.postgres import (
    DEFAULT_DB,
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    LocalPostgres,
    PostgresError,
    port_in_use,
)
from devstack.s3server import Layout, queue_url

PROJECT = Path(__file__).resolve().parent.parent
MARKER = "YOCTOGRAM_LOCAL_DIR"
"""Set in the environment of every process the stack starts, to its LOCAL_DIR: `make down` finds them by
it even when the record of what ran is lost (a `make up` killed outright, a deleted .local/run)."""


class StackError(RuntimeError):
    """A problem the user can fix; the message says how."""


def checkout_commit(folder: Path = PROJECT) -> str:
    """`git rev-parse HEAD` of the checkout the stack runs from (what the API reports as its build's
    commit), or `unknown` where there is no git or no repository (e.g. an unpacked source zip)."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and commit else "unknown"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number; unset it or give a number.") from None


@dataclass
class StackSettings:
    """Where things live and listen; every field can be overridden from the environment."""

    local_dir: Path = field(default_factory=lambda: Path(os.environ.get("LOCAL_DIR", PROJECT / ".local")))
    port: int = field(default_factory=lambda: _env_int("PORT", 8000))
    s3_port: int = field(default_factory=lambda: _env_int("S3_PORT", 8001))
    pg_port: int = field(default_factory=lambda: _env_int("LOCAL_PG_PORT", 54329))
    database_url: str | None = field(default_factory=lambda: os.environ.get("DATABASE_URL") or None)
    external_postgres: bool = field(default_factory=lambda: bool(os.environ.get("POSTGRES_HOST")))
    aws_endpoint_url: str | None = field(default_factory=lambda: os.environ.get("AWS_ENDPOINT_URL") or None)
    layout: Layout = field(
        default_factory=lambda: Layout(
            public_bucket=os.environ.get("PUBLIC_IMAGES_BUCKET", Layout.public_bucket),
            private_bucket=os.environ.get("PRIVATE_IMAGES_BUCKET", Layout.private_bucket),
        )
    )

    @property
    def run_dir(self) -> Path:
        return self.local_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "up.pid"

    @property
    def children_file(self) -> Path:
        return self.run_dir / "children.json"

    @property
    def site_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def marker(self) -> str:
        return str(self.local_dir.resolve())


def postgres_env(settings: StackSettings) -> dict[str, str]:
    """How the app reaches the database of a stack with these settings."""
    if settings.database_url:
        return {"DATABASE_URL": settings.database_url}
    if settings.external_postgres:
        return {}  # POSTGRES_HOST and the rest come from the environment
    return {  # the embedded server, made with LocalPostgres's defaults
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(settings.pg_port),
        "POSTGRES_USER": DEFAULT_USER,
        "POSTGRES_PASSWORD": DEFAULT_PASSWORD,
        "POSTGRES_DB": DEFAULT_DB,
    }


def s3_env(settings: StackSettings) -> dict[str, str]:
    """How the app reaches S3 and the event queue of a stack with these settings."""
    buckets = {
        "PUBLIC_IMAGES_BUCKET": settings.layout.public_bucket,
        "PRIVATE_IMAGES_BUCKET": settings.layout.private_bucket,
    }
    if settings.aws_endpoint_url:
        return {**buckets, "AWS_ENDPOINT_URL": settings.aws_endpoint_url}
    endpoint = f"http://127.0.0.1:{settings.s3_port}"
    return {
        **buckets,
        "AWS_ENDPOINT_URL": endpoint,
        "EVENT_QUEUE_URL": queue_url(endpoint, settings.layout.event_queue),
    }


def app_environment(settings: StackSettings) -> dict[str, str]:
    """The environment the API and the worker of a running stack with these settings have: what one more
    of its processes needs (the smoke test starts a second API that trusts another media key)."""
    stack = Stack(settings)
    return stack.build_app_env(postgres_env(settings), s3_env(settings))


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    description: str


class Stack:
    """Starts the services in order and stops every one of them, whatever happens."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.postgres: LocalPostgres | None = None
        self.app_env: dict[str, str] = {}
        self.s3_server: Child | None = None
        self.owns_record = False  # only a run that started its services may forget them

    # --- helpers -----------------------------------------------------------------------------
    def _record_children(self) -> None:
        pids = {c.name: c.process.pid for c in self.children}
        self.settings.children_file.write_text(json.dumps(pids))

    def spawn(self, name: str, args: list[str], description: str, env: dict[str, str] | None = None) -> Child:
        log_path = self.settings.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name} ---\n".encode())
        log_file.flush()
        process = subprocess.Popen(
            args,
            cwd=PROJECT,
            env={**(env or self.app_env), MARKER: self.settings.marker},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, and we stop it in order
        )
        log_file.close()
        child = Child(name, process, log_path, description)
        self.children.append(child)
        self._record_children()
        return child

    def _fail_with_log(self, child: Child, what: str) -> None:
        tail = child.log_path.read_text(errors="replace").splitlines()[-15:]
        raise StackError(f"{what}. Last lines of {child.log_path}:\n    " + "\n    ".join(tail))

    # --- services ----------------------------------------------------------------------------
    def check_ports(self) -> None:
        s = self.settings
        wanted = [("the app (PORT)", s.port)]
        if not s.aws_endpoint_url:
            wanted.append(("the S3 server (S3_PORT)", s.s3_port))
        if not (s.database_url or s.external_postgres):
            wanted.append(("PostgreSQL (LOCAL_PG_PORT)", s.pg_port))
        for what, port in wanted:
            if port_in_use(port):
                hint = "Is `make up` already running? Stop it with `make down`, or "
                var = what[what.index("(") + 1 : -1]
                raise StackError(
                    f"Port {port} for {what} is already in use. {hint}choose another port, "
                    f"e.g. `{var}={port + 10} make up`."
                )

    def start_postgres(self) -> dict[str, str]:
        s = self.settings
        if s.database_url:
            say("PostgreSQL: using DATABASE_URL (not starting the embedded server)")
            return postgres_env(s)
        if s.external_postgres:
            say(
                f"PostgreSQL: using POSTGRES_HOST={os.environ['POSTGRES_HOST']} (not starting the embedded server)"
            )
            return postgres_env(s)
        pg = LocalPostgres(root=s.local_dir / "postgres", port=s.pg_port)
        first = not pg.initialized
        say(f"PostgreSQL: {'creating' if first else 'starting'} the embedded server on 127.0.0.1:{s.pg_port}")
        try:
            pg.start()
        except PostgresError as error:
            raise StackError(str(error)) from None
        self.postgres = pg
        return postgres_env(s)

    def start_s3(self) -> dict[str, str]:
        s = self.settings
        if s.aws_endpoint_url:
            say(f"S3: using AWS_ENDPOINT_URL={s.aws_endpoint_url} (not starting the local S3 server)")
            return s3_env(s)
        say(f"S3 + SQS: starting the local server on 127.0.0.1:{s.s3_port} (objects kept in .local/s3)")
        child = self.spawn(
            "s3",
            [
                sys.executable,
                "-u",
                "-m",
                "devstack.s3server",
                "--port",
                str(s.s3_port),
                "--state-dir",
                str(s.local_dir / "s3"),
                "--public-bucket",
                s.layout.public_bucket,
                "--private-bucket",
                s.layout.private_bucket,
                "--allowed-origin",
                s.site_url,
            ],
            f"S3 + SQS (moto) at http://127.0.0.1:{s.s3_port}",
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.s3_server = child
        return s3_env(s)

    def wait_for_s3(self) -> None:
        """Until the S3 server started by `start_s3` serves (it restores the kept objects first)."""
        if self.s3_server is not None:
            self._wait_for_line(self.s3_server, "READY", timeout=60)

    def _wait_for_line(self, child: Child, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                self._fail_with_log(child, f"{child.name} exited with code {child.process.returncode}")
            if marker in child.log_path.read_text(errors="replace").split("starting " + child.name)[-1]:
                return
            time.sleep(0.1)
        self._fail_with_log(child, f"{child.name} was not ready within {timeout:.0f}s")

    def build_app_env(self, db_env: dict[str, str], s3_env: dict[str, str]) -> dict[str, str]:
        s = self.settings
        secrets_dir = s.local_dir / "keys"
        private_pem, public_pem = keys.ensure_signing_key(secrets_dir)
        env = {
            **os.environ,
            "APP_ENV": "local",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(PROJECT / "backend"), str(PROJECT / "compressor")]),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-west-2"),
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            "SECRET_KEY": os.environ.get("SECRET_KEY") or keys.ensure_secret_key(secrets_dir),
            "MEDIA_BASE_URL": s.site_url,
            "MEDIA_SIGNING_KEY_ID": keys.LOCAL_KEY_ID,
            "MEDIA_SIGNING_PRIVATE_KEY": private_pem,
            # What the local media gateway trusts (CloudFront's key group in AWS): the key pair's public file.
            "MEDIA_SIGNING_PUBLIC_KEY": public_pem,
            "FORWARD_FACING_NAME": f"127.0.0.1:{s.port}",
            "FRONTEND_DIST": str(PROJECT / "frontend" / "dist"),
            "PORT": str(s.port),
            # The build the API reports (/api/v1/health); a BUILD_COMMIT of the caller's wins.
            "BUILD_COMMIT": os.environ.get("BUILD_COMMIT") or checkout_commit(),
            **db_env,
            **s3_env,
        }
        return env

    def migrate(self) -> None:
        say("Migrations: alembic upgrade head")
        child = self.spawn("migrate", [sys.executable, "-m", "app.migrate"], "migrations")
        code = child.process.wait(timeout=300)
        self.children.remove(child)
        if code != 0:
            self._fail_with_log(child, "the migrations failed")

    def start_api(self) -> None:
        s = self.settings
        say(f"API: starting on {s.site_url}")
        child = self.spawn(
            "api",
            [sys.executable, "-m", "app.serve", "--host", "127.0.0.1", "--port", str(s.port)],
            f"API, media gateway and web client at {s.site_url}",
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                self._fail_with_log(child, f"the API exited with code {child.process.returncode}")
            ready_url = f"{s.site_url}/api/v1/health/ready"
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(ready_url, timeout=2) as response,  # noqa: S310 - loopback
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        self._fail_with_log(child, "the API did not become healthy within 60s")

    def start_workers(self) -> None:
        """The event worker and the compressor dispatcher (docs/design.md, "How the service learns")."""
        if not self.app_env.get("EVENT_QUEUE_URL"):
            say("Event worker: no local queue (AWS_ENDPOINT_URL is external); not started")
            return
        self.spawn(
            "worker",
            [sys.executable, "-m", "devstack.dispatcher"],
            "event worker + compressor dispatcher (local queue)",
            # A 1 s long poll: a stop (Ctrl-C, `make down`) waits for the receive in flight, no longer.
            env={**self.app_env, "EVENT_WAIT_SECONDS": "1"},
        )

    # --- lifecycle ---------------------------------------------------------------------------
    def up(self) -> None:
        s = self.settings
        for folder in (s.local_dir, s.run_dir, s.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._refuse_if_running()
        self.check_ports()
        s.pid_file.write_text(str(os.getpid()))
        self.owns_record = True
        # The S3 server starts (and restores what it keeps) while PostgreSQL starts and migrates; the
        # API starts once both answer.
        s3_env = self.start_s3()
        db_env = self.start_postgres()
        self.app_env = self.build_app_env(db_env, s3_env)
        self.migrate()
        self.wait_for_s3()
        self.start_api()
        self.start_workers()
        self._banner()

    def _refuse_if_running(self) -> None:
        pid = _read_pid(self.settings.pid_file)
        if pid and _alive(pid) and pid != os.getpid():
            raise StackError(
                f"`make up` is already running (pid {pid}). Open {self.settings.site_url}, "
                "or stop it with `make down`."
            )
        left = leftovers(self.settings)
        if left:
            raise StackError(
                "The last `make up` was stopped without stopping its services (killed?); still running: "
                + ", ".join(left)
                + ". Stop them with `make down`, then run `make up` again."
            )

    def _banner(self) -> None:
        s = self.settings
        print(flush=True)
        print(f"Yoctogram is up: {s.site_url}/", flush=True)
        print("Running:", flush=True)
        if self.postgres:
            print(f"  - PostgreSQL         127.0.0.1:{s.pg_port} (data in {s.local_dir / 'postgres'})")
        for child in self.children:
            print(f"  - {child.name:<18} {child.description} (log: {child.log_path})")
        print("Ctrl-C (or `make down` elsewhere) stops everything; `make logs` follows the logs.", flush=True)

    def watch(self) -> None:
        """Block until a signal arrives or a service dies (then say which, and stop the rest); a PostgreSQL
        that died is started again (the API answers 503 meanwhile, and recovers by itself)."""
        while True:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    self._fail_with_log(child, f"{child.name} stopped unexpectedly (exit code {code})")
            if self.postgres is not None and self.postgres.postmaster_pid() is None:
                self._restart_postgres(self.postgres)
            time.sleep(0.5)

    def _restart_postgres(self, pg: LocalPostgres, timeout: float = 60.0) -> None:
        say(f"PostgreSQL stopped unexpectedly; restarting it (its log: {pg.log_file})")
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Its old processes must be gone first: they hold its shared memory and maybe its port.
                pg.start(timeout=max(5.0, deadline - time.monotonic()))
            except PostgresError as error:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"PostgreSQL stopped and could not be started again: {error}\n"
                        "Everything is stopped; run `make up` again (`make down` first if it says a port is taken)."
                    ) from None
                time.sleep(1)
                continue
            say("PostgreSQL is back; the API reconnects by itself")
            return

    def down(self) -> None:
        """Stop children (newest first), then PostgreSQL; never raises."""
        for child in reversed(self.children):
            _stop_group(child.process.pid, child.process)
        self.children.clear()
        if self.postgres:
            try:
                self.postgres.stop()
            except PostgresError as error:
                print(f"warning: {error}", file=sys.stderr)
        if not self.owns_record:  # a refused start: what ran before is still recorded, for `make down`
            return
        self.settings.children_file.unlink(missing_ok=True)
        if _read_pid(self.settings.pid_file) == os.getpid():  # never remove another `make up`'s pid file
            self.settings.pid_file.unlink(missing_ok=True)


def _stop_group(pid: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None and not _group_alive(pid):
            return
        if process is None and not _group_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        process.wait()


def _group_alive(pgid: int) -> bool:
    """True while a process of the group runs (zombies do not count: a killed `make up` leaves its
    children's to an init that may never reap them)."""
    import psutil

    for process in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, OSError):
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == pgid:
                return True
    return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie does not)."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM (from `make down`) into the same clean stop as Ctrl-C."""

    def raise_interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_up() -> int:
    stack = Stack(StackSettings())
    with _signals_raise():
        try:
            stack.up()
            stack.watch()
        except KeyboardInterrupt:
            print("\n==> Stopping...", flush=True)
            return_code = 0
        except StackError as error:
            print(f"\nERROR: {error}", file=sys.stderr, flush=True)
            return_code = 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
            stack.down()
    print("==> Stopped.", flush=True)
    return return_code


def _cluster_home(settings: StackSettings) -> Path | None:
    root = settings.local_dir / "postgres"
    return root.resolve() if root.exists() else None


def stack_processes(settings: StackSettings) -> list[Any]:
    """Every process of this checkout's stack (this LOCAL_DIR) still running, found without the record:
    those started with the stack's marker in their environment, PostgreSQL's (their working directory is
    its data folder), and a `python -m devstack up` of this LOCAL_DIR. Never this process or its parents."""
    import psutil

    marker = settings.marker
    home = _cluster_home(settings)
    ours = {os.getpid(), *(parent.pid for parent in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd", "environ", "status"]):
        info = process.info
        if info["pid"] in ours or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        env = info["environ"] or {}
        cwd = Path(info["cwd"]) if info["cwd"] else None
        cmdline = info["cmdline"] or []
        if env.get(MARKER) == marker:
            found.append(process)
        elif home is not None and cwd is not None and (cwd == home or home in cwd.parents):
            found.append(process)  # PostgreSQL: the postmaster and its backends run in the data folder
        elif cmdline[1:4] == ["-m", "devstack", "up"]:
            local_dir = Path(env.get("LOCAL_DIR") or PROJECT / ".local")
            if not local_dir.is_absolute() and cwd is not None:
                local_dir = cwd / local_dir
            if str(local_dir.resolve()) == marker:
                found.append(process)
    return found


def _describe(process: Any) -> str:
    try:
        command = " ".join(process.cmdline())[:80]
    except Exception:  # gone meanwhile, or not ours to read
        command = "?"
    return f"{command} (pid {process.pid})"


def leftovers(settings: StackSettings) -> list[str]:
    """What still runs of an earlier `make up` of this LOCAL_DIR: its record's children, and whatever
    `stack_processes` finds."""
    try:
        recorded = json.loads(settings.children_file.read_text())
    except (OSError, json.JSONDecodeError):
        recorded = {}
    found = [f"{name} (pid {pid})" for name, pid in recorded.items() if _group_alive(pid)]
    found += [
        _describe(process) for process in stack_processes(settings) if process.pid not in recorded.values()
    ]
    return found


def _stop_processes(processes: list[Any], timeout: float = 10.0) -> list[Any]:
    """SIGTERM, then SIGKILL what is still running after `timeout`; returns those that survived both."""
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _gone, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    _gone, alive = psutil.wait_procs(alive, timeout=5)
    return list(alive)


def run_down() -> int:
    """Stop every process of the stack, whatever the last run left: `make up` itself, its recorded
    children, anything else `stack_processes` finds, and PostgreSQL."""
    settings = StackSettings()
    pid = _read_pid(settings.pid_file)
    if pid and _alive(pid):
        say(f"Stopping `make up` (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            print(f"`make up` (pid {pid}) did not stop within 60s; killing it.", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
    # Leftovers of a `make up` that was killed outright: its recorded children, ...
    try:
        children = json.loads(settings.children_file.read_text())
    except (OSError, json.JSONDecodeError):
        children = {}
    for name, child_pid in children.items():
        if _group_alive(child_pid):
            say(f"Stopping leftover {name} (pid {child_pid})")
            _stop_group(child_pid)
    # ... whatever else of this LOCAL_DIR runs (the record may be lost), PostgreSQL last.
    home = _cluster_home(settings)
    services = [p for p in stack_processes(settings) if home is None or not _runs_in(p, home)]
    for process in services:
        say(f"Stopping leftover {_describe(process)}")
    _stop_processes(services)
    if home is not None:
        pg = LocalPostgres(root=settings.local_dir / "postgres", port=settings.pg_port)
        if pg.running():
            say("Stopping leftover PostgreSQL")
            try:
                pg.stop()
            except PostgresError as error:
                print(f"warning: {error}", file=sys.stderr)
    left = _stop_processes(stack_processes(settings))
    settings.children_file.unlink(missing_ok=True)
    settings.pid_file.unlink(missing_ok=True)
    if left:
        print(
            "ERROR: still running after SIGKILL: "
            + ", ".join(_describe(p) for p in left)
            + ". Stop them by hand (`kill -9 <pid>`, as their owner or root).",
            file=sys.stderr,
        )
        return 1
    say("Nothing of the local stack is running.")
    return 0


def _runs_in(process: Any, folder: Path) -> bool:
    try:
        cwd = Path(process.cwd())
    except Exception:  # gone meanwhile, or not ours to read
        return False
    return cwd == folder or folder in cwd.parents


def run_reset() -> int:
    settings = StackSettings()
    run_down()
    pg_root = settings.local_dir / "postgres"
    if pg_root.is_symlink() or pg_root.exists():
        LocalPostgres(root=pg_root, port=settings.pg_port).destroy()
    import shutil

    shutil.rmtree(settings.local_dir, ignore_errors=True)
    say(f"Removed {settings.local_dir}: the next `make up` starts from nothing.")
    return 0
