"""The pipeline's own step modules, without AWS: the smoke test against a fake site, the migration task,
the image scan and the review's publication against stubbed or in-process AWS APIs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from loadtests.regression import cli as regression
from loadtests.tests.regression_fixtures import RUN1, RUN2, copy_run, scaled
from pipeline import image_scan, migrate, review, smoke
from pipeline.aws import StepError
from pipeline.commands import BASELINE_FETCHED, JUNIT_DIR, JUNIT_FILE
from stages.config import PROD, STAGING
from tests.templates import Synthesized

SITE = "https://staging.example.com"
IMAGE = "0b5b7f5e-4a51-4a4e-9d0c-7f7a7c1d2e3f"
PRIVATE_IMAGE = "9c0f3d6a-2b1e-4f5a-8c7d-6e5f4a3b2c1d"
USER = "6f1c2f0e-9d5b-4c47-8a53-0a8f7c0f9b11"


class FakeSite:
    """Just enough of the API, the site and S3 for one smoke run; `fail` names a path to answer 503."""

    def __init__(self, fail: str | None = None, trusted_key: bool = True) -> None:
        self.fail = fail
        self.trusted_key = trusted_key
        """False: CloudFront's key group does not hold the key the API signs with."""
        self.state = "uploaded"
        self.deleted_private = False
        self.deleted = False
        self.left = False
        self.username = ""
        self.authorized: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        self.authorized.append(f"{request.url.host} {request.headers.get('authorization', '')}")
        if path == self.fail:
            return httpx.Response(503, json={"success": False, "detail": "down"})
        routes: dict[tuple[str, str], Any] = {
            ("GET", "/api/v1/health"): lambda: {"success": True, "status": "ok"},
            ("GET", "/api/v1/health/ready"): lambda: {"success": True},
            ("GET", "/config.json"): lambda: {"apiBase": "/api/v1", "environment": "staging"},
            ("GET", "/api/v1/feed/latest"): lambda: {"success": True, "count": 0, "results": []},
            ("POST", "/api/v1/auth/login/"): lambda: {"access_token": "token", "token_type": "bearer"},
            ("GET", "/api/v1/users/me"): lambda: {"id": USER, "username": self.username},
            ("POST", "/api/v1/images/upload/public/generate"): lambda: {
                "url": "https://public-images.s3.amazonaws.com/",
                "fields": {"key": f"public/originals/{IMAGE}", "policy": "p", "x-amz-signature": "s"},
                "id": IMAGE,
            },
            ("POST", "/api/v1/images/upload/private/generate"): lambda: {
                "url": "https://private-images.s3.amazonaws.com/",
                "fields": {
                    "key": f"private/originals/{PRIVATE_IMAGE}",
                    "policy": "p",
                    "x-amz-signature": "s",
                },
                "id": PRIVATE_IMAGE,
            },
            ("POST", f"/api/v1/images/upload/{IMAGE}/confirm"): lambda: {"id": IMAGE, "state": "uploaded"},
            ("POST", f"/api/v1/images/upload/{PRIVATE_IMAGE}/confirm"): lambda: {
                "id": PRIVATE_IMAGE,
                "state": "uploaded",
            },
            ("GET", f"/api/v1/images/media/{PRIVATE_IMAGE}"): lambda: {
                "uri": f"/private/originals/{PRIVATE_IMAGE}?Expires=1&Signature=s&Key-Pair-Id=K1"
            },
            ("DELETE", f"/api/v1/images/{PRIVATE_IMAGE}"): self.delete_private,
            ("GET", f"/api/v1/images/media/{IMAGE}"): lambda: {
                "uri": f"{SITE}/public/{'renditions' if self.state == 'ready' else 'originals'}/{IMAGE}"
            },
            ("GET", f"/api/v1/feed/by_user/{USER}"): self.by_user,
            ("DELETE", f"/api/v1/images/{IMAGE}"): self.delete,
            ("DELETE", "/api/v1/users/me"): self.leave,
        }
        if (method, path) == ("POST", "/api/v1/auth/register/"):
            self.username = json.loads(request.content)["username"]
            return httpx.Response(201, json={"success": True})
        if path == "/":
            return httpx.Response(200, html='<script type="module" src="/assets/index-abc.js"></script>')
        if path.startswith("/assets/"):
            return httpx.Response(200, text="export {}", headers={"content-type": "text/javascript"})
        if request.url.host in ("public-images.s3.amazonaws.com", "private-images.s3.amazonaws.com"):
            assert b"x-amz-signature" in request.content
            return httpx.Response(204)
        if path.startswith("/private/"):
            if "Signature" not in request.url.params or not self.trusted_key:
                return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
            return httpx.Response(200, content=b"\x89PNG...", headers={"content-type": "image/png"})
        if path.startswith("/public/"):
            return httpx.Response(200, content=b"\x89PNG...", headers={"content-type": "image/png"})
        if (method, path) in routes:
            return httpx.Response(200, json=routes[(method, path)]())
        return httpx.Response(404, json={"success": False, "detail": "Not found"})

    def by_user(self) -> dict[str, Any]:
        state, self.state = self.state, "ready"  # ready on the second look
        return {"success": True, "count": 1, "results": [{"id": IMAGE, "state": state}], "next_cursor": None}

    def delete_private(self) -> dict[str, Any]:
        self.deleted_private = True
        return {"success": True}

    def delete(self) -> dict[str, Any]:
        self.deleted = True
        return {"success": True}

    def leave(self) -> dict[str, Any]:
        self.left = True
        return {"success": True}


