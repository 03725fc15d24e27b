"""A real PostgreSQL server for the local stack and the tests, started by the project itself.

The binaries come from the pip-installed `pgserver` package (PostgreSQL 16) or, when it is missing,
from the system's `initdb`/`pg_ctl`. PostgreSQL refuses to run as root, so when we are root the server
runs as a dedicated system user. The server listens on loopback TCP only: no unix socket, so the
~107-character socket path limit never applies, whatever the checkout's path.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "yoctogram-pg"
DEFAULT_USER = "yoctogram"
DEFAULT_PASSWORD = "yoctogram"  # noqa: S105 - a local, loopback-only development database
DEFAULT_DB = "yoctogram"


class PostgresError(RuntimeError):
    """Raised with a message that tells the user what to do next."""


def find_bin_dir() -> Path:
    """Return the folder holding `initdb`, `pg_ctl` and `postgres`."""
    try:
        with (
            warnings.catch_warnings()
        ):  # pgserver's import warns about XDG_RUNTIME_DIR; we use no runtime dir
            warnings.simplefilter("ignore")
            import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (bundled / "pg_ctl").exists():
            return bundled
    except ImportError:
        pass
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(os.path.realpath(pg_ctl)).parent
    raise PostgresError(
        "No PostgreSQL binaries found. Run `make up` / `make test` (they install `pgserver` into .venv), "
        "or set DATABASE_URL to use another PostgreSQL server."
    )


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None when we are not root (then it is us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise PostgresError(
                f"PostgreSQL cannot run as root and creating the system user {SERVICE_USER!r} failed: "
                f"{result.stderr.strip()}. Create it yourself (useradd --system {SERVICE_USER}) "
                "or run as a normal user."
            ) from None
        return pwd.getpwnam(SERVICE_USER)


def _demote(account: pwd.struct_passwd | None) -> Callable[[], None] | None:
    if account is None:
        return None

    def drop_privileges() -> None:
        os.setgid(account.pw_gid)
        os.setgroups([])
        os.setuid(account.pw_uid)

    return drop_privileges


def _reachable_by(account: pwd.struct_passwd | None, path: Path) -> bool:
    """True when the server's account can pass through `path` (an existing directory)."""
    if account is None:
        return True
    probe = subprocess.run(
        ["/bin/sh", "-c", 'test -x "$1"', "sh", str(path)],
        preexec_fn=_demote(account),
        check=False,
    )
    return probe.returncode == 0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already accepts or holds `host:port`."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class LocalPostgres:
    """One PostgreSQL cluster in `root` (created on first start, kept afterwards)."""

    root: Path
    port: int
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    database: str = DEFAULT_DB
    durable: bool = True
    """fsync, synchronous_commit and full_page_writes on: a commit that was acknowledged survives a crash
    of the server or of the machine. Only a benchmark that says so turns them off (bench/apistack.py)."""

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self.bin_dir = find_bin_dir()
        self.account = _service_account()

    # --- paths -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._cluster_home() / "data"

    @property
    def log_file(self) -> Path:
        return self._cluster_home() / "postgres.log"

    def _cluster_home(self) -> Path:
        """Where the cluster lives: `root` itself, or a reachable stand-in that `root` links to.

        When root runs us from a folder the service account cannot enter (e.g. under /root), the
        cluster lives in /var/tmp/yoctogram-pg/<hash> and `root` is a symlink to it.
        """
        if self.root.is_symlink():
            stand_in = self.root.resolve()
            if not stand_in.exists():  # e.g. /var/tmp was cleaned: start a fresh cluster there
                stand_in.mkdir(parents=True)
                self._give_to_account(stand_in)
            return stand_in
        if self.root.exists():
            return self.root
        self.root.parent.mkdir(parents=True, exist_ok=True)
        if _reachable_by(self.account, self.root.parent):
            self.root.mkdir()
            self._give_to_account(self.root)
            return self.root
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        stand_in = Path("/var/tmp/yoctogram-pg") / digest
        stand_in.mkdir(parents=True, exist_ok=True)
        Path("/var/tmp/yoctogram-pg").chmod(0o755)
        self._give_to_account(stand_in)
        self.root.symlink_to(stand_in, target_is_directory=True)
        return stand_in

    def _give_to_account(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)
            path.chmod(0o700)

    def url(self, *, driver: str = "postgresql+asyncpg", database: str | None = None) -> str:
        """A SQLAlchemy URL for this server."""
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database or self.database}"

    # --- lifecycle ---------------------------------------------------------------------------
    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            preexec_fn=_demote(self.account),
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise PostgresError(
                f"`{tool} {' '.join(args)}` failed ({result.returncode}):\n"
                f"{result.stdout.strip()}\n{result.stderr.strip()}\n"
                f"See the server log at {self.log_file}."
            )
        return result

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster (user, password, loopback-only settings) if it does not exist."""
        if self.initialized:
            return
        home = self._cluster_home()
        pwfile = home / "initdb.pw"
        pwfile.write_text(self.password + "\n")
        self._give_to_account(pwfile)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# Yoctogram local stack: loopback TCP only, no unix socket (path-length limits).\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
            )

    def running(self) -> bool:
        if not self.initialized:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self, *, timeout: float = 60.0) -> None:
        """Initialise if needed, start on `self.port`, and create the database."""
        self.init()
        if self.running():
            raise PostgresError(
                f"A PostgreSQL server already runs on the data in {self.data_dir}. "
                "Is another `make up` running? Stop it with `make down`."
            )
        if port_in_use(self.port):
            raise PostgresError(
                f"Port {self.port} (PostgreSQL) is already in use. Stop what uses it, "
                "or choose another port with POSTGRES_PORT=<port>."
            )
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "-o",
            f"-p {self.port} {self.durability_options()}",
        )
        self._wait_accepting(timeout)
        self.ensure_database(self.database)

    def durability_options(self) -> str:
        """Given on the command line, so they win over any postgresql.conf (clusters made before kept
        `fsync = off` there)."""
        value = "on" if self.durable else "off"
        return " ".join(f"-c {name}={value}" for name in ("fsync", "synchronous_commit", "full_page_writes"))

    def postmaster_pid(self) -> int | None:
        """The server's pid from its pid file, when that process still exists (None otherwise)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        return None if state in ("Z", "X") else pid

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self._run(
                "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, check=False
            )
            if result.returncode == 0:
                return
            time.sleep(0.1)
        raise PostgresError(
            f"PostgreSQL did not accept connections within {timeout:.0f}s; see {self.log_file}"
        )

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run one SQL command as the superuser and return its unaligned output."""
        env_pw = f"PGPASSWORD={self.password}"
        result = subprocess.run(
            [
                "/usr/bin/env",
                env_pw,
                str(self.bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atqc",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise PostgresError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def ensure_database(self, name: str, *, template: str | None = None) -> None:
        """Create database `name` unless it exists."""
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")  # noqa: S608 - our own names
        if exists != "1":
            suffix = f' TEMPLATE "{template}"' if template else ""
            self.psql(f'CREATE DATABASE "{name}"{suffix}')

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server if it runs (fast: roll back open transactions, then shut down)."""
        if self.running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60")

    def destroy(self) -> None:
        """Stop and delete the cluster (and its stand-in folder, if any)."""
        self.stop(mode="immediate")
        home = self.root.resolve() if self.root.exists() else None
        if self.root.is_symlink():
            self.root.unlink()
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
