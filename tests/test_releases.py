"""The release record (`pipeline.releases`) and the prod change report (`pipeline.prod_changes`), run
against the session's real local S3 server and the session's real synthesized prod templates.

"A later release" is a copy of this app's prod assembly with one deliberate edit to a template (the web
task's size, or the database cluster's identifier): the report then comes from the CDK's own diff engine
over real templates, without another synthesis.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.s3server import client
from loadtests.tests.regression_fixtures import RUN1
from pipeline import prod_changes, releases
from pipeline.changes import between, report
from pipeline.commands import BASELINE_PREFIX, CHANGES_PAGE
from tests.templates import ROOT, Synthesized

needs_diff_engine = pytest.mark.skipif(
    not (ROOT / "node_modules" / "@aws-cdk" / "cloudformation-diff").exists(),
    reason="the CDK's diff engine is installed by `npm ci`",
)
WEB_TASK = "Prod/App/Web/TaskDefinition/Resource"
CLUSTER = "Prod/Data/Database/Cluster/Resource"


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return client("s3", moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"reports-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return name


@pytest.fixture
def store(s3: Any, bucket: str) -> releases.S3Store:
    return releases.S3Store(s3, bucket)


def keys(s3: Any, bucket: str, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found |= {o["Key"] for o in page.get("Contents", [])}
    return found


def publish_run(s3: Any, bucket: str, run_id: str, files: dict[str, str]) -> None:
    """What the load-test step (and the change report) published for a run."""
    for name, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"runs/{run_id}/{name}", Body=body.encode())


def later_release(synthesized: Synthesized, folder: Path, edit: Callable[[dict[str, Any]], bool]) -> Path:
    """This app's prod assembly (as the synth step outputs it, less the asset folders), with `edit`
    applied to the template it changes."""
    assembly = releases.copy_stage_assembly(synthesized.outdir, folder)
    edited = 0
    for path in (assembly / "assembly-Prod").glob("*.template.json"):
        template = json.loads(path.read_text())
        if edit(template):
            path.write_text(json.dumps(template, indent=1))
            edited += 1
    assert edited == 1
    return assembly


def resource(template: dict[str, Any], path: str) -> dict[str, Any] | None:
    found = [r for r in template["Resources"].values() if r.get("Metadata", {}).get("aws:cdk:path") == path]
    return found[0] if found else None


def bigger_web_task(template: dict[str, Any]) -> bool:
    task = resource(template, WEB_TASK)
    if task is None:
        return False
    task["Properties"]["Cpu"] = str(int(task["Properties"]["Cpu"]) * 2)
    task["Properties"]["Memory"] = str(int(task["Properties"]["Memory"]) * 2)
    return True


def renamed_cluster(template: dict[str, Any]) -> bool:
    cluster = resource(template, CLUSTER)
    if cluster is None:
        return False
    cluster["Properties"]["DBClusterIdentifier"] += "-renamed"
    return True


def run_step(
    monkeypatch: pytest.MonkeyPatch, main: Callable[[list[str]], int], argv: list[str], **env: str
) -> int:
    """A step's `main` as CodeBuild runs it: its settings in the environment, the local S3 server as the
    endpoint (boto3 reads AWS_ENDPOINT_URL), the step's credentials the session's."""
    for name in (
        "REPORTS_DIR",
        "RELEASES_DIR",
        "REPORTS_BUCKET",
        "COMMIT_ID",
        "CODEBUILD_RESOLVED_SOURCE_VERSION",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return main(argv)


# --- the record ----------------------------------------------------------------------------------------
def test_the_record_holds_the_prod_templates_the_load_test_and_the_metadata(
    synthesized: Synthesized, s3: Any, bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_run(
        s3,
        bucket,
        "exec-1",
        {"summary.json": '{"verdict": "pass"}', "capacity.html": "<html/>", "changes/changes.md": "# Prod"},
    )
    code = run_step(
        monkeypatch,
        releases.main,
        ["record", str(synthesized.outdir)],
        AWS_ENDPOINT_URL=moto_endpoint,
        REPORTS_BUCKET=bucket,
        PIPELINE_EXECUTION_ID="exec-1",
        COMMIT_ID="0123456789abcdef0123456789abcdef01234567",
    )
    assert code == 0
    stored = keys(s3, bucket, releases.PREFIX)
    for where in ("exec-1", "latest"):
        mine = {
            k.removeprefix(f"{releases.PREFIX}{where}/")
            for k in stored
            if k.startswith(f"{releases.PREFIX}{where}/")
        }
        assert {
            "release.json",
            "assembly/manifest.json",
            "loadtest/summary.json",
            "loadtest/capacity.html",
        } <= mine
        assert "changes/changes.md" in mine and "loadtest/changes/changes.md" not in mine
        assert {n for n in mine if n.startswith("assembly/")} == {
            "assembly/manifest.json",
            *(
                f"assembly/assembly-Prod/{p.name}"
                for p in (synthesized.outdir / "assembly-Prod").iterdir()
                if p.is_file()
            ),
        }  # the prod Stage alone: no staging, no pipeline stacks, no asset folders
    body = s3.get_object(Bucket=bucket, Key=f"{releases.PREFIX}latest/release.json")["Body"].read()
    release = json.loads(body)
    assert (release["executionId"], release["commit"], release["stage"]) == (
        "exec-1",
        "0123456789abcdef0123456789abcdef01234567",
        "Prod",
    )
    assert release["loadtest"]["summary"] == {"verdict": "pass"}
    assert {s["stack"] for s in release["stacks"]} == {
        f"Prod/{u}" for u in ("Edge", "Network", "Data", "Migrations", "App")
    }
    images = {
        digest
        for path in (synthesized.outdir / "assembly-Prod").glob("*.assets.json")
        for digest in json.loads(path.read_text()).get("dockerImages", {})
    }
    assert images and {i["asset"] for i in release["images"]} == images
    assert all(i["imageTag"] and i["repositoryName"] for i in release["images"])
    assert sum(f["size"] for f in release["files"].values()) < 2_000_000  # small: templates, not assets


def test_the_release_s_load_test_becomes_the_regression_gate_s_baseline(
    synthesized: Synthesized, s3: Any, bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RecordRelease adds the release's staging run to `baseline/`; a run that passed nothing is skipped
    with a warning (the record itself is this step's job)."""
    run = RUN1  # a saved real run of the load test, labelled here as the pipeline's staging run
    summary = {
        **json.loads((run / "summary.json").read_text()),
        "target": "staging",
        "profile": "staging",
        "shape": "step",
    }
    files = {p.name: p.read_text() for p in run.iterdir() if p.is_file()}
    publish_run(s3, bucket, "exec-1", {**files, "summary.json": json.dumps(summary)})
    env = {"AWS_ENDPOINT_URL": moto_endpoint, "REPORTS_BUCKET": bucket, "COMMIT_ID": "c" * 40}
    argv = ["record", str(synthesized.outdir)]
    assert run_step(monkeypatch, releases.main, argv, PIPELINE_EXECUTION_ID="exec-1", **env) == 0
    prefix = f"{BASELINE_PREFIX}staging/staging/step/"
    assert keys(s3, bucket, BASELINE_PREFIX) == {
        f"{prefix}baseline.json",
        f"{prefix}runs/{summary['run_id']}/metrics.json",
        f"{prefix}runs/{summary['run_id']}/summary.json",
    }
    index = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}baseline.json")["Body"].read())
    assert index["accepted"][0]["source"] == f"release exec-1 ({'c' * 12}) reached prod"

    publish_run(s3, bucket, "exec-2", {**files, "summary.json": json.dumps({**summary, "passed": False})})
    assert run_step(monkeypatch, releases.main, argv, PIPELINE_EXECUTION_ID="exec-2", **env) == 0
    index = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}baseline.json")["Body"].read())
    assert len(index["accepted"]) == 1  # a run that missed its thresholds is no baseline


