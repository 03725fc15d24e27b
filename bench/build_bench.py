"""Build benchmark: `cdk synth` of the whole app (median of 3) and the infrastructure test suite.

    python bench/build_bench.py [--json out.json] [--synth-runs 3]

`cdk synth '**'` runs the CLI pinned in package.json with the same environment as `make synth`
(``scripts/synth.py``: bundled Node first on PATH, no version check, no telemetry), into a temporary
output folder, so the `cdk.out/` of a developer or of the tests is never touched. cfn-lint (part of
`make synth`) is not timed here. The infrastructure tests are `python -m pytest tests -q`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from synth import CDK, cdk_environment  # noqa: E402


def _node_version(env: dict[str, str]) -> str:
    done = subprocess.run(["node", "--version"], env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def synth_times(runs: int) -> dict[str, object]:
    """Wall time of each `cdk synth '**' --quiet` into a fresh temporary folder."""
    if not CDK.exists():
        return {"error": "the CDK CLI is not installed: run `npm ci` (or `make synth` once) first"}
    env = cdk_environment()
    samples: list[float] = []
    templates = 0
    failure = ""
    for run in range(1, runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-cdk-out-") as out:
            started = time.perf_counter()
            done = subprocess.run(
                [str(CDK), "synth", "**", "--quiet", "--output", out],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            templates = len(list(Path(out).glob("**/*.template.json")))
        samples.append(round(elapsed, 2))
        status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        print(f"    cdk synth run {run}/{runs}: {elapsed:.1f} s, {templates} templates, {status}", flush=True)
        if done.returncode != 0:
            # Still timed: the app was synthesized; a gate (cdk-nag) refused it at the end.
            failure = (done.stdout + done.stderr).strip()[-1500:]
    return {
        "median_s": round(statistics.median(samples), 2),
        "runs_s": samples,
        "templates": templates,
        "exit_ok": not failure,
        "failure": failure,
        "node": _node_version(env),
        "command": "node_modules/.bin/cdk synth '**' --quiet --output <temporary folder>",
    }


def infra_tests_time() -> dict[str, object]:
    """Wall time of the infrastructure test suite (one run) and pytest's own summary line."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    summary = next((ln for ln in reversed(lines) if re.search(r"\b(passed|failed|error)", ln)), "")
    return {
        "seconds": round(elapsed, 1),
        "exit_code": done.returncode,
        "summary": summary.strip("= "),
        "command": ".venv/bin/python -m pytest tests -q",
    }


def run(synth_runs: int = 3) -> dict[str, object]:
    print(f"  cdk synth of the whole app, {synth_runs} runs", flush=True)
    synth = synth_times(synth_runs)
    print("  infrastructure tests (pytest tests -q)", flush=True)
    tests = infra_tests_time()
    print(f"    {tests['seconds']} s: {tests['summary']}", flush=True)
    return {"cdk_synth": synth, "infra_tests": tests, "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--synth-runs", type=int, default=3)
    args = parser.parse_args()
    result = run(args.synth_runs)
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
