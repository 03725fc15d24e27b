"""The check after each App deploy (`pipeline/serving.py`): what this run's real templates say should
serve, against ECR, ECS and Lambda answers faked with botocore's Stubber and a fake site's health."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber

from pipeline import serving
from pipeline.aws import StepError
from pipeline.serving import Expected, NotServing
from stages.config import STAGING
from tests.templates import Synthesized

CLUSTER = "yoctogram-staging"
SITE = "https://staging.example.com"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLD = "sha256:" + "0" * 64
REGION = STAGING.region
ACCOUNT = STAGING.account


def digest_of(tag: str) -> str:
    """A stand-in digest per tag, as ECR would have it."""
    return "sha256:" + (tag * 2)[:64]


@pytest.fixture(scope="module")
def expected(synthesized: Synthesized) -> Expected:
    return serving.expected_from_assembly(synthesized.outdir, "Staging")


class Clock:
    """A clock that moves only when the step sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Fake:
    """ECR, ECS and Lambda clients with their answers queued in call order (Stubber)."""

    def __init__(self, expected: Expected) -> None:
        self.expected = expected
        self.ecr = boto3.client("ecr", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        self.ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        self.lambda_ = boto3.client(
            "lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stubs = [Stubber(c) for c in (self.ecr, self.ecs, self.lambda_)]
        self.ecr_stub, self.ecs_stub, self.lambda_stub = self.stubs
        for stub in self.stubs:
            stub.activate()
        self.revision = 7

    def images(self, missing: str | None = None) -> None:
        for tag in sorted({i.tag for i in self.expected.images}):
            params = {"repositoryName": self.expected.repository, "imageIds": [{"imageTag": tag}]}
            if tag == missing:
                self.ecr_stub.add_client_error(
                    "describe_images", "ImageNotFoundException", "not found", expected_params=params
                )
                return
            detail = {
                "imageDigest": digest_of(tag),
                "imageTags": [tag],
                "repositoryName": self.expected.repository,
            }
            self.ecr_stub.add_response("describe_images", {"imageDetails": [detail]}, params)

    # --- ECS -------------------------------------------------------------------------------------
    def task_definition(self, family: str, revision: int | None = None) -> str:
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision or self.revision}"

    def service(
        self,
        family: str,
        *,
        rollout: str = "COMPLETED",
        desired: int = 2,
        running: int | None = None,
        others: list[dict[str, Any]] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        running = desired if running is None else running
        primary: dict[str, Any] = {
            "id": f"ecs-svc/{family}-new",
            "status": "PRIMARY",
            "taskDefinition": self.task_definition(family),
            "desiredCount": desired,
            "runningCount": running,
            "pendingCount": 0,
            "failedTasks": 0,
            "rolloutState": rollout,
            "createdAt": datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        }
        if reason:
            primary["rolloutStateReason"] = reason
        return {
            "serviceName": f"{family}-Service-AbC123",
            "serviceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{family}-Service-AbC123",
            "status": "ACTIVE",
            "taskDefinition": primary["taskDefinition"],
            "desiredCount": desired,
            "runningCount": running,
            "pendingCount": 0,
            "deployments": [primary, *(others or [])],
            "events": [
                {
                    "id": f"e{i}",
                    "createdAt": datetime(2026, 12, 4, 10, 5 - i, tzinfo=UTC),
                    "message": f"(service {family}) event {i}",
                }
                for i in range(3)
            ],
        }

    def task(
        self,
        family: str,
        n: int,
        *,
        health: str = "HEALTHY",
        digests: dict[str, str] | None = None,
        revision: int | None = None,
    ) -> dict[str, Any]:
        [service] = [s for s in self.expected.services if s.family == family]
        containers = [
            {
                "name": name,
                "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{image.repository}:{image.tag}",
                "imageDigest": (digests or {}).get(name, digest_of(image.tag)),
                "lastStatus": "RUNNING",
            }
            for name, image in sorted(service.images.items())
        ]
        containers.append({"name": "datadog-agent", "image": "public.ecr.aws/datadog/agent:7.60.0"})
        return {
            "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{family[-6:]}{n:026d}",
            "taskDefinitionArn": self.task_definition(family, revision),
            "lastStatus": "RUNNING",
            "healthStatus": health if service.health_checked else "UNKNOWN",
            "containers": containers,
        }

    def look(self, services: list[dict[str, Any]], tasks: dict[str, list[dict[str, Any]]]) -> None:
        """One look at the cluster: ListServices, DescribeServices, and each service's tasks."""
        arns = [s["serviceArn"] for s in services]
        self.ecs_stub.add_response("list_services", {"serviceArns": arns}, {"cluster": CLUSTER})
        self.ecs_stub.add_response(
            "describe_services", {"services": services}, {"cluster": CLUSTER, "services": arns}
        )
        for expected in self.expected.services:
            [service] = [s for s in services if serving.family_of(s["taskDefinition"]) == expected.family]
            found = tasks.get(expected.family, [])
            self.ecs_stub.add_response(
                "list_tasks",
                {"taskArns": [t["taskArn"] for t in found]},
                {"cluster": CLUSTER, "serviceName": service["serviceName"], "desiredStatus": "RUNNING"},
            )
            if found:
                self.ecs_stub.add_response(
                    "describe_tasks",
                    {"tasks": found},
                    {"cluster": CLUSTER, "tasks": [t["taskArn"] for t in found]},
                )

    def settled(self, desired: int = 2, **task_options: Any) -> None:
        families = [s.family for s in self.expected.services]
        self.look(
            [self.service(f, desired=desired) for f in families],
            {f: [self.task(f, n, **task_options) for n in range(desired)] for f in families},
        )

    # --- Lambda ----------------------------------------------------------------------------------
    def function(
        self, *, digest: str | None = None, tag: str | None = None, update: str = "Successful"
    ) -> None:
        [function] = self.expected.functions
        repository = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{function.image.repository}"
        self.lambda_stub.add_response(
            "get_function",
            {
                "Configuration": {"FunctionName": function.name, "LastUpdateStatus": update},
                "Code": {
                    "RepositoryType": "ECR",
                    "ImageUri": f"{repository}:{tag or function.image.tag}",
                    "ResolvedImageUri": f"{repository}@{digest or digest_of(function.image.tag)}",
                },
            },
            {"FunctionName": function.name},
        )

    def done(self) -> None:
        for stub in self.stubs:
            stub.assert_no_pending_responses()


def site(digest: str, commit: str = COMMIT, answered: list[str] | None = None) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        if answered is not None:
            answered.append(request.url.path)
        assert request.url.path == serving.HEALTH
        build = {"commit": commit, "image": "the image", "image_digest": digest}
        return httpx.Response(200, json={"success": True, "status": "ok", "build": build})

    return httpx.Client(transport=httpx.MockTransport(handle))


def api_digest(expected: Expected) -> str:
    api = expected.api
    assert api is not None
    service, container = api
    return digest_of(service.images[container].tag)


def run(
    fake: Fake, http: httpx.Client, clock: Clock | None = None, timeout_s: float = 600.0
) -> tuple[list[str], Clock]:
    clock = clock or Clock()
    lines: list[str] = []
    serving.check_stage(
        fake.expected,
        cluster=CLUSTER,
        site_url=SITE,
        commit=COMMIT,
        ecr=fake.ecr,
        ecs=fake.ecs,
        lambda_=fake.lambda_,
        http=http,
        timeout_s=timeout_s,
        out=lines.append,
        sleep=clock.sleep,
        clock=clock,
    )
    return lines, clock


# --- what the templates say ------------------------------------------------------------------------
def test_the_expectation_is_read_from_this_runs_templates(expected: Expected) -> None:
    assert (expected.account, expected.region) == (STAGING.account, STAGING.region)
    assert expected.repository == f"cdk-hnb659fds-container-assets-{STAGING.account}-{STAGING.region}"
    services = {s.family: s for s in expected.services}
    assert set(services) == {"yoctogram-staging-web", "yoctogram-staging-event-worker"}
    web, worker = services["yoctogram-staging-web"], services["yoctogram-staging-event-worker"]
    assert set(web.images) == {"app", "log-router"} and set(worker.images) == {"worker", "log-router"}
    assert web.images["app"] == worker.images["worker"]  # one backend image
    # the web task's app container has a health check; the worker's essential containers have none
    assert (web.health_checked, worker.health_checked) == (True, False)
    assert expected.api == (web, "app")
    [function] = expected.functions
    assert function.name == "yoctogram-staging-compressor"
    assert function.image != web.images["app"]


def test_an_image_this_run_did_not_publish_is_refused(synthesized: Synthesized, tmp_path: Path) -> None:
    """A template naming an assets-repository tag that no asset manifest of this run publishes."""
    shutil.copytree(synthesized.outdir / "assembly-Staging", tmp_path / "assembly-Staging")
    [path] = (tmp_path / "assembly-Staging").glob("StagingApp*.template.json")
    template = json.loads(path.read_text())
    [function] = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "ImageUri" in r["Properties"].get("Code", {})
    ]
    uri = function["Properties"]["Code"]["ImageUri"]["Fn::Sub"]
    function["Properties"]["Code"]["ImageUri"]["Fn::Sub"] = uri.rsplit(":", 1)[0] + ":" + "f" * 64
    path.write_text(json.dumps(template))
    with pytest.raises(StepError, match="do not publish"):
        serving.expected_from_assembly(tmp_path, "Staging")


def test_an_unknown_stage_says_what_to_set(synthesized: Synthesized) -> None:
    with pytest.raises(StepError, match="STAGE_ID"):
        serving.expected_from_assembly(synthesized.outdir, "Nope")


# --- deployments ---------------------------------------------------------------------------------
def test_a_completed_deployment_on_this_runs_images_passes(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    fake.settled(desired=2)
    fake.function()
    answered: list[str] = []
    lines, clock = run(fake, site(api_digest(expected), answered=answered))
    fake.done()
    assert clock.slept == []
    assert [line.split()[1] for line in lines if line.startswith("ok")] == [
        "yoctogram-staging-web:",
        "yoctogram-staging-event-worker:",
        "yoctogram-staging-compressor:",
        "API:",
    ]
    assert len(answered) == 4  # twice the web service's desired count: more than one task answers


def test_a_rolled_back_deployment_fails_with_its_state_and_events(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    web, worker = (s.family for s in expected.services)
    failed = {
        "id": "ecs-svc/failed",
        "status": "ACTIVE",
        "taskDefinition": fake.task_definition(web, 8),
        "desiredCount": 0,
        "runningCount": 0,
        "failedTasks": 4,
        "rolloutState": "FAILED",
        "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
    }
    fake.look(
        [fake.service(web, others=[failed]), fake.service(worker)],
        {web: [fake.task(web, 0), fake.task(web, 1)], worker: [fake.task(worker, 0)]},
    )
    with pytest.raises(NotServing) as failure:
        run(fake, site(api_digest(expected)))
    text = str(failure.value)
    assert "rolled back" in text and "circuit breaker: tasks failed to start" in text
    assert "deployment ecs-svc/failed ACTIVE FAILED: 0/0 running, 4 failed" in text
    assert "its last 3 events, newest first" in text and f"(service {web}) event 0" in text


def test_a_first_create_without_a_healthy_task_fails(expected: Expected) -> None:
    """aws/containers-roadmap#1369: CloudFormation calls the create complete, yet nothing runs."""
    fake = Fake(expected)
    fake.images()
    web, worker = (s.family for s in expected.services)
    fake.look(
        [
            fake.service(web, rollout="FAILED", running=0, reason="tasks failed to start"),
            fake.service(worker),
        ],
        {worker: [fake.task(worker, 0), fake.task(worker, 1)]},
    )
    with pytest.raises(
        NotServing, match=r"FAILED with nothing to roll back to \(tasks failed to start\).*1369"
    ):
        run(fake, site(api_digest(expected)))


def test_a_deployment_in_progress_is_waited_for_then_times_out_clearly(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    web, worker = (s.family for s in expected.services)
    looks = 3
    for _ in range(looks):
        fake.look(
            [fake.service(web, rollout="IN_PROGRESS", running=1), fake.service(worker)],
            {
                web: [fake.task(web, 0, health="UNKNOWN")],
                worker: [fake.task(worker, 0), fake.task(worker, 1)],
            },
        )
    with pytest.raises(NotServing) as failure:
        run(fake, site(api_digest(expected)), timeout_s=2 * serving.POLL_SECONDS)
    fake.done()
    text = str(failure.value)
    assert "still not settled after" in text and "--timeout-minutes" in text
    assert f"{web}: IN_PROGRESS, 1/2 running, 0 healthy, deployment in progress" in text
    assert "event 0" in text


def test_a_deployment_that_finishes_while_waiting_passes(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    web, worker = (s.family for s in expected.services)
    fake.look(
        [fake.service(web, rollout="IN_PROGRESS", running=1), fake.service(worker)],
        {web: [fake.task(web, 0)], worker: [fake.task(worker, 0), fake.task(worker, 1)]},
    )
    fake.settled()
    fake.function()
    lines, clock = run(fake, site(api_digest(expected)))
    fake.done()
    assert clock.slept == [serving.POLL_SECONDS]
    assert any(line.startswith(f"wait  {web}: IN_PROGRESS, 1/2 running") for line in lines)


def test_tasks_on_another_image_fail_naming_the_container(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    fake.settled(digests={"app": OLD, "worker": OLD})
    with pytest.raises(NotServing, match=rf"container 'app' runs {OLD} .*not this run's Migration\+Web"):
        run(fake, site(api_digest(expected)))


def test_an_unhealthy_task_is_not_counted(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    for _ in range(2):
        fake.settled(health="UNHEALTHY")
    with pytest.raises(NotServing, match=r"COMPLETED, 2/2 running, 0 healthy, waiting for tasks"):
        run(fake, site(api_digest(expected)), timeout_s=serving.POLL_SECONDS)


def test_an_image_missing_from_the_registry_fails(expected: Expected) -> None:
    fake = Fake(expected)
    [function] = expected.functions
    fake.images(missing=function.image.tag)
    with pytest.raises(NotServing, match="did the Assets stage publish it"):
        run(fake, site(api_digest(expected)))


# --- the compressor and the API --------------------------------------------------------------------
def test_a_compressor_on_another_image_fails(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    fake.settled()
    fake.function(digest=OLD)
    with pytest.raises(NotServing, match=rf"yoctogram-staging-compressor runs .*@{OLD}, not this run's"):
        run(fake, site(api_digest(expected)))


def test_a_compressor_configured_with_another_tag_fails(expected: Expected) -> None:
    fake = Fake(expected)
    fake.images()
    fake.settled()
    fake.function(tag="a" * 64)
    with pytest.raises(NotServing, match=r"is configured with .*:aaaa.*not this run's Compressor"):
        run(fake, site(api_digest(expected)))


def test_an_api_reporting_another_image_or_commit_fails(expected: Expected) -> None:
    for http, problem in (
        (site(OLD), f"reports image {OLD}"),
        (site(api_digest(expected), commit="f" * 40), "reports commit ffff"),
    ):
        fake = Fake(expected)
        fake.images()
        fake.settled()
        fake.function()
        with pytest.raises(NotServing, match=problem):
            run(fake, http)


def test_the_local_stand_in_checks_the_working_trees_commit() -> None:
    lines: list[str] = []
    head = serving.working_tree_commit(Path.cwd())
    serving.check_local({"SiteUrl": SITE}, site("local", commit=head), lines.append, timeout_s=10)
    assert lines == [f"ok    API: 3 answers of {SITE}{serving.HEALTH} report local, commit {head[:12]}"]
    with pytest.raises(NotServing, match="reports commit"):
        serving.check_local(
            {"SiteUrl": SITE, "COMMIT_ID": "abc1234"}, site("local", commit=head), print, timeout_s=10
        )


def test_main_says_what_is_missing(capsys: pytest.CaptureFixture[str], synthesized: Synthesized) -> None:
    assert serving.main([str(synthesized.outdir)], env={"STAGE_ID": "Staging"}) == 2
    assert "ClusterName, SiteUrl not set" in capsys.readouterr().err