def test_smoke_fails_when_private_images_cannot_be_opened_and_says_why() -> None:
    """A key group without the API's signing key makes every private image 403: the run must fail."""
    site = FakeSite(trusted_key=False)
    passed, lines = run_smoke(site)
    assert not passed
    assert lines[-2].startswith("FAIL  private media") and "media-signing-key.md" in lines[-2]
    assert site.deleted and site.deleted_private and site.left


def run_smoke(site: FakeSite) -> tuple[bool, list[str]]:
    transport = httpx.MockTransport(site.handle)
    lines: list[str] = []
    with httpx.Client(transport=transport) as client, httpx.Client(transport=transport) as anonymous:
        check = smoke.Smoke(SITE, client, anonymous, wait_s=1, rendition_timeout_s=5, sleep=lambda _: None)
        return smoke.run(check, lines.append), lines


def test_smoke_passes_against_a_whole_site_and_deletes_its_image() -> None:
    site = FakeSite()
    passed, lines = run_smoke(site)
    assert passed, lines
    assert [line.split()[1] for line in lines][:4] == ["API", "API", "web", "config.json"]
    assert any("rendition" in line and line.startswith("ok") for line in lines)
    assert lines[-2].startswith("ok    private media") and "403 without the signature" in lines[-2]
    assert site.deleted and site.deleted_private and site.left
    # The API's token never goes to S3 (S3 refuses a second way of authenticating).
    assert all(
        not entry.endswith("Bearer token") for entry in site.authorized if entry.startswith("public-images")
    )


def test_smoke_stops_at_the_first_failure_and_still_cleans_up() -> None:
    site = FakeSite(fail=f"/api/v1/images/media/{IMAGE}")
    passed, lines = run_smoke(site)
    assert not passed
    assert lines[-2].startswith("FAIL  original") and "503" in lines[-2]
    assert site.deleted and site.left and lines[-1].startswith("ok    cleanup")


def test_smoke_png_is_a_png() -> None:
    png = smoke.tiny_png(8)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in png and png.endswith(b"IEND\xaeB`\x82")


def test_smoke_refuses_a_missing_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main(["--url", ""]) == 2
    assert "is SiteUrl set" in capsys.readouterr().err


