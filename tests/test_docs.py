"""The diagrams cannot go stale: they name every stack and every pipeline stage the synthesized app has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.templates import PipelineView, Synthesized

ROOT = Path(__file__).resolve().parents[1]
DIAGRAMS = "\n".join(
    re.findall(r"```mermaid\n(.*?)```", (ROOT / "docs" / "architecture.md").read_text(), flags=re.DOTALL)
)


def _stage_stacks(synthesized: Synthesized) -> set[str]:
    """Construct ids of every stack inside the stages, read from the cloud assembly's manifests."""
    names = set()
    for manifest in synthesized.outdir.glob("assembly-*/manifest.json"):
        for artifact in json.loads(manifest.read_text())["artifacts"].values():
            if artifact["type"] == "aws:cloudformation:stack":
                names.add(artifact["displayName"].split("/")[-1])
    return names


def test_the_architecture_diagram_names_every_stack_of_a_stage(synthesized: Synthesized) -> None:
    stacks = _stage_stacks(synthesized)
    assert stacks == {"Edge", "Network", "Data", "Migrations", "App"}
    missing = [name for name in sorted(stacks) if f'{name}["{name} stack' not in DIAGRAMS]
    assert missing == [], f"docs/architecture.md has no subgraph for the stacks {missing}"


def test_the_pipeline_diagram_names_every_pipeline_stage(pipeline: PipelineView) -> None:
    [codepipeline] = [r for r in pipeline.resources.values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    stage_names = [stage["Name"] for stage in codepipeline["Properties"]["Stages"]]
    assert len(stage_names) >= 6
    missing = [name for name in stage_names if not re.search(rf"\b{re.escape(name)}\b", DIAGRAMS)]
    assert missing == [], f"docs/architecture.md lacks the pipeline stages {missing}"
