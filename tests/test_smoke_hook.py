"""The web service's deployment hook (stages/components/smoke_check/index.py): what it answers ECS.

The checks run for real over HTTPS against a loopback server with a certificate for the origin's name,
reached by address as the function reaches the load balancer's private addresses; only the AWS lookups
(addresses, the revision's digest, the hold parameter) are stand-ins.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stages.components.deployment_hook import ATTEMPTS, HANDLER, RETRY_SECONDS, STAGE
from tests.conftest import load_file

SERVER_NAME = "origin.staging.example.test"
DIGEST = "sha256:" + "ab" * 32
REVISION = "arn:aws:ecs:us-west-2:111111111111:service-revision/yoctogram-staging/web/1234"


def load_hook() -> ModuleType:
    return load_file("smoke_check", HANDLER)


hook = load_hook()


def certificate(tmp: Path, name: str) -> tuple[Path, Path, bytes]:
    """A self-signed certificate for `name`: (cert file, key file, PEM to trust)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file, pem


def healthy_routes() -> dict[str, tuple[int, Any]]:
    """What a healthy new revision answers through the test listener."""
    return {
        "/api/v1/health": (
            200,
            {
                "success": True,
                "status": "ok",
                "build": {"commit": "c0ffee", "image": "x", "image_digest": DIGEST},
            },
        ),
        "/api/v1/health/ready": (200, {"success": True, "status": "ok", "database": "ok"}),
        "/api/v1/feed/latest": (200, {"success": True, "count": 0, "results": [], "next_cursor": None}),
    }


@dataclass
class Listener:
    """The loopback stand-in for the test listener: set `routes` to change what it answers."""

    port: int
    trusted: bytes
    routes: dict[str, tuple[int, Any]] = field(default_factory=healthy_routes)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def fetch(self, server_name: str = SERVER_NAME) -> Callable[[str, str], tuple[int, bytes]]:
        context = ssl.create_default_context(cadata=self.trusted.decode())
        return hook.https_fetch(self.port, server_name, context)


def serve(tmp: Path, name: str) -> Iterator[Listener]:
    cert_file, key_file, pem = certificate(tmp, name)
    listener: Listener

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            listener.requests.append((self.path, self.headers.get("Host")))
            status, body = listener.routes.get(self.path, (404, {"success": False, "detail": "Not Found"}))
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    listener = Listener(port=server.server_port, trusted=pem)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield listener
    server.shutdown()
    server.server_close()


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    yield from serve(tmp_path, SERVER_NAME)


SETTINGS = hook.Settings(
    load_balancer="app/yoctogram-web/0123456789abcdef",
    test_port=8443,
    server_name=SERVER_NAME,
    hold_parameter="/yoctogram/staging/web-deployment-hold",
    container_name="app",
    attempts=ATTEMPTS,
    retry_seconds=RETRY_SECONDS,
)


def event(hook_details: dict[str, Any] | None = None, stage: str = STAGE) -> dict[str, Any]:
    """ECS's invocation: the stage, the deployment's details, and what our last answer handed back."""
    found: dict[str, Any] = {
        "executionId": "execution-1",
        "lifecycleStage": stage,
        "resourceArn": "arn:aws:ecs:us-west-2:111111111111:service-deployment/yoctogram-staging/web/abc",
        "executionDetails": {
            "serviceArn": "arn:aws:ecs:us-west-2:111111111111:service/yoctogram-staging/web",
            "targetServiceRevisionArn": REVISION,
            "testTrafficWeights": {REVISION: 100},
            "productionTrafficWeights": {REVISION: 0},
        },
    }
    if hook_details is not None:
        found["hookDetails"] = hook_details
    return found


def decide(
    listener: Listener | None,
    invocation: dict[str, Any],
    *,
    addresses: Callable[[], list[str]] = lambda: ["127.0.0.1"],
    digest: str | None = DIGEST,
    held: Callable[[], bool] = lambda: False,
    fetch: Callable[[str, str], tuple[int, bytes]] | None = None,
) -> dict[str, Any]:
    def refuse(address: str, path: str) -> tuple[int, bytes]:
        raise AssertionError(f"no check was expected, got GET {path}")

    def revision_digest(arn: str) -> str | None:
        assert arn == REVISION
        return digest

    answer: dict[str, Any] = hook.decide(
        invocation,
        settings=SETTINGS,
        addresses=addresses,
        fetch=fetch or (listener.fetch() if listener else refuse),
        hold_requested=held,
        revision_digest=revision_digest,
    )
    json.dumps(answer)  # ECS reads it as JSON
    return answer


def test_a_healthy_revision_succeeds_after_every_check_through_the_listener(listener: Listener) -> None:
    assert decide(listener, event()) == {"hookStatus": "SUCCEEDED"}
    assert [path for path, _ in listener.requests] == [check.path for check in hook.CHECKS]
    # Reached by address, but as the origin's name: the certificate is checked for it.
    assert {host for _, host in listener.requests} == {f"{SERVER_NAME}:{listener.port}"}


def test_not_answering_yet_is_retried_then_fails(listener: Listener) -> None:
    listener.routes["/api/v1/health/ready"] = (
        503,
        {"success": False, "detail": "The database does not answer"},
    )
    answer = decide(listener, event())
    assert answer == {
        "hookStatus": "IN_PROGRESS",
        "callBackDelay": RETRY_SECONDS,
        "hookDetails": {"attempt": 1},
    }
    answer = decide(listener, event(answer["hookDetails"]))
    assert answer["hookDetails"] == {"attempt": 2}
    assert decide(listener, event({"attempt": ATTEMPTS - 1})) == {"hookStatus": "FAILED"}


