"""Reading a synthesized stage: templates by deployment unit, and references between them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from stages.config import EnvironmentConfig

UNITS = ("Edge", "Network", "Data", "Migrations", "App")
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class StageTemplates:
    """The synthesized templates of one stage, by deployment unit."""

    config: EnvironmentConfig
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    def template(self, unit: str) -> Template:
        return Template.from_json(self.raw[unit], skip_cyclical_dependencies_check=True)

    def resources(self, unit: str, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one type in one stack, keyed by logical id (used only to follow references)."""
        return {k: r for k, r in self.raw[unit]["Resources"].items() if r["Type"] == resource_type}

    def output(self, unit: str, name: str) -> Any:
        return self.raw[unit]["Outputs"][name]["Value"]

    def resolve(self, unit: str, value: Any) -> tuple[str, Any]:
        """Follow a weak cross-stack reference (`Fn::GetStackOutput`) to (unit, the other stack's value).

        The reference must name the producer's region, and CloudFormation resolves it in that region.
        """
        if isinstance(value, dict) and "Fn::GetStackOutput" in value:
            ref = value["Fn::GetStackOutput"]
            other = next(u for u in UNITS if self.stack_names[u] == ref["StackName"])
            assert ref["Region"] == self.region(other), ref
            return other, self.raw[other]["Outputs"][ref["OutputName"]]["Value"]
        return unit, value

    def region(self, unit: str) -> str:
        """The region of one stack, from the cloud assembly (`aws://account/region`)."""
        artifacts = self.manifest["artifacts"].values()
        [environment] = [
            a["environment"]
            for a in artifacts
            if a["type"] == "aws:cloudformation:stack"
            and a["properties"].get("stackName") == self.stack_names[unit]
        ]
        return str(environment).rsplit("/", 1)[1]

    def stack_properties(self, unit: str) -> dict[str, Any]:
        """The cloud assembly manifest's properties of one stack (stack name, termination protection)."""
        artifacts = self.manifest["artifacts"].values()
        [artifact] = [
            a
            for a in artifacts
            if a["type"] == "aws:cloudformation:stack"
            and a["properties"].get("stackName") == self.stack_names[unit]
        ]
        return artifact["properties"]

    @property
    def stack_names(self) -> dict[str, str]:
        return {unit: self.config.stack_name(unit.lower()) for unit in UNITS}


@dataclass
class Synthesized:
    """What the session's synthesis produced."""

    app: cdk.App
    outdir: Path
    frontend_dist: Path
    stages: dict[str, StageTemplates]


def load_stage(outdir: Path, stage_id: str, config: EnvironmentConfig) -> StageTemplates:
    """Read one stage's nested assembly from `outdir`."""
    assembly = outdir / f"assembly-{stage_id}"
    stage = StageTemplates(config=config, manifest=json.loads((assembly / "manifest.json").read_text()))
    for unit in UNITS:
        [path] = assembly.glob(f"{stage_id}{unit}*.template.json")
        stage.raw[unit] = json.loads(path.read_text())
    return stage


def subnet_tiers(stage: StageTemplates) -> dict[str, str]:
    """Logical id of each subnet -> its tier, from the subnet-type tag the VPC construct sets."""
    tiers = {}
    for logical_id, subnet in stage.resources("Network", "AWS::EC2::Subnet").items():
        tags = {tag["Key"]: tag["Value"] for tag in subnet["Properties"]["Tags"]}
        tiers[logical_id] = tags["aws-cdk:subnet-type"]
    return tiers
