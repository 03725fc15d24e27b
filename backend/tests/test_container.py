"""The image's commands (no Docker engine here): the Dockerfile's shape, and each command doing its job."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time

import httpx
import psutil

from app.core.config import Settings

from .conftest import BACKEND, ServedApi, backend_env, migrate_to_head

DOCKERFILE = (BACKEND / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)]


def test_dockerfile_uses_a_slim_public_ecr_base_and_a_non_root_user() -> None:
    bases = _instructions("FROM")
    assert bases and all(b.startswith("public.ecr.aws/") and "slim" in b for b in bases), bases
    users = _instructions("USER")
    assert users and users[-1] not in ("root", "0")  # a uid: the runtime can check it is not root
    assert _instructions("CMD") == ['["python", "-m", "app.serve"]']
    assert _instructions("HEALTHCHECK")[-1].endswith('CMD ["python", "-m", "app.healthcheck"]')
    assert "curl" not in DOCKERFILE and "wget" not in DOCKERFILE
    assert "migrate" not in " ".join(_instructions("CMD") + _instructions("ENTRYPOINT")), (
        "migrations never run on start"
    )


def test_dockerfile_copies_what_the_commands_need() -> None:
    copied = " ".join(_instructions("COPY"))
    for needed in ("requirements.txt", "app", "alembic", "alembic.ini"):
        assert needed in copied


def test_serve_starts_the_configured_number_of_workers(served_api: ServedApi) -> None:
    parent = psutil.Process(served_api.process.pid)
    deadline = time.monotonic() + 20
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]
        time.sleep(0.2)
    assert len(workers) == 2
    assert httpx.get(f"{served_api.url}/api/v1/health/ready").status_code == 200


def test_an_idle_connection_outlives_uvicorns_default_keep_alive(served_api: ServedApi) -> None:
    """The load balancer reuses idle connections for up to its idle timeout (60 s): the server must not
    close them first (uvicorn's default is 5 s), or a request races the close and the client gets a 502."""
    # http.client never reconnects by itself: a connection the server closed fails the second request.
    connection = http.client.HTTPConnection("127.0.0.1", served_api.port, timeout=10)
    try:
        for attempt in range(2):
            connection.request("GET", "/api/v1/health")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read(), attempt
            if attempt == 0:
                first_socket = connection.sock
                time.sleep(6.5)  # past uvicorn's 5 s default, well within HTTP_KEEP_ALIVE_SECONDS
        assert connection.sock is first_socket
    finally:
        connection.close()


def test_healthcheck_exit_codes(served_api: ServedApi) -> None:
    env = {"PYTHONPATH": str(BACKEND), "PATH": "/usr/bin:/bin"}
    healthy = subprocess.run(
        [sys.executable, "-m", "app.healthcheck"],
        env={**env, "PORT": str(served_api.port)},
        capture_output=True,
    )
    assert healthy.returncode == 0
    from devstack.postgres import free_port

    unhealthy = subprocess.run(
        [sys.executable, "-m", "app.healthcheck"],
        env={**env, "PORT": str(free_port())},
        capture_output=True,
        text=True,
    )
    assert unhealthy.returncode == 1 and "unhealthy" in unhealthy.stderr


def test_serve_refuses_to_start_without_secret_key_outside_local(settings: Settings) -> None:
    env = backend_env(settings, APP_ENV="aws", SECRET_KEY="")
    result = subprocess.run(
        [sys.executable, "-m", "app.serve", "--port", "1"],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_migrate_command_upgrades_a_database(settings: Settings, postgres_server: object) -> None:
    import uuid

    from devstack.postgres import LocalPostgres

    assert isinstance(postgres_server, LocalPostgres)
    name = f"cmd_{uuid.uuid4().hex[:8]}"
    postgres_server.ensure_database(name)
    env = backend_env(settings, DATABASE_URL=postgres_server.url(database=name))
    printed = migrate_to_head(env, postgres_server, name)
    assert '"level": "INFO"' in printed  # JSON logs
    postgres_server.psql(f'DROP DATABASE "{name}"')
