"""The CDK app: the staging and prod Stages, the roles the pipeline's steps assume, and the pipeline."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from pipeline.access_stack import PipelineAccessStack
from pipeline.pipeline_stack import PipelineStack
from stages.app import STAGE_IDS, build_stages_app
from stages.config import PIPELINE, PipelineConfig
from stages.stage import YoctogramStage

LOAD_TESTED = "staging"
"""The environment the load test runs against (its account gets the CloudWatch reading role)."""


def build_pipeline_app(
    outdir: str | None = None,
    *,
    frontend_dist: Path | None = None,
    pipeline: PipelineConfig = PIPELINE,
    commit: str | None = None,
) -> cdk.App:
    """`stages.app.build_stages_app` (both Stages, cdk-nag registered), plus the pipeline that deploys them.

    The Stages keep their ids (`Staging`, `Prod`) and so their stacks' names; the pipeline adds each one
    (`add_stage` synthesizes it at once), so every Stage is complete before this is called.
    `commit` reaches the stages only: the pipeline's own template does not change with it (a new commit
    alone must not make the pipeline mutate itself).
    """
    app = build_stages_app(outdir, frontend_dist=frontend_dist, commit=commit)
    stages = {name: _stage(app, stage_id) for name, stage_id in STAGE_IDS.items()}
    access = {
        name: PipelineAccessStack(
            app,
            f"{stage_id}PipelineAccess",
            stage=stages[name],
            pipeline=pipeline,
            load_tested=name == LOAD_TESTED,
        )
        for name, stage_id in STAGE_IDS.items()
    }
    PipelineStack(
        app, "Pipeline", config=pipeline, staging=stages["staging"], prod=stages["prod"], access=access
    )
    return app


def _stage(app: cdk.App, stage_id: str) -> YoctogramStage:
    stage = app.node.find_child(stage_id)
    assert isinstance(stage, YoctogramStage), stage_id
    return stage