def test_the_revision_recovering_between_attempts_succeeds(listener: Listener) -> None:
    listener.routes["/api/v1/health"] = (502, b"<html>Bad Gateway</html>")
    first = decide(listener, event())
    assert first["hookStatus"] == "IN_PROGRESS"
    listener.routes.update(healthy_routes())
    assert decide(listener, event(first["hookDetails"])) == {"hookStatus": "SUCCEEDED"}


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/api/v1/health", (200, {"success": True, "status": "starting"})),
        ("/api/v1/health/ready", (500, {"success": False, "detail": "Internal Server Error"})),
        ("/api/v1/feed/latest", (200, b"<html>a web page, not the API</html>")),
        ("/api/v1/no-such-route", (200, b"<html>the web client's index page</html>")),
    ],
)
def test_a_wrong_answer_fails_at_once(listener: Listener, path: str, answer: tuple[int, Any]) -> None:
    listener.routes[path] = answer
    assert decide(listener, event()) == {"hookStatus": "FAILED"}


def test_the_old_revision_answering_the_test_listener_fails(listener: Listener) -> None:
    """Every check would pass against the running revision: the digest tells which one answered."""
    assert decide(listener, event(), digest="sha256:" + "cd" * 32) == {"hookStatus": "FAILED"}
    # A build that cannot say its digest is not held against the revision; neither is a revision without one.
    listener.routes["/api/v1/health"] = (
        200,
        {
            "success": True,
            "status": "ok",
            "build": {"commit": "c0ffee", "image": "x", "image_digest": "unknown"},
        },
    )
    assert decide(listener, event(), digest="sha256:" + "cd" * 32) == {"hookStatus": "SUCCEEDED"}
    assert decide(listener, event(), digest=None) == {"hookStatus": "SUCCEEDED"}


def test_a_digest_that_cannot_be_read_leaves_the_other_checks_to_judge(listener: Listener) -> None:
    def refused(arn: str) -> str | None:
        raise PermissionError("AccessDenied: ecs:DescribeServiceRevisions")

    answer = hook.decide(
        event(),
        settings=SETTINGS,
        addresses=lambda: ["127.0.0.1"],
        fetch=listener.fetch(),
        hold_requested=lambda: False,
        revision_digest=refused,
    )
    assert answer == {"hookStatus": "SUCCEEDED"}
    assert [path for path, _ in listener.requests] == [check.path for check in hook.CHECKS]


def test_a_certificate_for_another_name_fails(tmp_path: Path) -> None:
    for impostor in serve(tmp_path, "somewhere-else.example.test"):
        context = ssl.create_default_context(cadata=impostor.trusted.decode())
        fetch = hook.https_fetch(impostor.port, SERVER_NAME, context)
        assert decide(None, event(), fetch=fetch) == {"hookStatus": "FAILED"}
        assert impostor.requests == []


def test_the_next_address_is_tried_and_none_means_retry(listener: Listener) -> None:
    # 127.0.0.2 is loopback too, but nothing listens there on this port.
    assert decide(listener, event(), addresses=lambda: ["127.0.0.2", "127.0.0.1"]) == {
        "hookStatus": "SUCCEEDED"
    }
    assert decide(listener, event(), addresses=list)["hookStatus"] == "IN_PROGRESS"

    def unreachable() -> list[str]:
        raise ConnectionError("EC2 API unreachable")

    assert decide(listener, event(), addresses=unreachable)["hookStatus"] == "IN_PROGRESS"


def test_a_hold_keeps_a_checked_revision_waiting_without_checking_again(listener: Listener) -> None:
    answer = decide(listener, event(), held=lambda: True)
    assert answer == {
        "hookStatus": "IN_PROGRESS",
        "callBackDelay": hook.HOLD_POLL_SECONDS,
        "hookDetails": {"attempt": 1, "passed": True},
    }
    # Later calls only read the hold: the revision was checked (nothing may reach the listener here).
    assert decide(None, event(answer["hookDetails"]), held=lambda: True)["hookStatus"] == "IN_PROGRESS"
    assert decide(None, event(answer["hookDetails"]), held=lambda: False) == {"hookStatus": "SUCCEEDED"}

    def unreadable() -> bool:
        raise ConnectionError("SSM unreachable")

    # Cannot tell whether a hold was asked for: wait (the hook's timeout bounds it) rather than go on.
    assert decide(None, event(answer["hookDetails"]), held=unreadable)["hookStatus"] == "IN_PROGRESS"


def test_other_stages_pass_without_checks() -> None:
    assert decide(None, event(stage="PRODUCTION_TRAFFIC_SHIFT")) == {"hookStatus": "SUCCEEDED"}


def test_settings_come_from_the_environment_the_stack_sets() -> None:
    env = {
        "LOAD_BALANCER": "app/yoctogram-web/0123456789abcdef",
        "TEST_PORT": "8443",
        "SERVER_NAME": SERVER_NAME,
        "HOLD_PARAMETER": "/yoctogram/staging/web-deployment-hold",
        "CONTAINER_NAME": "app",
        "ATTEMPTS": str(ATTEMPTS),
        "RETRY_SECONDS": str(RETRY_SECONDS),
    }
    assert hook.Settings.from_env(env) == SETTINGS
    with pytest.raises(KeyError):
        hook.Settings.from_env({k: v for k, v in env.items() if k != "SERVER_NAME"})
