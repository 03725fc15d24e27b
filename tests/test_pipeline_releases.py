"""The record of the release that last reached prod, and the prod change report before the approval, as
the synthesized pipeline runs them: where the steps are, what their roles may do in the reports bucket,
and that nothing expires the record."""

from __future__ import annotations

import json
from typing import Any

from pipeline.commands import (
    BASELINE_FETCHED,
    BASELINE_PREFIX,
    CHANGES_PAGE,
    LOAD_TEST,
    PROD_CHANGES,
    RECORD_RELEASE,
    SMOKE,
)
from pipeline.releases import PREFIX
from stages.config import PIPELINE
from tests.templates import PipelineView, as_list, role_statements
from tests.test_pipeline import deploy_actions

BUCKET_ARN = "arn:aws:s3:::reports"
"""How the reports bucket's ARN reads in the statements below."""


def reports_bucket(pipeline: PipelineView) -> str:
    [bucket] = [
        k for k in pipeline.top.resources(PIPELINE.stack_name, "AWS::S3::Bucket") if k.startswith("Reports")
    ]
    return bucket


def text(value: Any, bucket: str) -> str:
    """A policy resource as a string: the reports bucket's ARN as BUCKET_ARN, other tokens as `<token>`."""
    if isinstance(value, str):
        return value
    if value in ({"Fn::GetAtt": [bucket, "Arn"]}, {"Ref": bucket}):
        return BUCKET_ARN
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(text(part, bucket) for part in parts)
    return "<token>"


def step_role(pipeline: PipelineView, action: dict[str, Any]) -> str:
    role = pipeline.project(action)["Properties"]["ServiceRole"]
    assert set(role) == {"Fn::GetAtt"}, role
    return str(role["Fn::GetAtt"][0])


