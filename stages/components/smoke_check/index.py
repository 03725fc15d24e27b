"""ECS deployment lifecycle hook: smoke-check the new revision before any user traffic reaches it.

ECS invokes this at `POST_TEST_TRAFFIC_SHIFT`: the new revision runs beside the old one and the load
balancer's test listener sends all its traffic to it, while users still reach only the old revision. The
function answers ECS with a `hookStatus`:

- `SUCCEEDED`: every check passed and nobody asked for a hold; ECS starts shifting production traffic;
- `IN_PROGRESS` (ECS calls again after `callBackDelay` seconds, handing back `hookDetails`): the new tasks
  are not answering yet (a connection error, 502/503/504), up to `ATTEMPTS` tries; or the checks passed
  and the hold parameter says `hold` (stages/runbooks/web-deployments.md);
- `FAILED`: a check got a wrong answer, or the retries ran out; ECS rolls the deployment back.

The test listener is on the internet-facing load balancer, but its security group admits only this
function's: the function finds the load balancer's private addresses (its network interfaces, which the
VPC access rights already let it list) and speaks HTTPS to them inside the VPC, checking the certificate
for the origin's name (`SERVER_NAME`). It uses only the standard library and the runtime's boto3.

Environment: `LOAD_BALANCER` (its full name, `app/<name>/<id>`), `TEST_PORT`, `SERVER_NAME`,
`HOLD_PARAMETER`, `CONTAINER_NAME`, `ATTEMPTS`, `RETRY_SECONDS`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

STAGE = "POST_TEST_TRAFFIC_SHIFT"
HOLD = "hold"
HOLD_POLL_SECONDS = 60
TIMEOUT_SECONDS = 5.0
RETRYABLE_STATUSES = (502, 503, 504)
"""The load balancer, or the app, saying "not yet": new tasks still registering or warming up."""


class Retry(Exception):
    """The new revision is not answering yet; ask again."""


class CheckFailed(Exception):
    """The new revision answered, wrongly."""


@dataclass(frozen=True)
class Settings:
    load_balancer: str
    test_port: int
    server_name: str
    hold_parameter: str
    container_name: str
    attempts: int
    retry_seconds: int

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        return cls(
            load_balancer=env["LOAD_BALANCER"],
            test_port=int(env["TEST_PORT"]),
            server_name=env["SERVER_NAME"],
            hold_parameter=env["HOLD_PARAMETER"],
            container_name=env["CONTAINER_NAME"],
            attempts=int(env["ATTEMPTS"]),
            retry_seconds=int(env["RETRY_SECONDS"]),
        )


Fetch = Callable[[str, str], "tuple[int, bytes]"]
"""(address, path) -> (status, body): one HTTPS GET through the test listener."""


@dataclass(frozen=True)
class Check:
    path: str
    status: int
    what: str
    accepts: Callable[[object], bool]


CHECKS = (
    Check(
        "/api/v1/health",
        200,
        "liveness",
        lambda body: isinstance(body, dict) and body.get("status") == "ok",
    ),
    Check(
        "/api/v1/health/ready",
        200,
        "readiness (its database answers)",
        lambda body: isinstance(body, dict) and body.get("database") == "ok",
    ),
    Check(
        "/api/v1/feed/latest",
        200,
        "the public feed",
        lambda body: isinstance(body, dict) and isinstance(body.get("results"), list),
    ),
    Check(
        "/api/v1/no-such-route",
        404,
        "a JSON 404 for an unknown API route",
        lambda body: isinstance(body, dict) and body.get("success") is False,
    ),
)


def get(addresses: list[str], path: str, fetch: Fetch) -> tuple[int, bytes]:
    """GET through the first load balancer address that answers."""
    if not addresses:
        raise Retry("the load balancer has no network interface in service")
    errors = []
    for address in addresses:
        try:
            return fetch(address, path)
        except (OSError, http.client.HTTPException) as error:
            if isinstance(error, ssl.SSLCertVerificationError):
                raise CheckFailed(f"{address}: the test listener's certificate: {error}") from None
            errors.append(f"{address}: {type(error).__name__}: {error}")
    raise Retry(f"GET {path}: no answer ({'; '.join(errors)})")


def run_checks(addresses: list[str], fetch: Fetch, revision_digest: str | None) -> list[str]:
    """Every check through the test listener; what passed, or Retry / CheckFailed."""
    passed = []
    for check in CHECKS:
        status, raw = get(addresses, check.path, fetch)
        if status in RETRYABLE_STATUSES:
            raise Retry(f"GET {check.path} answered {status}")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status != check.status or not check.accepts(body):
            raise CheckFailed(
                f"{check.what}: GET {check.path} answered {status} {raw[:200]!r} (expected {check.status})"
            )
        if check.path == "/api/v1/health" and revision_digest:
            serving = body.get("build", {}).get("image_digest", "") if isinstance(body, dict) else ""
            # The test listener must reach the new revision: an old task answering would pass every check.
            if serving.startswith("sha256:") and serving != revision_digest:
                raise CheckFailed(
                    f"the test listener reached image {serving}, but the new revision runs {revision_digest}"
                )
        passed.append(f"{check.what}: {status}")
    return passed


def decide(
    event: dict,
    *,
    settings: Settings,
    addresses: Callable[[], list[str]],
    fetch: Fetch,
    hold_requested: Callable[[], bool],
    revision_digest: Callable[[str], str | None],
    log: Callable[[dict], None] = lambda record: None,
) -> dict:
    """The answer to one invocation (pure but for the callables, which reach AWS and the listener)."""
    details = event.get("executionDetails") or {}
    stage = event.get("lifecycleStage") or details.get("lifecycleStage")
    if stage and stage != STAGE:
        log({"message": "not a stage this hook checks", "stage": stage})
        return {"hookStatus": "SUCCEEDED"}
    state = event.get("hookDetails") or {}
    attempt = int(state.get("attempt", 0)) + 1
    if not state.get("passed"):
        revision = details.get("targetServiceRevisionArn") or event.get("targetServiceRevisionArn")
        digest = None
        if revision:
            try:
                digest = revision_digest(revision)
            except Exception as error:  # an extra check: without it the smoke checks still judge
                log(
                    {
                        "message": "cannot read the new revision's image digest: not compared",
                        "error": repr(error),
                    }
                )
        try:
            try:
                found = addresses()
            except Exception as error:  # an AWS API out of reach or refusing: not the revision's fault
                raise Retry(f"looking up the load balancer's addresses: {error!r}") from None
            passed = run_checks(found, fetch, digest)
        except Retry as error:
            if attempt >= settings.attempts:
                log(
                    {"message": "smoke checks: no answer, giving up", "attempt": attempt, "error": str(error)}
                )
                return {"hookStatus": "FAILED"}
            log({"message": "smoke checks: not answering yet", "attempt": attempt, "error": str(error)})
            return {
                "hookStatus": "IN_PROGRESS",
                "callBackDelay": settings.retry_seconds,
                "hookDetails": {"attempt": attempt},
            }
        except CheckFailed as error:
            log({"message": "smoke checks failed", "attempt": attempt, "error": str(error)})
            return {"hookStatus": "FAILED"}
        log({"message": "smoke checks passed", "attempt": attempt, "checks": passed})
    try:
        held = hold_requested()
    except Exception as error:  # cannot tell: keep waiting (the hook's timeout bounds it) rather than go on
        log({"message": "cannot read the hold parameter", "error": repr(error)})
        held = True
    if held:
        log({"message": f"held: the hold parameter says {HOLD!r}", "parameter": settings.hold_parameter})
        return {
            "hookStatus": "IN_PROGRESS",
            "callBackDelay": HOLD_POLL_SECONDS,
            "hookDetails": {"attempt": attempt, "passed": True},
        }
    return {"hookStatus": "SUCCEEDED"}


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one address, checking the certificate for another name (the origin's)."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(server_name, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def https_fetch(port: int, server_name: str, context: ssl.SSLContext | None = None) -> Fetch:
    """A Fetch that GETs over HTTPS from each given address, as `server_name`."""
    tls = context or ssl.create_default_context()

    def fetch(address: str, path: str) -> tuple[int, bytes]:
        connection = PinnedHTTPSConnection(address, port, server_name, tls, TIMEOUT_SECONDS)
        try:
            connection.request(
                "GET", path, headers={"Accept": "application/json", "User-Agent": "deploy-hook"}
            )
            response = connection.getresponse()
            return response.status, response.read(64 * 1024)
        finally:
            connection.close()

    return fetch


def load_balancer_addresses(load_balancer: str) -> list[str]:
    """The private addresses of the load balancer's network interfaces (described `ELB app/<name>/<id>`)."""
    import boto3

    found = boto3.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "description", "Values": [f"ELB {load_balancer}"]}]
    )["NetworkInterfaces"]
    return sorted(i["PrivateIpAddress"] for i in found if i.get("Status") == "in-use")


def hold_requested(parameter: str) -> bool:
    import boto3

    value = boto3.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    return value.strip().lower() == HOLD


def revision_image_digest(revision_arn: str, container_name: str) -> str | None:
    """The image digest the new revision runs in its main container, as ECS recorded it."""
    import boto3

    revisions = boto3.client("ecs").describe_service_revisions(serviceRevisionArns=[revision_arn])
    for revision in revisions.get("serviceRevisions", []):
        for image in revision.get("containerImages", []):
            if image.get("containerName") == container_name and image.get("imageDigest"):
                return str(image["imageDigest"])
    return None


def handler(event: dict, context: object) -> dict:
    settings = Settings.from_env(dict(os.environ))

    def log(record: dict) -> None:
        print(json.dumps({"level": "INFO", **record}))

    answer = decide(
        event,
        settings=settings,
        addresses=lambda: load_balancer_addresses(settings.load_balancer),
        fetch=https_fetch(settings.test_port, settings.server_name),
        hold_requested=lambda: hold_requested(settings.hold_parameter),
        revision_digest=lambda arn: revision_image_digest(arn, settings.container_name),
        log=log,
    )
    log({"message": "answer", **answer})
    return answer