def test_a_later_release_replaces_latest_and_keeps_the_earlier_one(
    synthesized: Synthesized, s3: Any, bucket: str, store: releases.S3Store, tmp_path: Path
) -> None:
    publish_run(s3, bucket, "exec-1", {"summary.json": "{}", "only-in-1.csv": "a,b"})
    releases.record(synthesized.outdir, store, execution_id="exec-1", commit="c1")
    later = later_release(synthesized, tmp_path / "later", bigger_web_task)
    releases.record(later, store, execution_id="exec-2", commit="c2")  # its load test published nothing
    latest = {
        k.removeprefix(f"{releases.PREFIX}latest/") for k in keys(s3, bucket, f"{releases.PREFIX}latest/")
    }
    assert "loadtest/only-in-1.csv" not in latest  # the older release's files are gone from latest/
    assert f"{releases.PREFIX}exec-1/loadtest/only-in-1.csv" in keys(s3, bucket)  # and kept under its id
    fetched = releases.fetch_latest(store, tmp_path / "fetched")
    assert fetched is not None and (fetched["executionId"], fetched["loadtest"]) == ("exec-2", None)


def test_a_half_written_record_is_refused(
    synthesized: Synthesized, s3: Any, bucket: str, store: releases.S3Store, tmp_path: Path
) -> None:
    """A step that failed halfway through latest/ leaves the older release.json beside newer files."""
    releases.record(synthesized.outdir, store, execution_id="exec-1", commit="c1")
    [template] = [
        k
        for k in keys(s3, bucket, f"{releases.PREFIX}latest/")
        if "/assembly-Prod/ProdApp" in k and k.endswith(".template.json")
    ]
    s3.put_object(Bucket=bucket, Key=template, Body=b'{"Resources": {}}')
    with pytest.raises(releases.ReleaseError, match="failed halfway"):
        releases.fetch_latest(store, tmp_path / "fetched")
    assert releases.fetch_latest(releases.S3Store(s3, bucket, "releases/none/"), tmp_path / "none") is None


