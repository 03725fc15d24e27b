"""Synthesize one checkout of the app into a folder.

Run as a script by `pipeline.changes.assemblies` with the working directory at the checkout to
synthesize (a temporary `git worktree` of BASE, or this repository), and this repository's .venv:

    python pipeline/changes/synth.py <checkout> <outdir> <frontend dist>

It imports that checkout's `pipeline.app.build_pipeline_app` (`build_app` in older checkouts; first on
sys.path) and synthesizes every stage and the pipeline into `<outdir>/cdk.out` (cdk-nag runs as in every
synth). The cdk-nag acknowledgments are read from that assembly's metadata files afterwards
(`pipeline.changes.between.acknowledgments`), as the pipeline's prod change report reads them. It imports
nothing else from this repository, so it works for a BASE that predates it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ASSEMBLY = "cdk.out"


def main(checkout: Path, folder: Path, frontend_dist: Path) -> None:
    sys.path.insert(0, str(checkout))
    try:
        module = importlib.import_module("pipeline.app")
    except ImportError:  # a BASE from before the pipeline: the stages only
        module = importlib.import_module("stages.app")
    # Named build_app in older checkouts (both modules), build_pipeline_app / build_stages_app since.
    build = next(
        getattr(module, name)
        for name in ("build_pipeline_app", "build_stages_app", "build_app")
        if hasattr(module, name)
    )
    outdir = folder / ASSEMBLY
    app = build(str(outdir), frontend_dist=frontend_dist)
    app.synth()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
