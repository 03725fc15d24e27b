"""Builds the CDK app: the staging and prod Stages, checked by cdk-nag on every synth."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stages.config import PROD, STAGING, EnvironmentConfig
from stages.stage import YoctogramStage

REPO_ROOT = Path(__file__).resolve().parents[1]

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


def build_app(
    outdir: str | None = None, *, configs: Iterable[EnvironmentConfig] = (STAGING, PROD)
) -> cdk.App:
    """An App with one `YoctogramStage` per config and the cdk-nag AwsSolutions pack registered.

    cdk-nag 3 runs as a validation plugin of the App (on a Stage it would check nothing): `app.synth()`
    fails with a report when any finding is not acknowledged on its construct.
    """
    app = cdk.App(outdir=outdir, context=cdk_json_context(), analytics_reporting=False)
    for config in configs:
        YoctogramStage(app, STAGE_IDS[config.name], config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
