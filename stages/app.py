"""Builds the CDK app: the staging and prod Stages, checked by cdk-nag on every synth."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stages.components.backend_settings import BUILD_COMMIT_CONTEXT
from stages.components.web_client import frontend_build
from stages.config import PROD, STAGING, EnvironmentConfig
from stages.stage import YoctogramStage

REPO_ROOT = Path(__file__).resolve().parents[1]
FRONTEND_BUILD = REPO_ROOT / "frontend" / "dist"
FRONTEND_BUILD_CONTEXT = "yoctogram:frontendDist"
"""Context key naming another web client build folder (relative to the repository root or absolute)."""

STAGE_IDS = {"staging": "Staging", "prod": "Prod"}


def cdk_json_context() -> dict[str, Any]:
    """The feature flags of `cdk.json` plus `cdk.context.json`, as the CLI would pass them.

    The CLI hands these to the app itself; reading them here too makes an app built in a test (no CLI)
    synthesize exactly what `make synth` does. Values from the CLI still take precedence.
    """
    # The CLI records construct paths in the templates by default (`--path-metadata`); so do we.
    context: dict[str, Any] = {"aws:cdk:enable-path-metadata": True}
    context.update(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])
    context_file = REPO_ROOT / "cdk.context.json"
    if context_file.exists():
        context.update(json.loads(context_file.read_text()))
    return context


def build_stages_app(
    outdir: str | None = None,
    *,
    configs: Iterable[EnvironmentConfig] = (STAGING, PROD),
    frontend_dist: Path | None = None,
    commit: str | None = None,
) -> cdk.App:
    """An App with one `YoctogramStage` per config and the cdk-nag AwsSolutions pack registered.

    cdk-nag 3 runs as a validation plugin of the App (on a Stage it would check nothing): `app.synth()`
    fails with a report when any finding is not acknowledged on its construct.

    The web client is deployed from `frontend_dist`, else from the folder the context key
    `yoctogram:frontendDist` names, else from `frontend/dist`; a folder without a build raises
    `MissingFrontendBuild`, which says to run `make frontend`. (Tests pass a small stand-in build, so
    the infrastructure suite needs neither Node nor the frontend's toolchain.)

    `commit` (else the context key `yoctogram:commit`) is the build the processes and the web client
    report (`stages.components.backend_settings.build_commit`); without it they say `unknown`.
    """
    context = cdk_json_context()
    if commit:
        context[BUILD_COMMIT_CONTEXT] = commit
    # cfn-lint is the template gate (`make synth`, the pipeline's synth step, tests/test_cfn_lint.py). The
    # CDK's built-in validator runs cfn-lint's rules again at every synthesis (about 3 s; its errors are
    # only warnings by default), so it is off.
    app = cdk.App(
        outdir=outdir, context=context, analytics_reporting=False, builtin_cloud_formation_validation=False
    )
    if frontend_dist is None:
        named = app.node.try_get_context(FRONTEND_BUILD_CONTEXT)
        frontend_dist = REPO_ROOT / named if named else FRONTEND_BUILD
    build = frontend_build(frontend_dist)
    for config in configs:
        YoctogramStage(app, STAGE_IDS[config.name], config=config, frontend_build=build)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
