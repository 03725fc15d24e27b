"""The web client's deployment into the site bucket, its config.json, and a missing build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stages.app import build_stages_app
from stages.components.web_client import MissingFrontendBuild, frontend_build
from tests.conftest import STAND_IN_ASSET
from tests.templates import StageTemplates, Synthesized


def deployments(stage: StageTemplates) -> dict[str, tuple[str, dict[str, Any]]]:
    """`assets` and `entry` BucketDeployment custom resources: (logical id, properties)."""
    found = {}
    for logical_id, resource in stage.resources("App", "Custom::CDKBucketDeployment").items():
        kind = "entry" if "DistributionId" in resource["Properties"] else "assets"
        assert kind not in found
        found[kind] = (logical_id, resource["Properties"])
    return found


def staged_files(synthesized: Synthesized, properties: dict[str, Any]) -> dict[str, str]:
    """Relative path -> text of every file the deployment's sources hold (from the staged assets)."""
    files = {}
    for key in properties["SourceObjectKeys"]:
        folder = synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
        files.update({str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()})
    return files


def test_hashed_assets_immutable_and_never_pruned(stage: StageTemplates, synthesized: Synthesized) -> None:
    _, assets = deployments(stage)["assets"]
    site_bucket = stage.raw["App"]["Resources"]
    assert site_bucket[assets["DestinationBucketName"]["Ref"]]["Type"] == "AWS::S3::Bucket"
    assert assets["SystemMetadata"] == {"cache-control": "public, max-age=31536000, immutable"}
    assert assets["Prune"] is False
    assert "DistributionId" not in assets  # new names, never an invalidation
    assert staged_files(synthesized, assets) == {
        STAND_IN_ASSET: (synthesized.frontend_dist / STAND_IN_ASSET).read_text()
    }


def test_entry_page_and_config_revalidated_and_invalidated(
    stage: StageTemplates, synthesized: Synthesized
) -> None:
    assets_id, assets = deployments(stage)["assets"]
    entry_id, entry = deployments(stage)["entry"]
    assert entry["DestinationBucketName"] == assets["DestinationBucketName"]
    assert entry["SystemMetadata"] == {"cache-control": "no-cache"}
    assert entry["Prune"] is False
    [distribution] = stage.resources("App", "AWS::CloudFront::Distribution")
    assert entry["DistributionId"] == {"Ref": distribution}
    assert entry["DistributionPaths"] == ["/index.html", "/config.json"]
    # The page that names the new assets is uploaded only once they are.
    assert assets_id in stage.raw["App"]["Resources"][entry_id]["DependsOn"]
    files = staged_files(synthesized, entry)
    assert set(files) == {"index.html", "config.json"}
    assert files["index.html"] == (synthesized.frontend_dist / "index.html").read_text()


def test_config_json_per_environment(stage: StageTemplates, synthesized: Synthesized) -> None:
    _, entry = deployments(stage)["entry"]
    config = json.loads(staged_files(synthesized, entry)["config.json"])
    assert config == {
        "apiBase": "/api/v1",
        "maxUploadBytes": stage.config.max_upload_bytes,
        "environment": stage.config.name,
        "build": {"commit": "unknown"},  # the session's synthesis names no commit (the pipeline's does)
    }


def test_deployment_function_logs_with_retention_and_no_managed_policy(stage: StageTemplates) -> None:
    [handler] = [
        f["Properties"]
        for f in stage.resources("App", "AWS::Lambda::Function").values()
        if "CDKBucketDeployment" in f.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    log_group = stage.resources("App", "AWS::Logs::LogGroup")[handler["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == stage.config.log_retention_days
    role = stage.resources("App", "AWS::IAM::Role")[handler["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert "ManagedPolicyArns" not in role


def test_a_missing_build_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(MissingFrontendBuild, match=r"make frontend"):
        frontend_build(tmp_path / "dist")
    (tmp_path / "dist").mkdir()
    with pytest.raises(MissingFrontendBuild, match=r"index\.html is missing"):
        build_stages_app(str(tmp_path / "cdk.out"), frontend_dist=tmp_path / "dist")
    (tmp_path / "dist" / "index.html").write_text("<!doctype html>")
    assert frontend_build(tmp_path / "dist") == tmp_path / "dist"
