"""The one page the prod approval opens (`pipeline.approval`), rendered from run folders that the real
steps' code wrote: a load test's folder, its capacity review and its regression verdict (`loadtests`;
with no accepted baseline, the gate's "no comparable baseline"), the prod change report
(`pipeline.changes.between`, over this app's real prod templates), the image scan's result
(`pipeline.image_scan` against a stubbed ECR). A verdict with regressed and improved metrics is written
by hand in the gate's `regression.json` format (`regression()`, labelled so)."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from loadtests.capacity import cli as capacity
from loadtests.tests.capacity_fixtures import make_run
from pipeline import approval, image_scan, releases
from pipeline.changes import between
from pipeline.commands import APPROVAL, APPROVAL_PAGE, CHANGES_PAGE, PROD_CHANGES, console_object_url
from pipeline.commands import IMAGE_SCAN as IMAGE_SCAN_STEP
from pipeline.image_scan_allowlist import Allowed
from tests.templates import PipelineView, Synthesized
from tests.test_pipeline_releases import (
    BUCKET_ARN,
    NONE,
    bucket_statements,
    grants,
    listing,
    reports_bucket,
    step_role,
    text,
)
from tests.test_releases import (  # noqa: F401 (fixtures)
    bucket,
    later_release,
    needs_diff_engine,
    renamed_cluster,
    run_step,
    s3,
)

RUN = "exec-42"
TODAY = date(2026, 12, 4)
IMAGE = image_scan.Image(
    "111111111111",
    "us-west-2",
    "cdk-hnb659fds-container-assets-111111111111-us-west-2",
    "a" * 64,
    ("LogRouterImage",),
)


def load_test(folder: Path, *, thresholds_failed: bool = False) -> None:
    """A run folder as the load-test step leaves it: Locust's summary and the capacity review."""
    make_run(folder, thresholds_failed=thresholds_failed)
    assert capacity.main([str(folder), "--assume-tasks", "1"]) == 0


def regression(folder: Path, *, passed: bool, comparable: bool = True) -> None:
    """By hand, in the regression gate's `regression.json` format (loadtests/regression/report.py)."""
    verdicts = [
        {
            "scope": "overall",
            "metric": "p95_ms",
            "label": "overall: p95",
            "verdict": "same" if passed else "regressed",
            "explanation": "overall: p95: 200 ms -> 610 ms (+410 ms, +205%); counts beyond 30 ms and the noise 12 ms"
            if not passed
            else "overall: p95: 200 ms -> 204 ms (+4 ms, +2%)",
        },
        {
            "scope": "overall",
            "metric": "rps",
            "label": "overall: throughput",
            "verdict": "improved",
            "explanation": "overall: throughput: 20.0 -> 26.0 req/s (+6.0, +30%)",
        },
    ]
    data = {
        "headline": ("no regression" if passed else "REGRESSED")
        + " against baseline 261201-101010 (x regressed, 1 improved)",
        "passed": passed,
        "comparable": comparable,
        "reason": "" if comparable else "nothing accepted yet for target staging",
        "counts": {
            "regressed": 0 if passed else 1,
            "improved": 1,
            "same": 1 if passed else 0,
            "not judged": 0,
        },
        "baseline": {"run_id": "261201-101010", "started_at": "2026-12-01T10:10:10Z"} if comparable else None,
        "verdicts": verdicts if comparable else [],
    }
    (folder / "regression.json").write_text(json.dumps(data))


def changes_first_release(folder: Path, synthesized: Synthesized) -> dict[str, Any]:
    data = between.compare(
        None, synthesized.outdir, base_label="nothing", head_label="this run", stages={"Prod"}
    )
    between.write(data, folder / "changes", "Prod changes since the last release")
    return data


