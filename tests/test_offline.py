"""Synthesis needs no AWS account, no network and no Docker: nothing is looked up, tools are pinned."""

from __future__ import annotations

import json
import re

from tests.templates import ROOT, Synthesized


def test_no_context_lookups(synthesized: Synthesized) -> None:
    manifests = [synthesized.outdir / "manifest.json", *synthesized.outdir.glob("assembly-*/manifest.json")]
    assert len(manifests) == 3
    for manifest in manifests:
        assert not json.loads(manifest.read_text()).get("missing"), manifest


def test_committed_context_holds_no_lookup_results() -> None:
    context = json.loads((ROOT / "cdk.context.json").read_text())
    assert not [key for key in context if ":" in key and not key.startswith("@aws-cdk/")], context


def test_cdk_cli_pinned_exactly() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["devDependencies"]["aws-cdk"])
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == package["devDependencies"]["aws-cdk"]


def test_infra_requirements_pinned_exactly() -> None:
    lines = [
        line.split("#", 1)[0].strip()
        for line in (ROOT / "requirements" / "infra.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", line), line
    names = {line.split("==")[0].lower() for line in lines}
    assert {"aws-cdk-lib", "constructs", "cdk-nag", "cfn-lint"} <= names


def test_images_are_assets_built_by_the_pipeline_not_at_synth(synthesized: Synthesized) -> None:
    """Container images are Docker assets (hashed at synth, built on publish) for ARM64."""
    assets = []
    for path in synthesized.outdir.glob("assembly-*/*.assets.json"):
        assets += json.loads(path.read_text()).get("dockerImages", {}).values()
    platforms = {a["source"].get("platform") for a in assets}
    assert assets and platforms == {"linux/arm64"}