# --- the migration task ------------------------------------------------------------------------------
STAGE_ENV = {
    "MigrationTaskDefinitionArn": "arn:aws:ecs:us-west-2:111111111111:task-definition/yoctogram-staging-migrate:7",
    "ClusterName": "yoctogram-staging-network-Cluster",
    "TaskSubnetIds": "subnet-1,subnet-2",
    "TaskSecurityGroupId": "sg-1",
}
TASK = "arn:aws:ecs:us-west-2:111111111111:task/yoctogram-staging-network-Cluster/abc123"


def test_the_task_runs_in_the_private_task_subnets() -> None:
    request = migrate.run_task_request(STAGE_ENV)
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["subnet-1", "subnet-2"],
        "securityGroups": ["sg-1"],
        "assignPublicIp": "DISABLED",
    }
    assert request["launchType"] == "FARGATE" and request["count"] == 1


def test_outcome_needs_every_container_to_exit_0() -> None:
    assert migrate.outcome({"containers": [{"name": "migrate", "exitCode": 0}]})[0]
    ok, message = migrate.outcome(
        {"containers": [{"name": "migrate", "exitCode": 1}], "stoppedReason": "Essential container exited"}
    )
    assert not ok and "exit code 1" in message and "Essential container exited" in message
    assert not migrate.outcome({"containers": [], "stopCode": "TaskFailedToStart"})[0]


def test_waiting_gives_up_at_the_timeout() -> None:
    now = [0.0]
    task = migrate.wait_for_stop(
        lambda: {"lastStatus": "RUNNING"},
        timeout_s=30,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    assert task is None and now[0] >= 30


class StubSession:
    """A boto3 session whose clients are stubbed (a Stubber per service)."""

    def __init__(self) -> None:
        self.clients = {name: boto3.client(name, region_name="us-west-2") for name in ("ecs", "logs", "ecr")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}

    def client(self, name: str) -> Any:
        return self.clients[name]


def test_migrate_runs_the_task_prints_its_log_and_fails_on_a_failed_task(
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = StubSession()
    ecs, logs = session.stubs["ecs"], session.stubs["logs"]
    ecs.add_response(
        "run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, migrate.run_task_request(STAGE_ENV)
    )
    stopped = {"taskArn": TASK, "lastStatus": "STOPPED", "containers": [{"name": "migrate", "exitCode": 1}]}
    ecs.add_response(
        "describe_tasks", {"tasks": [stopped]}, {"cluster": STAGE_ENV["ClusterName"], "tasks": [TASK]}
    )
    definition = {
        "containerDefinitions": [
            {
                "name": "migrate",
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "yoctogram-staging-migrations-Logs",
                        "awslogs-stream-prefix": "migrate",
                    },
                },
            }
        ]
    }
    ecs.add_response("describe_task_definition", {"taskDefinition": definition})
    logs.add_response(
        "get_log_events",
        {"events": [{"message": "alembic: duplicate column"}]},
        {
            "logGroupName": "yoctogram-staging-migrations-Logs",
            "logStreamName": "migrate/migrate/abc123",
            "startFromHead": True,
        },
    )
    with ecs, logs, pytest.raises(StepError, match="exit code 1"):
        migrate.migrate(session, STAGE_ENV, timeout_s=60)
    assert "alembic: duplicate column" in capsys.readouterr().out


def test_migrate_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in migrate.OUTPUTS:
        monkeypatch.delenv(name, raising=False)
    assert migrate.main([]) == 1
    assert "MigrationTaskDefinitionArn" in capsys.readouterr().err


# --- the image scan -----------------------------------------------------------------------------------
def test_every_image_push_of_the_assembly_is_scanned(synthesized: Synthesized) -> None:
    images = image_scan.images_in(synthesized.outdir)
    assert {i.account for i in images} == {STAGING.account, PROD.account}
    assert len(images) == 2 * len({i.tag for i in images}) >= 4  # every image, in both registries
    assert all(re.fullmatch(r"cdk-hnb659fds-container-assets-\d{12}-us-west-2", i.repository) for i in images)
    assert {"LogRouterImage", "Web/TaskDefinition/App/AssetImage"} <= {n for i in images for n in i.names}


