"""`make up` as a user runs it: serves, keeps data across restarts, stops cleanly, explains a taken port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devstack.postgres import LocalPostgres, free_port, port_in_use
from devstack.s3server import Layout, client
from devstack.stack import checkout_commit

PROJECT = Path(__file__).resolve().parents[2]


def _as_in_a_terminal() -> None:
    """In the child, before exec: Ctrl-C's signals as a terminal's shell leaves them (default action).

    A command started in the background by a shell without job control (`cmd &` in a script, as some CI
    runners start their jobs) ignores SIGINT and SIGQUIT, and every process it starts inherits that: the
    `make up` below would then never see the Ctrl-C these tests send.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@dataclass
class Up:
    """One `make up` in its own process group, as a terminal would run it."""

    env: dict[str, str]
    local_dir: Path
    process: subprocess.Popen[str] | None = None
    output: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def start(self, timeout: float = 120) -> None:
        self.process = subprocess.Popen(
            ["make", "-s", "up"],
            cwd=PROJECT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=_as_in_a_terminal,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError(f"make up exited early:\n{self.output}")
            self.output += line
            if line.startswith("Ctrl-C"):
                return
        raise AssertionError(f"make up did not come up within {timeout}s:\n{self.output}")

    def ctrl_c(self, timeout: float = 60) -> None:
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.

        make itself dies of the SIGINT (as in a terminal); the stack's own process must finish its
        clean stop, which the output's last line and the processes' absence show.
        """
        assert self.process is not None and self.process.stdout is not None
        children = self._children_if_known()
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            remaining, _ = self.process.communicate(
                timeout=timeout
            )  # EOF: every writer, the stack too, is gone
        except subprocess.TimeoutExpired as expired:
            partial = expired.output.decode(errors="replace") if isinstance(expired.output, bytes) else ""
            report = self._what_is_left({self.process.pid, *children.values()})
            for pgid in {self.process.pid, *children.values()}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
            raise AssertionError(
                f"`make up` did not stop within {timeout:.0f}s of Ctrl-C.\n{self.output}{partial}\n{report}"
            ) from None
        self.output += remaining
        assert self.process.returncode in (0, -signal.SIGINT), self.output
        assert self.output.rstrip().endswith("==> Stopped."), self.output

    def started_pids(self) -> dict[str, int]:
        return json.loads((self.local_dir / "run" / "children.json").read_text())

    def _children_if_known(self) -> dict[str, int]:
        try:
            return self.started_pids()
        except (OSError, ValueError):
            return {}

    def _what_is_left(self, groups: set[int]) -> str:
        """For a stop that hangs: the processes of the stack's groups still alive, and each log's tail."""
        table = subprocess.run(
            ["ps", "-eo", "pid,ppid,pgid,stat,etime,args"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        alive = [
            line
            for line in table[1:]
            if (len(line.split()) > 2 and int(line.split()[2]) in groups) or str(self.local_dir) in line
        ]
        lines = ["Processes of the stack still running:", *(alive or ["(none)"])]
        for log in sorted(self.local_dir.rglob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            lines += [f"--- {log} (last {len(tail)} lines)", *tail]
        return "\n".join(lines)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; only its parent's wait is missing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def up_env(scratch_dir: Path) -> Iterator[tuple[dict[str, str], Path]]:
    local_dir = scratch_dir / f"local-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "LOCAL_DIR": str(local_dir),
        "PORT": str(free_port()),
        "S3_PORT": str(free_port()),
        "LOCAL_PG_PORT": str(free_port()),
    }
    yield env, local_dir
    subprocess.run(["make", "-s", "reset"], cwd=PROJECT, env=env, check=False, capture_output=True)


def test_make_up_serves_keeps_data_across_restarts_and_stops_cleanly(
    up_env: tuple[dict[str, str], Path],
) -> None:
    env, local_dir = up_env
    first = Up(env, local_dir)
    first.start()
    assert f"Yoctogram is up: {first.url}/" in first.output
    for service in ("PostgreSQL", "s3", "api"):
        assert service in first.output
    health = httpx.get(f"{first.url}/api/v1/health").json()
    assert (health["success"], health["status"]) == (True, "ok")
    # The build the API reports: this checkout's commit (`unknown` where there is no git history).
    assert health["build"] == {"commit": checkout_commit(), "image": "local", "image_digest": "local"}
    assert httpx.get(f"{first.url}/config.json").json()["build"] == {"commit": checkout_commit()}

    # A row (through the API) and an object (straight into S3).
    account = {"username": "keeper", "email": "keeper@example.com", "password": "correct horse"}
    assert httpx.post(f"{first.url}/api/v1/auth/register/", json=account).status_code == 201
    s3 = client("s3", f"http://127.0.0.1:{env['S3_PORT']}")
    # Outside originals/ and renditions/: no event, so the worker neither processes nor (as an orphan
    # without a row) deletes it; the object is written to disk before the PUT is answered.
    key = f"kept/{uuid.uuid4()}"
    s3.put_object(Bucket=Layout.public_bucket, Key=key, Body=b"kept bytes")

    pids = first.started_pids()
    first.ctrl_c()
    assert [name for name, pid in pids.items() if _pid_alive(pid)] == []
    assert not LocalPostgres(root=local_dir / "postgres", port=int(env["LOCAL_PG_PORT"])).running()

    second = Up(env, local_dir)
    second.start()
    try:
        login = httpx.post(
            f"{second.url}/api/v1/auth/login/", json={"username": "keeper", "password": "correct horse"}
        )
        assert login.status_code == 200, login.text
        s3 = client("s3", f"http://127.0.0.1:{env['S3_PORT']}")
        assert s3.get_object(Bucket=Layout.public_bucket, Key=key)["Body"].read() == b"kept bytes"
    finally:
        second.ctrl_c()


def test_make_down_stops_a_running_stack(up_env: tuple[dict[str, str], Path]) -> None:
    env, local_dir = up_env
    stack = Up(env, local_dir)
    stack.start()
    pids = stack.started_pids()
    down = subprocess.run(
        ["make", "-s", "down"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=90
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert stack.process is not None
    assert stack.process.wait(timeout=30) == 0
    assert [name for name, pid in pids.items() if _pid_alive(pid)] == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.url}/api/v1/health")


def test_make_up_on_a_taken_port_says_so(up_env: tuple[dict[str, str], Path]) -> None:
    env, _local_dir = up_env
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["PORT"])))
        squatter.listen()
        result = subprocess.run(
            ["make", "-s", "up"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode != 0
    assert f"Port {env['PORT']} for the app (PORT) is already in use" in result.stderr
    assert f"PORT={int(env['PORT']) + 10} make up" in result.stderr


def test_make_up_turns_an_upload_into_a_served_rendition(up_env: tuple[dict[str, str], Path]) -> None:
    """docs/design.md locally: S3 notification -> queue -> dispatcher -> compressor + event worker -> API."""
    import io

    from PIL import Image

    env, local_dir = up_env
    stack = Up(env, local_dir)
    stack.start()
    api = f"{stack.url}/api/v1"
    try:
        account = {"username": "uploader", "email": "uploader@example.com", "password": "uploading-pw"}
        httpx.post(f"{api}/auth/register/", json=account)
        token = httpx.post(f"{api}/auth/login/", json=account).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        photo = io.BytesIO()
        Image.effect_mandelbrot((1600, 1200), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(
            photo, "JPEG", quality=95
        )

        def upload(privacy: str, data: bytes, content_type: str) -> str:
            made = httpx.post(f"{api}/images/upload/{privacy}/generate", headers=headers).json()
            sent = httpx.post(made["url"], data=made["fields"], files={"file": ("f", data, content_type)})
            assert sent.status_code == 204
            return str(made["id"])

        good = upload("private", photo.getvalue(), "image/jpeg")
        bad = upload("public", b"<html>not a picture</html>", "image/jpeg")
        deadline = time.monotonic() + 20
        uri = ""
        while time.monotonic() < deadline and ".webp" not in uri:
            uri = httpx.get(f"{api}/images/media/{good}", headers=headers).json().get("uri", "")
            time.sleep(0.3)
        assert f"/private/renditions/{good}.webp?" in uri
        served = httpx.get(uri)
        assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
        assert len(served.content) <= 0.75 * len(photo.getvalue())
        assert Image.open(io.BytesIO(served.content)).size == (1080, 810)
        rejected = httpx.get(f"{api}/images/media/{bad}")
        while time.monotonic() < deadline and rejected.status_code != 422:
            time.sleep(0.3)
            rejected = httpx.get(f"{api}/images/media/{bad}")
        assert rejected.status_code == 422 and "rejected" in rejected.json()["detail"]

        seeded = subprocess.run(
            ["make", "-s", "seed"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
        )
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        assert "as 'demo' with password" in seeded.stdout
        public = httpx.get(f"{api}/feed/latest").json()["results"]
        assert (
            sum(item["creator_username"] == "demo" for item in public) == 3
        )  # its 2 private posts stay private
    finally:
        stack.ctrl_c()


def test_make_up_after_a_killed_one_refuses_and_make_down_stops_everything(
    up_env: tuple[dict[str, str], Path],
) -> None:
    """`kill -9` of make up's group orphans its services: the next `make up` must keep their record and
    say to run `make down`, which stops them all, even with the record lost."""
    env, local_dir = up_env
    stack = Up(env, local_dir)
    stack.start()
    pids = stack.started_pids()
    assert stack.process is not None
    os.killpg(stack.process.pid, signal.SIGKILL)
    stack.process.wait(timeout=10)
    assert [name for name, pid in pids.items() if not _pid_alive(pid)] == []  # orphaned, still running

    again = subprocess.run(
        ["make", "-s", "up"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode != 0
    assert "Stop them with `make down`" in again.stderr, again.stdout + again.stderr
    assert stack.started_pids() == pids  # the record of the orphans is kept
    assert [name for name, pid in pids.items() if not _pid_alive(pid)] == []

    # Even without the record, `make down` finds every process of this LOCAL_DIR.
    (local_dir / "run" / "children.json").unlink()
    (local_dir / "run" / "up.pid").unlink(missing_ok=True)
    down = subprocess.run(
        ["make", "-s", "down"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert [name for name, pid in pids.items() if _pid_alive(pid)] == []
    assert not LocalPostgres(root=local_dir / "postgres", port=int(env["LOCAL_PG_PORT"])).running()
    for name in ("PORT", "S3_PORT", "LOCAL_PG_PORT"):
        assert not port_in_use(int(env[name])), f"{name} {env[name]} is still taken"


def test_postgres_killed_while_make_up_runs_is_restarted_and_keeps_acknowledged_writes(
    up_env: tuple[dict[str, str], Path],
) -> None:
    env, local_dir = up_env
    stack = Up(env, local_dir)
    stack.start()
    try:
        api = f"{stack.url}/api/v1"
        account = {"username": "durable", "email": "durable@example.com", "password": "acknowledged"}
        assert httpx.post(f"{api}/auth/register/", json=account).status_code == 201
        pg = LocalPostgres(root=local_dir / "postgres", port=int(env["LOCAL_PG_PORT"]))
        killed = pg.postmaster_pid()
        assert killed is not None
        os.kill(killed, signal.SIGKILL)  # right after the acknowledged commit

        statuses = []
        deadline = time.monotonic() + 90
        login = None
        while time.monotonic() < deadline:
            login = httpx.post(f"{api}/auth/login/", json=account, timeout=30)
            statuses.append(login.status_code)
            if login.status_code == 200 and pg.postmaster_pid() not in (None, killed):
                break
            time.sleep(0.2)
        assert login is not None and login.status_code == 200, (statuses, login and login.text)
        assert set(statuses) <= {200, 503}, statuses  # down: a 503 with a reason, never a 500
        assert pg.postmaster_pid() not in (None, killed)
    finally:
        stack.ctrl_c()
    assert "PostgreSQL stopped unexpectedly; restarting it" in stack.output
    assert "PostgreSQL is back" in stack.output
