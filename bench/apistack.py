"""The API under test, started the way the bench needs it: pinned, quiet, on a fixed dataset.

Not `make up`: the bench starts only what the measured requests reach, each process pinned by `taskset`:

* an embedded PostgreSQL (``devstack.postgres.LocalPostgres``, fresh, in a temporary folder), migrated to
  head, with the dataset written straight into its tables by SQL (``INSERT ... SELECT generate_series``);
* the local S3 server (moto), which only `generate` needs (presigning is local; the seeded rows are
  `uploaded` or `ready`, so `media` never HEADs an object);
* the API (``python -m app.serve``) or the ceiling app (``bench/ceiling_app.py``), with LOG_LEVEL=WARNING.

Everything started here is stopped by :meth:`BenchStack.close` (also on Ctrl-C / SIGTERM via the caller's
``with`` block), and the temporary folder is removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
for extra in (ROOT, ROOT / "backend"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from devstack.keys import ensure_signing_key  # noqa: E402
from devstack.postgres import LocalPostgres, free_port  # noqa: E402
from devstack.s3server import S3ServerProcess  # noqa: E402

USERS = 1000  # the dataset's members; posts are spread over them round-robin
PASSWORD = "bench-password-1234"  # noqa: S105 - a throwaway local database
SECRET_KEY = "bench-secret-key-only-for-the-local-benchmark-0123456789"  # noqa: S105
KEY_ID = "K-BENCH"
BASE_TIME = "2025-01-01 00:00:00+00"  # post i is created BASE_TIME + i seconds: new posts are the newest


def _setting_default(name: str) -> int:
    from app.core.config import Settings

    return int(Settings.model_fields[name].default)


FEED_ENTRIES = _setting_default("FEED_CACHE_ENTRIES")
MEMBER_BYTES = _setting_default("FEED_CACHE_MEMBER_BYTES")


def user_id(index: int) -> uuid.UUID:
    """The id the seed SQL gives member `index` (md5('bench-user-<index>') as a uuid)."""
    import hashlib

    return uuid.UUID(hashlib.md5(f"bench-user-{index}".encode()).hexdigest())  # noqa: S324 - ids, not security


def image_id(index: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(f"bench-image-{index}".encode()).hexdigest())  # noqa: S324


def image_is_public(index: int) -> bool:
    return (index // USERS) % 5 != 0  # every member: 4 public posts for each private one


def image_state(index: int) -> str:
    if index % 100 == 17:
        return "pending"
    if index % 100 == 42:
        return "rejected"
    return "uploaded" if index % 10 == 3 else "ready"


# The same rules as the Python functions above, in SQL, so the ids the bench asks for exist.
_SEED_IMAGES = """
INSERT INTO images (id, owner_id, public, state, rejected_reason, created_at, updated_at)
SELECT md5('bench-image-' || i)::uuid,
       md5('bench-user-' || (i % __USERS__))::uuid,
       (i / __USERS__) % 5 <> 0,
       CASE WHEN i % 100 = 17 THEN 'pending' WHEN i % 100 = 42 THEN 'rejected'
            WHEN i % 10 = 3 THEN 'uploaded' ELSE 'ready' END,
       CASE WHEN i % 100 = 42 THEN 'not an image' END,
       timestamptz '__BASE_TIME__' + i * interval '1 second',
       timestamptz '__BASE_TIME__' + i * interval '1 second'