def test_severity_gate() -> None:
    assert image_scan.at_or_above("CRITICAL") == {"CRITICAL"}
    assert image_scan.at_or_above("HIGH") == {"CRITICAL", "HIGH"}
    assert image_scan.roles_by_account(
        "arn:aws:iam::111111111111:role/a, arn:aws:iam::222222222222:role/b"
    ) == {
        "111111111111": "arn:aws:iam::111111111111:role/a",
        "222222222222": "arn:aws:iam::222222222222:role/b",
    }
    with pytest.raises(StepError):
        image_scan.roles_by_account("not-an-arn")


# --- the review's publication -------------------------------------------------------------------------
def run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "reports" / "loadtest" / "260101-000000-ab"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"finished_epoch": 1000.0}))
    (run / "junit.xml").write_text("<testsuite/>")
    (run / "capacity.html").write_text("<html></html>")
    return run


def test_the_review_waits_for_cloudwatch_only_as_long_as_needed() -> None:
    assert review.settle_wait({"finished_epoch": 1000.0}, now=1060.0, settle_s=180) == 120.0
    assert review.settle_wait({"finished_epoch": 1000.0}, now=2000.0, settle_s=180) == 0.0
    assert review.settle_wait({}, now=2000.0, settle_s=180) == 0.0


@mock_aws
def test_publishing_to_s3_replaces_latest(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-west-2")
    s3.create_bucket(Bucket="reports", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="reports", Key="latest/stale.txt", Body=b"from an older run")
    run = run_folder(tmp_path)
    assert review.publish_s3(s3, run, "reports", "exec-1") == "s3://reports/runs/exec-1/"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="reports")["Contents"]}
    names = {"summary.json", "junit.xml", "capacity.html"}
    assert keys == {f"runs/exec-1/{n}" for n in names} | {f"latest/{n}" for n in names}
    page = s3.head_object(Bucket="reports", Key="runs/exec-1/capacity.html")
    assert page["ContentType"] == "text/html; charset=utf-8"  # the console's Open shows it as a page


def test_a_failed_review_is_still_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(review, "capacity_review", lambda run_dir, env: 2)
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "bucket"))
    monkeypatch.setenv("PIPELINE_EXECUTION_ID", "exec-2")
    for name in ("REPORTS_BUCKET", *review.CLOUDWATCH_NAMES):
        monkeypatch.delenv(name, raising=False)
    assert review.main([str(run)]) == 1
    assert "capacity review failed" in capsys.readouterr().err
    assert (tmp_path / "bucket" / "runs" / "exec-2" / "capacity.html").exists()
    assert (tmp_path / "bucket" / "latest" / "junit.xml").exists()
    assert (tmp_path / "reports" / "junit" / "loadtest.xml").read_text() == "<testsuite/>"


def test_a_regression_found_by_the_review_fails_the_step_and_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The review compares again with CloudWatch's figures; a regression then fails the load-test step,
    after the run folder, its page and its JUnit file (with the regressed metrics) are published."""
    monkeypatch.chdir(tmp_path)
    accepted = copy_run(RUN1, tmp_path / "run1")
    assert regression.main(["accept", str(accepted), "--baseline-dir", BASELINE_FETCHED]) == 0
    slow = scaled(RUN2, tmp_path, 3)
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "bucket"))
    monkeypatch.setenv("PIPELINE_EXECUTION_ID", "exec-3")
    monkeypatch.setenv("REVIEW_ASSUME_TASKS", "1")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # the review's subprocess
    for name in ("REPORTS_BUCKET", *review.CLOUDWATCH_NAMES):
        monkeypatch.delenv(name, raising=False)
    assert review.main([str(slow)]) == 1
    assert "the regression gate: REGRESSED against baseline 261204-144816-e7" in capsys.readouterr().err
    published = tmp_path / "bucket" / "runs" / "exec-3"
    assert (published / "capacity.html").exists() and (published / "regression.json").exists()
    junit = (tmp_path / JUNIT_DIR / JUNIT_FILE).read_text()
    assert 'name="loadtest.regression"' in junit and 'type="Regressed"' in junit
