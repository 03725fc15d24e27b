"""Synthesize one checkout of the app into a folder, with its cdk-nag acknowledgments beside it.

Run as a script by `pipeline.changes.assemblies` with the working directory at the checkout to
synthesize (a temporary `git worktree` of BASE, or this repository), and this repository's .venv:

    python pipeline/changes/synth.py <checkout> <outdir> <frontend dist>

It imports that checkout's `pipeline.app.build_pipeline_app` (`build_app` in older checkouts; first on
sys.path), synthesizes every stage and the pipeline into `<outdir>/cdk.out` (cdk-nag runs as in every synth) and writes
`<outdir>/acknowledgments.json`: the acknowledgments are construct metadata, absent from the templates.
It imports nothing else from this repository, so it works for a BASE that predates it.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

ACKNOWLEDGMENTS = "acknowledgments.json"
ASSEMBLY = "cdk.out"


def acknowledgments(app: Any) -> list[dict[str, str]]:
    """`{path, rule, reason}` of every cdk-nag acknowledgment of the app (as tests/test_nag.py lists them)."""
    import aws_cdk as cdk

    found = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found.append(
                        {
                            "path": construct.node.path,
                            "rule": re.sub(r"^Annotation::", "", rule),
                            "reason": str(reason),
                        }
                    )
    return sorted(found, key=lambda a: (a["path"], a["rule"]))


def write_acknowledgments(app: Any, folder: Path) -> None:
    (folder / ACKNOWLEDGMENTS).write_text(json.dumps(acknowledgments(app), indent=1) + "\n")


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
    write_acknowledgments(app, folder)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), Path(sys.argv[3]).resolve())
