"""Step factories: a CodeBuild step of the pipeline from the commands in `pipeline.commands`, verbatim."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines

from pipeline.commands import NODE_VERSION, PYTHON_VERSION, StepCommands
from stages.stage import YoctogramStage

PIP_CACHE = "/root/.cache/pip/**/*"
NPM_CACHE = "/root/.npm/**/*"

EXECUTION_ID = "#{codepipeline.PipelineExecutionId}"
"""A CodePipeline variable: CDK Pipelines passes it to the action (not the project), resolved per run."""


def runtime_versions() -> codebuild.BuildSpec:
    """The pinned Python and Node of every CodeBuild project of the pipeline (CodeBuild's `runtime-versions`)."""
    return codebuild.BuildSpec.from_object(
        {
            "version": "0.2",
            "phases": {"install": {"runtime-versions": {"python": PYTHON_VERSION, "nodejs": NODE_VERSION}}},
        }
    )


def cache_spec(*paths: str) -> dict[str, Any]:
    return {"cache": {"paths": list(paths)}}


def codebuild_step(
    commands: StepCommands,
    *,
    input: pipelines.IFileSetProducer,
    stage: YoctogramStage | None = None,
    env: Mapping[str, str] | None = None,
    role: iam.IRole | None = None,
    cache_bucket: s3.IBucket | None = None,
    cache_prefix: str | None = None,
    cache_paths: tuple[str, ...] = (PIP_CACHE,),
    buildspec: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> pipelines.CodeBuildStep:
    """A `CodeBuildStep` running exactly `commands`: install, build and post_build phases.

    `stage` supplies the outputs the commands read (`commands.outputs`) through `env_from_cfn_outputs`,
    which also makes the step wait for the stacks that produce them. `env` adds the settings that name
    this pipeline's resources (a bucket, a role) to the commands' own `env`.
    """
    spec: dict[str, Any] = {"version": "0.2", **(dict(buildspec) if buildspec else {})}
    if commands.post_build:
        spec["phases"] = {"post_build": {"commands": [c.text for c in commands.post_build]}}
    cache = None
    if cache_bucket is not None:
        cache = codebuild.Cache.bucket(cache_bucket, prefix=cache_prefix or commands.name)
        spec.update(cache_spec(*cache_paths))
    outputs: dict[str, cdk.CfnOutput] = {}
    if commands.outputs:
        if stage is None:
            raise ValueError(f"{commands.name} reads stage outputs {commands.outputs}: pass its stage")
        outputs = {name: stage.outputs[name] for name in commands.outputs}
    return pipelines.CodeBuildStep(
        commands.name,
        input=input,
        install_commands=[c.text for c in commands.install],
        commands=[c.text for c in commands.build],
        env={**commands.env, **(env or {})},
        env_from_cfn_outputs=outputs,
        role=role,
        cache=cache,
        partial_build_spec=codebuild.BuildSpec.from_object(spec) if len(spec) > 1 else None,
        **kwargs,
    )