def scan(folder: Path, *, allowed: bool) -> None:
    """The image scan's result as `python -m pipeline.image_scan` publishes it (into REPORTS_DIR)."""
    ecr = boto3.client("ecr", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    ids = {"repositoryName": IMAGE.repository, "imageIds": [{"imageTag": IMAGE.tag}]}
    finding = {
        "name": "CVE-2023-4911",
        "severity": "CRITICAL",
        "uri": "https://example.com/CVE-2023-4911",
        "attributes": [
            {"key": "package_name", "value": "glibc"},
            {"key": "package_version", "value": "2.26"},
        ],
    }
    entry = Allowed(
        finding="CVE-2023-4911", reason="No fixed glibc for Amazon Linux 2 yet.", expires=date(2027, 1, 31)
    )
    results: list[dict[str, Any]] = []
    with Stubber(ecr) as stub:
        stub.add_response(
            "describe_images", {"imageDetails": [{"imageScanStatus": {"status": "COMPLETE"}}]}, ids
        )
        stub.add_response(
            "describe_image_scan_findings",
            {"imageScanFindings": {"findings": [finding]}},
            {"repositoryName": IMAGE.repository, "imageId": {"imageTag": IMAGE.tag}},
        )
        failure, _ = image_scan.gate(
            ecr,
            IMAGE,
            fail_on="CRITICAL",
            timeout_s=60,
            allowlist=(entry,) if allowed else (),
            today=TODAY,
            unfixable_fails=False,
            sleep=lambda _: None,
            results=results,
        )
    data = image_scan.result(results, fail_on="CRITICAL", passed=failure is None, problem=failure, unused=[])
    reports = folder.parent.parent
    assert image_scan.publish(data, {"REPORTS_DIR": str(reports), "PIPELINE_EXECUTION_ID": folder.name})
    assert (folder / approval.IMAGE_SCAN).is_file()


def statuses(page: str) -> list[tuple[str, str]]:
    """(status, check) of the summary table at the top of the page, in order."""
    top = page.split("</table>", 1)[0]
    found = re.findall(
        r"<tr><td><span class='badge'[^>]*>([^<]+)</span></td><td><a href='#[^']+'>([^<]+)</a>", top
    )
    return [(html.unescape(status), html.unescape(check)) for status, check in found]


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reports" / "runs" / RUN
    folder.mkdir(parents=True)
    return folder


def test_every_report_with_its_status_at_the_top(run_folder: Path, synthesized: Synthesized) -> None:
    load_test(run_folder)
    regression(run_folder, passed=True)
    changes_first_release(run_folder, synthesized)
    scan(run_folder, allowed=True)
    page = approval.render(run_folder, run_id=RUN, link=lambda name: name)
    assert statuses(page) == [
        ("pass", "Capacity review (staging load test)"),
        ("pass", "Regression verdict (vs the last accepted release)"),
        ("pass", "Prod change report (since the last release)"),
        ("review", "Image scan (ECR findings of this run's images)"),  # a finding the allowlist lets through
        ("review", "Permission broadening (IAM and security groups)"),  # a first release: all of it is new
    ]
    assert "Nothing failed; look at the sections marked review or missing" in page
    top = html.unescape(page.split("</table>", 1)[0])
    assert "all " in top and "thresholds held" in top
    assert "first release: nothing to compare with" in top
    assert "1 finding(s) allowed by the allowlist" in top
    # the whole capacity review and change report are folded into this one page
    frames = re.findall(r"<iframe sandbox [^>]*srcdoc='([^']*)'", page)
    assert len(frames) == 2
    assert "capacity" in frames[0].lower() and "Prod changes since the last release" in frames[1]
    assert "allowed until 2027-01-31: No fixed glibc" in page
    assert "improved" in page.lower() and "throughput: 20.0 -&gt; 26.0 req/s" in page
    assert "href='changes/changes.html'" in page and "href='capacity.html'" in page


def test_an_empty_run_folder_says_what_is_missing(run_folder: Path) -> None:
    page = approval.render(run_folder, run_id=RUN, link=lambda name: name)
    assert [status for status, _ in statuses(page)] == ["missing"] * 5
    assert "no regression verdict" in page
    assert "did the load test run?" in page and "did ProdChanges run?" in page
    assert "<iframe" not in page


def test_a_missed_threshold_a_regression_and_a_critical_finding_fail(
    run_folder: Path, synthesized: Synthesized
) -> None:
    load_test(run_folder, thresholds_failed=True)
    regression(run_folder, passed=False)
    changes_first_release(run_folder, synthesized)
    scan(run_folder, allowed=False)
    page = approval.render(run_folder, run_id=RUN, link=lambda name: name)
    found = dict((check.split(" (")[0], status) for status, check in statuses(page))
    assert found["Capacity review"] == found["Regression verdict"] == found["Image scan"] == "FAIL"
    assert "Something failed: do not approve" in page
    assert "thresholds missed" in page and "REGRESSED" in page and "+205%" in page
    assert "the CRITICAL gate failed" in page


def test_no_baseline_yet_passes_and_says_so(run_folder: Path) -> None:
    regression(run_folder, passed=True, comparable=False)
    section = approval.regression_section(run_folder, lambda name: name)
    assert section.status == approval.PASS
    assert "no regression" in section.headline  # its own headline, which names the missing baseline


@needs_diff_engine
def test_prod_data_loss_is_a_failed_section_with_the_danger_first(
    run_folder: Path, synthesized: Synthesized, tmp_path: Path
) -> None:
    base = releases.copy_stage_assembly(synthesized.outdir, tmp_path / "base")
    later = later_release(synthesized, tmp_path / "later", renamed_cluster)
    data = between.compare(base, later, base_label="b", head_label="h", stages={"Prod"}, allowances=[])
    between.write(data, run_folder / "changes", "Prod changes since the last release")
    section = approval.changes_section(run_folder, lambda name: name)
    assert section.status == approval.FAIL
    assert section.headline.startswith("DANGER: ") and "replaced or removed" in section.headline
    assert "DATA LOSS" in section.body.upper()


def test_the_rehearsal_writes_the_page_beside_the_reports(
    run_folder: Path, synthesized: Synthesized, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_test(run_folder)
    changes_first_release(run_folder, synthesized)
    reports = run_folder.parent.parent
    assert run_step(monkeypatch, approval.main, [], REPORTS_DIR=str(reports), PIPELINE_EXECUTION_ID=RUN) == 0
    page = (run_folder / APPROVAL_PAGE).read_text()
    # the load test's own regression gate found no baseline yet (it passes, and says so); no image scan here
    assert [s for s, _ in statuses(page)] == ["pass", "pass", "pass", "missing", "review"]
    assert "no comparable baseline: nothing accepted yet" in html.unescape(page)


def test_the_pipeline_publishes_the_page_with_console_links(
    run_folder: Path,
    synthesized: Synthesized,
    s3: Any,  # noqa: F811
    bucket: str,  # noqa: F811
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load_test(run_folder)
    changes_first_release(run_folder, synthesized)
    for path in run_folder.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"runs/{RUN}/{path.relative_to(run_folder).as_posix()}")
    code = run_step(
        monkeypatch,
        approval.main,
        [],
        AWS_ENDPOINT_URL=moto_endpoint,
        REPORTS_BUCKET=bucket,
        PIPELINE_EXECUTION_ID=RUN,
        AWS_REGION="us-west-2",
    )
    assert code == 0
    key = f"runs/{RUN}/{APPROVAL_PAGE}"
    assert s3.head_object(Bucket=bucket, Key=key)["ContentType"] == "text/html; charset=utf-8"
    page = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    # the load test's own regression gate found no baseline yet (it passes, and says so); no image scan here
    assert [s for s, _ in statuses(page)] == ["pass", "pass", "pass", "missing", "review"]
    assert "no comparable baseline: nothing accepted yet" in html.unescape(page)
    # opened through the console (a presigned page cannot follow relative links to other objects)
    link = console_object_url("us-west-2", bucket, f"runs/{RUN}/{CHANGES_PAGE}").replace("&", "&amp;")
    assert f"href='{link}'" in page


# --- in the synthesized pipeline ---------------------------------------------------------------------
def test_the_page_is_made_after_the_change_report_and_opened_by_the_approval(pipeline: PipelineView) -> None:
    page = pipeline.action("Prod", APPROVAL.name)
    assert (
        pipeline.action("Prod", PROD_CHANGES.name)["RunOrder"]
        < page["RunOrder"]
        < pipeline.action("Prod", "Approve")["RunOrder"]
    )
    assert pipeline.commands(pipeline.project(page))[-1] == "python -m pipeline.approval"
    assert pipeline.env(page) == {"PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}"}
    assert pipeline.project_env(page)["REPORTS_BUCKET"] == {"Ref": reports_bucket(pipeline)}
    link = pipeline.action("Prod", "Approve")["Configuration"]["ExternalEntityLink"]
    assert text(link, reports_bucket(pipeline)).endswith(f"/{APPROVAL_PAGE}")


def test_the_pages_role_reads_the_run_folder_and_writes_only_the_page(pipeline: PipelineView) -> None:
    role = step_role(pipeline, pipeline.action("Prod", APPROVAL.name))
    assert grants(bucket_statements(pipeline, role)) == {
        ("s3:GetObject", f"{BUCKET_ARN}/runs/*", NONE),
        # listing, so that a report a run did not write is a 404, not a 403
        ("s3:ListBucket", BUCKET_ARN, listing("runs/*")),
        ("s3:PutObject", f"{BUCKET_ARN}/runs/*/{APPROVAL_PAGE}", NONE),
    }


def test_the_image_scan_publishes_only_its_result(pipeline: PipelineView) -> None:
    action = pipeline.action("Staging", IMAGE_SCAN_STEP.name)
    assert pipeline.env(action) == {"PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}"}
    assert pipeline.project_env(action)["REPORTS_BUCKET"] == {"Ref": reports_bucket(pipeline)}
    assert grants(bucket_statements(pipeline, step_role(pipeline, action))) == {
        ("s3:PutObject", f"{BUCKET_ARN}/runs/*/{approval.IMAGE_SCAN.rsplit('/', 1)[0]}/*", NONE)
    }


def test_the_image_scans_result_reaches_the_run_folder_in_the_bucket(
    s3: Any,  # noqa: F811
    bucket: str,  # noqa: F811
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = image_scan.result([], fail_on="CRITICAL", passed=True, problem=None, unused=["CVE-2020-0001"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    where = image_scan.publish(data, {"REPORTS_BUCKET": bucket, "PIPELINE_EXECUTION_ID": RUN})
    key = f"runs/{RUN}/{approval.IMAGE_SCAN}"
    assert where == f"s3://{bucket}/{key}"
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == data
    assert image_scan.publish(data, {"REPORTS_BUCKET": bucket}) is None  # no run: nowhere to put it