FROM generate_series(__START__, __STOP__ - 1) AS i
""".replace("__USERS__", str(USERS)).replace("__BASE_TIME__", BASE_TIME)


def _pids_of_tree(root_pid: int) -> list[int]:
    """`root_pid` and its direct children (enough for the PostgreSQL postmaster's processes)."""
    pids = [root_pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == root_pid:
            pids.append(int(entry.name))
    return pids


def pin(pid: int, cores: str, *, tree: bool = False) -> None:
    """Pin a running process (and its threads; with `tree`, its children) to `cores`."""
    for each in _pids_of_tree(pid) if tree else [pid]:
        subprocess.run(["taskset", "-a", "-p", "-c", cores, str(each)], capture_output=True, check=False)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the bench process dies, even if it is killed."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return int(response.status)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)  # uvicorn and its workers (own session)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass


class BenchStack:
    """PostgreSQL + S3 server + API/ceiling processes for one bench run (a context manager)."""

    def __init__(
        self, *, api_core: int = 1, db_core: int = 1, aux_core: int = 0, durable_database: bool = False
    ) -> None:
        self.api_core, self.db_core, self.aux_core = api_core, db_core, aux_core
        # Off by default, as every recorded result was measured (bench/README.md): the bench measures the
        # API's CPU, not the disk's flushes. `make up` and the tests run PostgreSQL durable.
        self.durable_database = durable_database
        self.tmp = Path(tempfile.mkdtemp(prefix="yoctogram-bench-"))
        self.tmp.chmod(0o755)  # PostgreSQL runs as another system user when we are root
        self.postgres: LocalPostgres | None = None
        self.s3: S3ServerProcess | None = None
        self.servers: list[ServerProcess] = []
        self.seeded = 0
        self.members = 0
        self.private_pem = ""

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> BenchStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.postgres = LocalPostgres(
            root=self.tmp / "postgres", port=free_port(), durable=self.durable_database
        )
        if not self.durable_database:
            print(
                "    bench PostgreSQL: fsync, synchronous_commit and full_page_writes OFF "
                "(not durable; BenchStack(durable_database=True) turns them on)",
                flush=True,
            )
        print("    bench API: login throttling OFF (the login scenario measures a login's cost)", flush=True)
        self.postgres.start()
        self.pin_postgres()
        self.s3 = S3ServerProcess(free_port())
        self.s3.start()
        if self.s3.process is not None:
            pin(self.s3.process.pid, str(self.aux_core))
        self.private_pem = ensure_signing_key(self.tmp / "keys")[0]
        migrate = subprocess.run(
            [sys.executable, "-m", "app.migrate", "head"],
            cwd=ROOT,
            env=self.env(port=0),
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrations failed:\n{migrate.stdout}\n{migrate.stderr}")
        self.seed_members(USERS)

    def seed_members(self, total: int) -> None:
        """Grow the members to `total` (ids 0..total-1; the posts belong to the first USERS)."""
        if total <= self.members:
            return
        seed_users = (
            "INSERT INTO users (id, username, email, bio, hashed_password, is_active, created_at) "
            "SELECT md5('bench-user-' || u)::uuid, 'bench_' || u, 'bench_' || u || '@example.com', '', "
            "'__HASH__', true, timestamptz '__BASE_TIME__' FROM generate_series(__FIRST__, __LAST__) AS u"
        )
        # The argon2 hash is ours ([A-Za-z0-9$=,+/]): nothing here comes from outside.
        self.sql(
            seed_users.replace("__HASH__", self._password_hash())
            .replace("__BASE_TIME__", BASE_TIME)
            .replace("__FIRST__", str(self.members))
            .replace("__LAST__", str(total - 1))
        )
        self.members = total

    def postmaster_pid(self) -> int:
        assert self.postgres is not None
        return int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])

    def pin_postgres(self) -> None:
        """Pin the postmaster and its processes; backends forked later inherit the postmaster's mask."""
        pin(self.postmaster_pid(), str(self.db_core), tree=True)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()
        if self.s3 is not None:
            self.s3.stop()
            self.s3 = None
        if self.postgres is not None:
            try:
                self.postgres.destroy()
            except Exception as error:  # report, but go on removing the rest
                print(f"WARNING: stopping the bench PostgreSQL failed: {error}", file=sys.stderr)
            self.postgres = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the database --------------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url()

    def sql(self, statement: str) -> str:
        assert self.postgres is not None
        return self.postgres.psql(statement, database=self.postgres.database)

    @staticmethod
    def _password_hash() -> str:
        # Hashed by the app itself (its argon2id parameters): login costs what it costs in production.
        sys.path.insert(0, str(ROOT / "backend"))
        import anyio

        from app.core.security import hash_password

        return anyio.run(hash_password, PASSWORD)

    def seed_posts(self, total: int, *, progress: bool = True) -> float:
        """Grow the images table to `total` rows (ids 0..total-1), then VACUUM ANALYZE; returns seconds."""
        if total <= self.seeded:
            return 0.0
        started = time.perf_counter()
        step = 250_000
        for start in range(self.seeded, total, step):
            stop = min(total, start + step)
            self.sql(_SEED_IMAGES.replace("__START__", str(start)).replace("__STOP__", str(stop)))
            if progress and total - self.seeded > step:
                print(f"    seeded {stop:,} / {total:,} posts", flush=True)
        self.sql("VACUUM ANALYZE images")
        self.sql("VACUUM ANALYZE users")
        self.sql("CHECKPOINT")  # the writes of the seeding are flushed now, not while a point is measured
        self.seeded = total
        return round(time.perf_counter() - started, 1)

    def count_visible(self) -> dict[str, int]:
        out = self.sql(
            "SELECT count(*), count(*) FILTER (WHERE public), count(*) FILTER (WHERE state IN "
            "('uploaded','ready')) FROM images"
        )
        total, public, visible = (int(x) for x in out.split("|"))
        return {"rows": total, "public": public, "visible": visible}

    # --- servers -----------------------------------------------------------------------------
    def env(self, *, port: int) -> dict[str, str]:
        assert self.s3 is not None
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": str(ROOT / "backend"),
            "APP_ENV": "local",
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": SECRET_KEY,
            "MEDIA_SIGNING_KEY_ID": KEY_ID,
            "MEDIA_SIGNING_PRIVATE_KEY": self.private_pem,
            "MEDIA_BASE_URL": f"http://127.0.0.1:{port}",
            "FORWARD_FACING_NAME": f"127.0.0.1:{port}",
            "AWS_ENDPOINT_URL": self.s3.endpoint_url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_EC2_METADATA_DISABLED": "true",
            "LOG_LEVEL": "WARNING",
            # The login scenario measures what a login costs (argon2id verify, two queries), with 16 clients
            # logging in as fast as they can from one address: login throttling is off here, on purpose and
            # said so when the stack starts (BenchStack.start).
            "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": "0",
            "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "0",
        }

    def start_server(
        self,
        kind: str,
        *,
        workers: int = 1,
        extra_env: dict[str, str] | None = None,
        backend_dir: Path | None = None,
    ) -> ServerProcess:
        """Start the API (`kind="api"`) or the ceiling app (`"ceiling"`) pinned to the API core.

        `backend_dir` serves another copy of backend/ (e.g. an older commit's) for before/after runs.
        """
        port = free_port()
        log = self.tmp / f"{kind}-{port}.log"
        if kind == "api":
            argv = [sys.executable, "-m", "app.serve", "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--workers", str(workers)]
            probe = "/api/v1/health"
        elif kind == "ceiling":
            argv = [sys.executable, str(BENCH / "ceiling_app.py"), "--port", str(port)]
            argv += ["--workers", str(workers)]
            probe = "/ceiling"
        else:
            raise ValueError(kind)
        env = {**self.env(port=port), **(extra_env or {})}
        if backend_dir is not None:
            env["PYTHONPATH"] = str(backend_dir)
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["taskset", "-c", str(self.api_core), *argv],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # no threads run here; see _die_with_parent
            )
        server = ServerProcess(process, port, log)
        self.servers.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the {kind} server exited:\n{log.read_text()[-3000:]}")
            try:
                if _get(server.base_url + probe) == 200:
                    return server
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the {kind} server did not answer within 60 s:\n{log.read_text()[-3000:]}")

    def stop_server(self, server: ServerProcess) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    # --- callers -----------------------------------------------------------------------------
    @staticmethod
    def tokens(count: int) -> list[str]:
        """Access tokens of members 0..count-1, made with the app's own function and the bench key."""
        from app.core.config import Settings
        from app.core.security import create_access_token

        settings = Settings(APP_ENV="local", SECRET_KEY=SECRET_KEY)
        return [create_access_token(user_id(i), settings) for i in range(count)]

    def public_media_ids(self, count: int) -> list[uuid.UUID]:
        """Ids of `count` visible public posts spread over the seeded range."""
        found: list[uuid.UUID] = []
        stride = max(1, self.seeded // (count * 2))
        for index in range(0, self.seeded, stride):
            if image_is_public(index) and image_state(index) in ("uploaded", "ready"):
                found.append(image_id(index))
            if len(found) == count:
                break
        return found
