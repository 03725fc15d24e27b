"""Reading a synthesized stage: templates by deployment unit, and references between them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import aws_cdk as cdk
from aws_cdk.assertions import Template

from pipeline.changes import between
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

    NAME_PROPERTIES = (
        "Name",
        "QueueName",
        "ClusterName",
        "DBClusterIdentifier",
        "BucketName",
        "LogGroupName",
    )

    def owner(self, unit: str, value: Any) -> tuple[str, str]:
        """(unit, logical id) of the resource a value in `unit` stands for: a reference (weak ones
        followed), or one of the fixed names (`stages.names`) as a name, an ARN or a queue URL."""
        unit, value = self.resolve(unit, value)
        if isinstance(value, dict) and "Ref" in value:
            return unit, value["Ref"]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return unit, value["Fn::GetAtt"][0]
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            if all(isinstance(part, str) for part in parts):
                value = separator.join(parts)
        assert isinstance(value, str), value
        for other in UNITS:
            for logical_id, resource in self.raw[other]["Resources"].items():
                properties = resource.get("Properties", {})
                for key in self.NAME_PROPERTIES:
                    name = properties.get(key)
                    if isinstance(name, str) and (
                        value == name
                        or value.endswith((f":{name}", f"/{name}", f":{name}-??????"))
                        or value.rstrip("*").endswith(f":secret:{name}-??????")
                    ):
                        return other, logical_id
        raise AssertionError(f"no resource of the stage is named by {value!r}")

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
class TopLevel:
    """The stacks outside the stages: the pipeline, the access stacks, CodePipeline's support stack."""

    outdir: Path
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Templates by stack name."""
    manifest: dict[str, Any] = field(default_factory=dict)

    def template(self, stack_name: str) -> Template:
        return Template.from_json(self.raw[stack_name], skip_cyclical_dependencies_check=True)

    def resources(self, stack_name: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.raw[stack_name]["Resources"].items() if r["Type"] == resource_type}

    def environment(self, stack_name: str) -> str:
        """`aws://account/region` of one stack, from the cloud assembly."""
        [artifact] = [
            a
            for a in self.manifest["artifacts"].values()
            if a["type"] == "aws:cloudformation:stack" and a["properties"].get("stackName") == stack_name
        ]
        return str(artifact["environment"])


@dataclass
class Background:
    """A command started as soon as its input exists and read when a test needs its result: cfn-lint
    runs on the other core while the session's tests go on."""

    argv: list[str]
    process: subprocess.Popen[bytes]
    output: Path

    @classmethod
    def start(cls, argv: list[str], output: Path, cwd: Path) -> Background:
        with output.open("wb") as out:
            process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        return cls(argv=argv, process=process, output=output)

    def result(self, timeout: float = 600) -> tuple[int, str]:
        """(exit code, stdout and stderr), waiting for the command to end."""
        code = self.process.wait(timeout=timeout)
        return code, self.output.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Synthesized:
    """What the session's synthesis produced."""

    app: cdk.App
    outdir: Path
    frontend_dist: Path
    stages: dict[str, StageTemplates]
    top: TopLevel | None = None
    cfn_lint: dict[str, Background] = field(default_factory=dict)
    """cfn-lint over the stages' templates ("stages") and the pipeline's ("top"), already running."""

    @cached_property
    def _outside_stacks(self) -> tuple[frozenset[str], list[Acknowledged]]:
        """(the path of every stack, the acknowledgments on constructs outside every stack): a walk down
        from the app that stops at each stack, so it visits the app, the stages and little else."""
        stacks: set[str] = set()
        found: list[Acknowledged] = []
        pending = [self.app.node]
        while pending:
            node = pending.pop()
            for entry in node.metadata:
                if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                    found += [
                        Acknowledged(node.path, rule.removeprefix("Annotation::"), str(reason), True)
                        for rule, reason in entry.data.items()
                    ]
            for child in node.children:
                if cdk.Stack.is_stack(child):
                    stacks.add(child.node.path)
                else:
                    pending.append(child.node)
        return frozenset(stacks), found

    @property
    def stack_paths(self) -> frozenset[str]:
        """The construct path of every stack of the app."""
        return self._outside_stacks[0]

    @cached_property
    def acknowledged(self) -> list[Acknowledged]:
        """Every cdk-nag acknowledgment of the app. Those on constructs in a stack are read from the
        assembly (the CDK writes each construct's metadata into its stack's metadata file; reading it
        from each construct costs seconds of jsii calls); those on constructs outside every stack (the
        app, a stage), which the assembly cannot carry, from the constructs themselves."""
        in_stacks = [
            Acknowledged(path, rule, reason, path in self.stack_paths)
            for (path, rule), reason in between.acknowledgments(self.outdir).items()
        ]
        return in_stacks + self._outside_stacks[1]


class Acknowledged(NamedTuple):
    path: str
    rule: str
    reason: str
    whole: bool
    """On a whole stack, stage or app rather than on one of their constructs."""


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


