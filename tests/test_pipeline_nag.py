"""The pipeline's stacks pass the same gates as the stages: cdk-nag (reasoned acknowledgments) and cfn-lint."""

from __future__ import annotations

import json
import re

from pipeline.nag import KNOWN
from pipeline.pipeline_stack import PipelineStack
from tests.templates import ROOT, Synthesized

TOP_LEVEL = ("Pipeline", "StagingPipelineAccess", "ProdPipelineAccess")


def test_every_known_finding_is_still_found(synthesized: Synthesized) -> None:
    """An acknowledgment that matches nothing any more is stale: remove it from pipeline/nag.py."""
    stack = synthesized.app.node.find_child("Pipeline")
    assert isinstance(stack, PipelineStack)
    assert stack.acknowledged == set(KNOWN)


def test_the_pipelines_acknowledgments_are_narrow(synthesized: Synthesized) -> None:
    """Outside the stages (tests/test_nag.py checks theirs): findings of single resources, three rules."""
    found = [
        (path, rule)
        for path, rule, _, _ in synthesized.acknowledged
        if not path.startswith(("Staging/", "Prod/"))
    ]
    assert found
    for path, rule in found:
        stack = path.split("/", 1)[0]
        assert stack in TOP_LEVEL or stack.startswith("cross-region-stack-"), path
        assert re.fullmatch(r"AwsSolutions-(IAM5\[.+\]|IAM4\[.+\]|S1)", rule), (path, rule)
        assert path.endswith(("/Resource", "/DefaultPolicy")), path


def test_every_top_level_template_is_clean(synthesized: Synthesized) -> None:
    lint = synthesized.cfn_lint["top"]  # started by the session's synthesis (tests/conftest.py)
    templates = [arg for arg in lint.argv if arg.endswith(".template.json")]
    # the pipeline, the two access stacks and CodePipeline's us-east-1 replica bucket
    assert len(templates) == 4
    code, output = lint.result()
    assert code == 0, output


def test_synthesis_of_the_pipeline_leaves_no_warning(synthesized: Synthesized) -> None:
    found = []
    for path in synthesized.outdir.glob("*.metadata.json"):
        for construct, entries in json.loads(path.read_text()).items():
            found += [
                (construct, e["data"]) for e in entries if e["type"] in ("aws:cdk:warning", "aws:cdk:error")
            ]
    assert not found, found


def test_the_pipeline_needs_no_lookup(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    assert not manifest.get("missing")
    assert not [
        key for key in json.loads((ROOT / "cdk.json").read_text())["context"] if re.search(r":\d{12}:", key)
    ]