def test_every_acknowledgment_is_in_the_assembly(synthesized: Synthesized) -> None:
    """The change reports (`make changes` and the pipeline's) read cdk-nag's acknowledgments from the
    assembly's metadata, which carries those on a stack's constructs: none may sit on the app or a stage,
    outside every stack, where no report would see it come or go."""
    outside = [
        a
        for a in synthesized.acknowledged
        if not any(a.path == stack or a.path.startswith(f"{stack}/") for stack in synthesized.stack_paths)
    ]
    assert not outside, outside
    assert len(between.acknowledgments(synthesized.outdir)) > 20


# --- the prod change report ----------------------------------------------------------------------------
def changes_of(s3: Any, bucket: str, run_id: str) -> tuple[dict[str, Any], str, str]:
    folder = f"runs/{run_id}/{CHANGES_PAGE.rsplit('/', 1)[0]}/"
    read = {n: s3.get_object(Bucket=bucket, Key=folder + n)["Body"].read().decode() for n in between.FILES}
    head = s3.head_object(Bucket=bucket, Key=f"runs/{run_id}/{CHANGES_PAGE}")
    assert head["ContentType"] == "text/html; charset=utf-8"  # the console's Open shows it as a page
    return json.loads(read["changes.json"]), read["changes.md"], read["changes.html"]