def bucket_statements(pipeline: PipelineView, role: str) -> list[dict[str, Any]]:
    """The role's statements on the reports bucket, with their resources as strings."""
    bucket = reports_bucket(pipeline)
    found = []
    for statement in role_statements(pipeline.raw, role):
        resources = [text(r, bucket) for r in as_list(statement.get("Resource", []))]
        if any(r.startswith(BUCKET_ARN) for r in resources):
            assert all(r.startswith(BUCKET_ARN) for r in resources), statement  # one bucket per statement
            found.append({**statement, "Resource": resources})
    return found


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource, condition) of every statement, one tuple per pair."""
    return {
        (action, resource, json.dumps(s.get("Condition"), sort_keys=True))
        for s in statements
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    }


def listing(*prefixes: str) -> str:
    return json.dumps({"StringLike": {"s3:prefix": list(prefixes)}}, sort_keys=True)


NONE = json.dumps(None)


def test_the_release_is_recorded_after_prod_passes_its_smoke_test(pipeline: PipelineView) -> None:
    """After every prod deployment and the prod smoke test: a release that failed either is not the one
    the next run compares with (it then sees more changes, never fewer)."""
    actions = pipeline.actions("Prod")
    record = pipeline.action("Prod", RECORD_RELEASE.name)
    smoke = pipeline.action("Prod", SMOKE.name)
    assert actions[-1]["Name"] == RECORD_RELEASE.name
    assert (
        record["RunOrder"] > smoke["RunOrder"] > max(a["RunOrder"] for a in deploy_actions(pipeline, "Prod"))
    )
    assert len(record["InputArtifacts"]) == 2  # the source (its code) and the synth output (cdk.out)
    assert pipeline.commands(pipeline.project(record))[-1] == RECORD_RELEASE.build[-1].text
    [source] = pipeline.actions("Source")
    assert pipeline.env(record) == {
        "PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}",
        "COMMIT_ID": f"#{{{source['Namespace']}.CommitId}}",
    }
    bucket = reports_bucket(pipeline)
    assert pipeline.project_env(record)["REPORTS_BUCKET"] == {"Ref": bucket}


def test_the_recording_role_writes_only_the_release_record(pipeline: PipelineView) -> None:
    role = step_role(pipeline, pipeline.action("Prod", RECORD_RELEASE.name))
    releases = f"{BUCKET_ARN}/{PREFIX}"
    baselines = f"{BUCKET_ARN}/{BASELINE_PREFIX}*"
    assert grants(bucket_statements(pipeline, role)) == {
        ("s3:PutObject", f"{releases}*", NONE),
        ("s3:DeleteObject", f"{releases}latest/*", NONE),  # older files of latest/; never a release's own
        ("s3:GetObject", f"{BUCKET_ARN}/runs/*", NONE),  # the run folder it copies
        # The regression gate's baselines: it adds the release's load test, reading their index first,
        # and may delete nothing there.
        ("s3:PutObject", baselines, NONE),
        ("s3:GetObject", baselines, NONE),
        ("s3:ListBucket", BUCKET_ARN, listing("runs/*", f"{PREFIX}latest/*", f"{BASELINE_PREFIX}*")),
    }


def test_the_load_test_fetches_its_baseline_and_may_only_read_it(pipeline: PipelineView) -> None:
    """The staging load test is compared with the staging run of the last release that reached prod:
    the step fetches it from the bucket first, then runs with it; the baselines are read-only here."""
    action = pipeline.action("Staging", LOAD_TEST.name)
    commands = pipeline.commands(pipeline.project(action))
    fetch, run = (commands.index(c.text) for c in LOAD_TEST.build)
    assert fetch < run
    assert LOAD_TEST.build[0].text.startswith('python -m pipeline.baseline fetch --target "$LOAD_TARGET"')
    assert f"--baseline-dir {BASELINE_FETCHED}" in LOAD_TEST.build[1].text
    assert f"--into {BASELINE_FETCHED}" in LOAD_TEST.build[0].text
    assert LOAD_TEST.env["LOAD_TARGET"] == "staging"
    assert pipeline.project_env(action)["REPORTS_BUCKET"] == {"Ref": reports_bucket(pipeline)}
    role = step_role(pipeline, action)
    baselines = f"{BUCKET_ARN}/{BASELINE_PREFIX}*"
    found = grants(bucket_statements(pipeline, role))
    assert ("s3:GetObject", baselines, NONE) in found
    assert ("s3:ListBucket", BUCKET_ARN, listing("latest/*", f"{BASELINE_PREFIX}*")) in found
    assert not [
        g for g in found if g[0] != "s3:GetObject" and g[1].startswith(f"{BUCKET_ARN}/{BASELINE_PREFIX}")
    ]


def test_the_prod_change_report_comes_before_the_approval(pipeline: PipelineView) -> None:
    changes = pipeline.action("Prod", PROD_CHANGES.name)
    approve = pipeline.action("Prod", "Approve")
    assert changes["RunOrder"] < approve["RunOrder"]
    assert all(changes["RunOrder"] < a["RunOrder"] for a in deploy_actions(pipeline, "Prod"))
    assert len(changes["InputArtifacts"]) == 2  # the source and this run's cloud assembly
    commands = pipeline.commands(pipeline.project(changes))
    assert commands[-1] == "python -m pipeline.prod_changes cdk.out" == PROD_CHANGES.build[-1].text
    assert "npm ci --no-audit --no-fund --loglevel=error" in commands  # the CDK's pinned diff engine
    assert pipeline.env(changes) == {"PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}"}
    assert pipeline.project_env(changes)["REPORTS_BUCKET"] == {"Ref": reports_bucket(pipeline)}


def test_the_comparing_role_only_reads_the_record(pipeline: PipelineView) -> None:
    role = step_role(pipeline, pipeline.action("Prod", PROD_CHANGES.name))
    assert grants(bucket_statements(pipeline, role)) == {
        ("s3:GetObject", f"{BUCKET_ARN}/{PREFIX}*", NONE),
        ("s3:ListBucket", BUCKET_ARN, listing(f"{PREFIX}*")),
        ("s3:PutObject", f"{BUCKET_ARN}/runs/*/changes/*", NONE),  # its report, beside the capacity review
    }


def test_the_approval_links_to_the_prod_change_report(pipeline: PipelineView) -> None:
    comment = pipeline.action("Prod", "Approve")["Configuration"]["CustomData"]
    bucket = reports_bucket(pipeline)
    rendered = text(comment, bucket).replace(BUCKET_ARN, "a" * 63)  # the longest bucket name
    assert (
        f"https://{PIPELINE.region}.console.aws.amazon.com/s3/object/{'a' * 63}?region={PIPELINE.region}"
        f"&bucketType=general&prefix=runs/#{{codepipeline.PipelineExecutionId}}/{CHANGES_PAGE}"
    ) in rendered
    assert len(rendered) <= 1000  # CodePipeline's limit on an approval's comment


def test_no_lifecycle_rule_expires_the_release_record(pipeline: PipelineView) -> None:
    bucket = pipeline.resources[reports_bucket(pipeline)]
    assert bucket["DeletionPolicy"] == "Retain"
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = [r for r in rules if {"ExpirationInDays", "ExpirationDate"} & set(r)]
    assert expiring  # runs/ expires
    for rule in expiring:
        prefix = rule.get("Prefix", rule.get("Filter", {}).get("Prefix", ""))
        assert prefix and not f"{PREFIX}latest/release.json".startswith(prefix), rule
    assert not [r for r in rules if "NoncurrentVersionExpiration" in r or "Transitions" in r]
