"""Each image's build context, as the CDK stages it for the pipeline's Docker build, holds everything its
Dockerfile copies, as real files: the shared package (a link in backend/ and compressor/) included, and its
tests left out."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.templates import Synthesized


def _contexts(synthesized: Synthesized) -> dict[str, Path]:
    found = {}
    for manifest in synthesized.outdir.glob("assembly-*/*.assets.json"):
        for asset in json.loads(manifest.read_text()).get("dockerImages", {}).values():
            context = manifest.parent / asset["source"]["directory"]
            found[context.resolve().name] = context
    return found


def _copied(dockerfile: str) -> list[str]:
    sources = []
    for line in dockerfile.splitlines():
        match = re.match(r"\s*COPY\s+(?!--from)(.+)$", line)
        if match:
            parts = [p for p in match.group(1).split() if not p.startswith("--")]
            sources += parts[:-1]  # the last one is the destination
    return sources


def test_every_copied_path_is_in_the_staged_context_as_real_files(synthesized: Synthesized) -> None:
    contexts = _contexts(synthesized)
    sharing = 0
    for name, context in contexts.items():
        dockerfile = (context / "Dockerfile").read_text()
        for source in _copied(dockerfile):
            path = context / source.replace("${LAMBDA_TASK_ROOT}/", "")
            assert path.exists(), f"{name}: COPY {source}: not in the build context"
            assert not path.is_symlink(), f"{name}: COPY {source}: a link (it would not reach the build)"
        if "yoctogram_common" in _copied(dockerfile):
            sharing += 1
            shared = context / "yoctogram_common"
            assert (shared / "keys.py").is_file() and not (shared / "tests").exists(), name
            assert not any(p.is_symlink() for p in shared.rglob("*")), name
    assert sharing == 2, "the backend and the compressor images both carry yoctogram_common"