@needs_diff_engine
def test_a_first_release_has_nothing_to_compare_with_and_passes(
    synthesized: Synthesized, s3: Any, bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = run_step(
        monkeypatch,
        prod_changes.main,
        [str(synthesized.outdir)],
        AWS_ENDPOINT_URL=moto_endpoint,
        REPORTS_BUCKET=bucket,
        PIPELINE_EXECUTION_ID="exec-1",
    )
    assert code == 0
    data, md, page = changes_of(s3, bucket, "exec-1")
    assert data["firstRelease"] and data["exit"] == 0
    assert "first release: nothing to compare with" in md and "first release: nothing to compare with" in page
    assert {s["stack"] for s in data["stacks"]} == {
        "Edge",
        "Network",
        "Data",
        "Migrations",
        "App",
    }  # prod only
    assert ("App/Web/TaskDefinition: task cpu", "1024") in {(p["what"], p["new"]) for p in data["parameters"]}
    assert not keys(s3, bucket, "releases/")  # comparing writes no record


@needs_diff_engine
def test_a_changed_task_size_is_reported_as_a_modification(
    synthesized: Synthesized,
    s3: Any,
    bucket: str,
    store: releases.S3Store,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    releases.record(synthesized.outdir, store, execution_id="exec-1", commit="c1" * 20)
    later = later_release(synthesized, tmp_path / "later", bigger_web_task)
    code = run_step(
        monkeypatch,
        prod_changes.main,
        [str(later)],
        AWS_ENDPOINT_URL=moto_endpoint,
        REPORTS_BUCKET=bucket,
        PIPELINE_EXECUTION_ID="exec-2",
    )
    assert code == 0
    data, md, _ = changes_of(s3, bucket, "exec-2")
    assert not data["firstRelease"] and not data["blocking"]
    [app] = [s for s in data["stacks"] if s["stack"] == "App"]
    assert app["status"] == "changed" and app["modified"] >= 1
    [task] = [r for r in app["resources"] if r["path"] == "App/Web/TaskDefinition"]
    assert task["action"] == "modified" and {"Cpu", "Memory"} <= {p["name"] for p in task["properties"]}
    assert not data["stateful"]  # a task definition's new revision loses no data
    assert {s["stack"] for s in data["stacks"] if s["status"] == "unchanged"} == {
        "Edge",
        "Network",
        "Data",
        "Migrations",
    }
    changed = {(p["what"], p["old"], p["new"]) for p in data["parameters"]}
    assert ("App/Web/TaskDefinition: task cpu", "1024", "2048") in changed
    assert ("App/Web/TaskDefinition: task memory", "2048", "4096") in changed
    assert "execution exec-1" in md and "c1c1c1c1c1" in md  # what it was compared with
    assert not data["acknowledgments"]["added"] and not data["acknowledgments"]["removed"]


@needs_diff_engine
def test_a_replaced_database_is_stated_at_the_top_and_fails(
    synthesized: Synthesized,
    s3: Any,
    bucket: str,
    store: releases.S3Store,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    releases.record(synthesized.outdir, store, execution_id="exec-1", commit="c1")
    later = later_release(synthesized, tmp_path / "later", renamed_cluster)
    code = run_step(
        monkeypatch,
        prod_changes.main,
        [str(later)],
        AWS_ENDPOINT_URL=moto_endpoint,
        REPORTS_BUCKET=bucket,
        PIPELINE_EXECUTION_ID="exec-2",
    )
    assert code == 1  # as `make changes`: the run stops before the approval
    data, md, page = changes_of(s3, bucket, "exec-2")  # published all the same, for the reviewer
    [cluster] = [s for s in data["blocking"] if s["type"] == "AWS::RDS::DBCluster"]
    assert cluster["verdict"] == report.DATA_LOSS
    top = md.split("## ", 1)[0]  # before the first section
    assert between.DANGER_TITLE in top and cluster["logicalId"] in top and "changes-allowed.toml" in top
    assert page.index(between.DANGER_TITLE) < page.index("<h2>")
    assert report.verdict_line(data).startswith("FAIL")


@needs_diff_engine
def test_the_allowance_lets_an_intended_replacement_through(synthesized: Synthesized, tmp_path: Path) -> None:
    base = releases.copy_stage_assembly(synthesized.outdir, tmp_path / "base")
    later = later_release(synthesized, tmp_path / "later", renamed_cluster)
    blocked = between.compare(base, later, base_label="b", head_label="h", stages={"Prod"}, allowances=[])
    allowances = [
        report.Allowance(
            s["stage"], s["stack"], s["logicalId"], "Restored into a new cluster from a snapshot."
        )
        for s in blocked["blocking"]
    ]
    allowed = between.compare(
        base, later, base_label="b", head_label="h", stages={"Prod"}, allowances=allowances
    )
    assert blocked["exit"] == 1 and allowed["exit"] == 0
    assert between.DANGER_TITLE not in between.markdown(allowed, "t")


@needs_diff_engine
def test_the_rehearsal_stand_in_records_and_compares_in_folders(
    synthesized: Synthesized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make rehearse`: RELEASES_DIR stands in for the record, REPORTS_DIR for the reports bucket."""
    folders = {"RELEASES_DIR": str(tmp_path / "releases"), "REPORTS_DIR": str(tmp_path / "bucket")}
    assert (
        run_step(
            monkeypatch, prod_changes.main, [str(synthesized.outdir)], PIPELINE_EXECUTION_ID="r-1", **folders
        )
        == 0
    )
    first = json.loads((tmp_path / "bucket" / "runs" / "r-1" / "changes" / "changes.json").read_text())
    assert first["firstRelease"]
    (tmp_path / "bucket" / "runs" / "r-1" / "summary.json").write_text('{"verdict": "pass"}')
    assert (
        run_step(
            monkeypatch,
            releases.main,
            ["record", str(synthesized.outdir)],
            PIPELINE_EXECUTION_ID="r-1",
            **folders,
        )
        == 0
    )
    assert json.loads((tmp_path / "releases" / "latest" / "release.json").read_text())["executionId"] == "r-1"
    assert (tmp_path / "releases" / "r-1" / "loadtest" / "summary.json").exists()
    assert (tmp_path / "releases" / "r-1" / "changes" / "changes.json").exists()
    assert (
        run_step(
            monkeypatch, prod_changes.main, [str(synthesized.outdir)], PIPELINE_EXECUTION_ID="r-2", **folders
        )
        == 0
    )
    second = json.loads((tmp_path / "bucket" / "runs" / "r-2" / "changes" / "changes.json").read_text())
    assert not second["firstRelease"] and not [s for s in second["stacks"] if s["status"] != "unchanged"]