def load_top_level(outdir: Path) -> TopLevel:
    """Read the templates of the cloud assembly's own stacks (not the stages' nested assemblies)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    top = TopLevel(outdir=outdir, manifest=manifest)
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack":
            path = outdir / artifact["properties"]["templateFile"]
            top.raw[artifact["properties"]["stackName"]] = json.loads(path.read_text())
    return top


TOKEN = "<token>"
"""What an intrinsic function inside a buildspec string reads as (the report group's ARN, a function name)."""


@dataclass
class PipelineView:
    """The pipeline stack's CodePipeline and CodeBuild resources, read the way the console shows them."""

    top: TopLevel
    stack_name: str

    @property
    def raw(self) -> dict[str, Any]:
        return self.top.raw[self.stack_name]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.raw["Resources"])

    @property
    def pipeline(self) -> dict[str, Any]:
        [pipeline] = self.top.resources(self.stack_name, "AWS::CodePipeline::Pipeline").values()
        return pipeline

    @property
    def stage_names(self) -> list[str]:
        return [stage["Name"] for stage in self.pipeline["Properties"]["Stages"]]

    def actions(self, stage: str) -> list[dict[str, Any]]:
        """The stage's actions in run order."""
        [found] = [s for s in self.pipeline["Properties"]["Stages"] if s["Name"] == stage]
        return sorted(found["Actions"], key=lambda a: a["RunOrder"])

    def action(self, stage: str, name: str) -> dict[str, Any]:
        [action] = [a for a in self.actions(stage) if a["Name"] == name]
        return action

    def all_actions(self) -> list[tuple[str, dict[str, Any]]]:
        return [(stage, action) for stage in self.stage_names for action in self.actions(stage)]

    @staticmethod
    def env(action: dict[str, Any]) -> dict[str, str]:
        """The action's environment variables (CodePipeline variables, stage outputs)."""
        text = action["Configuration"].get("EnvironmentVariables")
        return {v["name"]: v["value"] for v in json.loads(text)} if text else {}

    def project(self, action: dict[str, Any]) -> dict[str, Any]:
        return self.resources[action["Configuration"]["ProjectName"]["Ref"]]

    def project_env(self, action: dict[str, Any]) -> dict[str, Any]:
        variables = self.project(action)["Properties"]["Environment"].get("EnvironmentVariables", [])
        return {v["Name"]: v["Value"] for v in variables}

    def projects(self) -> dict[str, dict[str, Any]]:
        return self.top.resources(self.stack_name, "AWS::CodeBuild::Project")

    def buildspec(self, project: dict[str, Any]) -> dict[str, Any]:
        """A project's buildspec: inline, inline with intrinsics (read as TOKEN), or a file in cdk.out."""
        spec = project["Properties"]["Source"]["BuildSpec"]
        if isinstance(spec, dict):
            [(function, (separator, parts))] = spec.items()
            assert function == "Fn::Join", spec
            spec = separator.join(p if isinstance(p, str) else TOKEN for p in parts)
        if spec.endswith(
            ".yaml"
        ):  # CDK Pipelines writes asset buildspecs into the assembly (YAML is JSON here)
            spec = (self.top.outdir / spec).read_text()
        return dict(json.loads(spec))

    def commands(self, project: dict[str, Any]) -> list[str]:
        """Every command a project runs, phase by phase."""
        phases = self.buildspec(project).get("phases", {})
        return [
            c
            for phase in ("install", "pre_build", "build", "post_build")
            for c in phases.get(phase, {}).get("commands", [])
        ]

    def path(self, logical_id: str) -> str:
        return str(self.resources[logical_id].get("Metadata", {}).get("aws:cdk:path", ""))


# --- IAM: what a policy lets a principal do --------------------------------------------------------------
def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the identity policies a template attaches to one of its roles (inline and
    `AWS::IAM::Policy` resources)."""
    resources = template["Resources"]
    found = [
        statement
        for inline in resources[role_logical_id]["Properties"].get("Policies", [])
        for statement in as_list(inline["PolicyDocument"]["Statement"])
    ]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_logical_id} in resource["Properties"].get(
            "Roles", []
        ):
            found += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def _matches(pattern: Any, value: str) -> bool:
    """IAM's wildcard match (`*`, `?`; actions case-insensitively), for plain strings only."""
    import fnmatch

    return isinstance(pattern, str) and fnmatch.fnmatchcase(value.lower(), pattern.lower())


def allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """Whether some Allow statement names `action` on `resource` (conditions aside) and no Deny does."""

    def covers(statement: dict[str, Any]) -> bool:
        return any(_matches(a, action) for a in as_list(statement.get("Action", []))) and any(
            r == resource or _matches(r, resource) for r in as_list(statement.get("Resource", []))
        )

    effects = {s["Effect"] for s in statements if covers(s)}
    return "Allow" in effects and "Deny" not in effects
