"""`make rehearse`: the pipeline's steps, run here in the pipeline's order, up to the prod approval.

CDK Pipelines has no local runner; this runs the very commands of the pipeline's CodeBuild steps (they
are written once, in `pipeline/commands.py`) so a step that would fail after a push fails here first:

    Build      Preflight (not a pipeline step): the placeholders `make preflight` lists, as a warning
               Synth: `make test-ci`, `make synth` (lint, unit and infrastructure tests; synth, cdk-nag, cfn-lint)
               Changes (not a pipeline step): `make changes` against `main`, as a pull request's check runs it
    Staging    the local stack (`python -m devstack up`, its own folder and free ports) stands in for the
               deployed stage; the migrations, the serving check (the API reports the working
               tree's commit), the smoke test, a short Locust run with the `local` profile and the
               capacity review run against it
    Prod       the prod change report against `reports/rehearse/releases/`, a local folder standing in
               for the release record (`releases/prod/` of the reports bucket; none on a first rehearsal:
               nothing to compare with), then the approval page; stops where the manual approval stands,
               and prints the approval page's path (it shows the capacity review and the change report).
               With `--record`, goes on as if approved to
               RecordRelease (the prod deployment itself is not rehearsed): this rehearsal becomes the
               record that the next one compares with

Steps that only make sense in AWS are reported as skipped with the reason (self-mutation, asset
publishing, the image scan, the permission-broadening check), or run a local stand-in (the migration
task: `python -m app.migrate` against the local database). Each step's result and time is printed; the
first failure stops the rehearsal, as it stops the pipeline. Files: `reports/rehearse/<id>/` (the stack's
log, and `bucket/`, the local stand-in for the reports bucket).

    python scripts/rehearse.py            # everything
    python scripts/rehearse.py --list     # the plan: every command and how it runs here
    python scripts/rehearse.py --from Migrate   # start at a step (the earlier ones are not run)
    python scripts/rehearse.py --record # and record the release in the local stand-in afterwards
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: import the repository's packages
    sys.path.insert(0, str(ROOT))

from devstack.background import LocalStack  # noqa: E402
from devstack.postgres import DEFAULT_DB, DEFAULT_PASSWORD, DEFAULT_USER, free_port  # noqa: E402
from pipeline.commands import (  # noqa: E402
    APPROVAL,
    APPROVAL_PAGE,
    CHANGES_PAGE,
    GENERATED,
    IMAGE_SCAN,
    LOAD_TEST,
    MIGRATE,
    PROD_CHANGES,
    RECORD_RELEASE,
    RELEASES_LOCAL,
    REVIEW_PAGE,
    SERVING,
    SMOKE,
    SYNTH,
    Command,
    StepCommands,
)


@dataclass(frozen=True)
class Entry:
    """One step of the pipeline, in order, and what the rehearsal does for it."""

    stage: str
    name: str
    step: StepCommands | None = None
    """The step's commands (`pipeline/commands.py`), run as the pipeline runs them."""
    skip: str | None = None
    """Why nothing here can stand in for it."""
    marker: str | None = None
    """`stack`: start the local stack (the stage's deployment); `approval`: stop here; `preflight`: the
    offline part of `make preflight`; `changes`: the change report against `main`; `after-approval`: run
    only with `--record`."""


PREFLIGHT = "python -m pipeline.preflight --offline"
"""The placeholders of stages/config.py. The shipped config is placeholders by design, so here they are a
warning; before a first push `make preflight ENV=...` checks the accounts and fails on them."""

CHANGES = "python -m pipeline.changes --base main"
"""`make changes BASE=main`: what this tree changes in every stack compared with `main`, as the pull-request
check reports it; fails on a prod stateful resource replaced or removed without an allowance."""


def plan() -> list[Entry]:
    """The pipeline's steps in the order the pipeline runs them, up to the prod approval."""
    return [
        Entry("Build", "Preflight", marker="preflight"),
        Entry("Build", SYNTH.name, step=SYNTH),
        Entry("Build", "Changes", marker="changes"),
        Entry("UpdatePipeline", "SelfMutate", skip=GENERATED["SelfMutate"]),
        Entry("Assets", "Assets", skip=GENERATED["Assets"]),
        Entry("Staging", IMAGE_SCAN.name, step=IMAGE_SCAN),
        Entry("Staging", "Deploy", marker="stack"),
        Entry("Staging", MIGRATE.name, step=MIGRATE),
        Entry("Staging", SERVING.name, step=SERVING),
        Entry("Staging", SMOKE.name, step=SMOKE),
        Entry("Staging", LOAD_TEST.name, step=LOAD_TEST),
        Entry("Prod", "ConfirmPermissionsBroadening", skip=GENERATED["ConfirmPermissionsBroadening"]),
        Entry("Prod", PROD_CHANGES.name, step=PROD_CHANGES),
        Entry("Prod", APPROVAL.name, step=APPROVAL),
        Entry("Prod", "Approve", marker="approval"),
        Entry("Prod", RECORD_RELEASE.name, step=RECORD_RELEASE, marker="after-approval"),
    ]


def local_text(command: Command) -> str | None:
    """What the rehearsal runs for a pipeline command (None: skipped)."""
    if command.local.how == "run":
        return command.text
    if command.local.how == "stand-in":
        return command.local.command
    return None


# --- the local stack -----------------------------------------------------------------------------------
def database_env(stack: LocalStack) -> dict[str, str]:
    """The settings `python -m app.migrate` needs to reach the local stack's database."""
    return {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(stack.pg_port),
        "POSTGRES_USER": DEFAULT_USER,
        "POSTGRES_PASSWORD": DEFAULT_PASSWORD,
        "POSTGRES_DB": DEFAULT_DB,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("backend", "compressor")),
    }


# --- running -------------------------------------------------------------------------------------------
@dataclass
class Result:
    entry: Entry
    status: str  # ok, warn, FAILED, skipped, stand-in, not run
    seconds: float = 0.0
    note: str = ""


class Rehearsal:
    def __init__(self, folder: Path, start_at: str | None, record_release: bool = False) -> None:
        self.folder = folder
        self.start_at = start_at
        self.record_release = record_release
        self.results: list[Result] = []
        self.stack: LocalStack | None = None
        self.review: Path | None = None
        self.changes_report: Path | None = None
        self.approval_page: Path | None = None
        run_id = folder.name
        self.base_env = {
            **os.environ,
            # `python` is this interpreter (the venv's), as `python` is the runtime's in CodeBuild.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PIPELINE_EXECUTION_ID": f"rehearse-{run_id}",
            "REPORTS_DIR": str(folder / "bucket"),
            "REVIEW_ASSUME_TASKS": "1",
        }

    def run(self) -> bool:
        reached = self.start_at is None
        try:
            for entry in plan():
                reached = reached or entry.name == self.start_at
                if not reached and entry.marker != "stack":
                    self.record(Result(entry, "not run", note=f"before --from {self.start_at}"))
                    continue
                if entry.marker == "after-approval" and not self.record_release:
                    continue  # the rehearsal stops at the approval
                if not self.do(entry):
                    return False
                if entry.marker == "approval" and not self.record_release:
                    return True
            return True
        finally:
            if self.stack is not None:
                say("Stopping the local stack")
                self.stack.stop()

    def do(self, entry: Entry) -> bool:
        if entry.skip:
            self.record(Result(entry, "skipped", note=entry.skip))
            return True
        if entry.marker == "stack":
            return self.start_stack(entry)
        if entry.marker == "preflight":
            return self.preflight(entry)
        if entry.marker == "changes":
            return self.changes(entry)
        if entry.marker == "approval":
            page = self.approval_page or "(no approval page: ApprovalPage did not run)"
            if self.record_release:
                self.record(
                    Result(entry, "stand-in", note=f"--record: taken as approved; approval page {page}")
                )
                return True
            self.record(Result(entry, "stop", note=f"a person approves here, with the approval page: {page}"))
            return True
        assert entry.step is not None
        return self.run_step(entry, entry.step)

    def preflight(self, entry: Entry) -> bool:
        """Lists the placeholders: `warn` while any is left (exit 1); FAILED only if preflight itself fails."""
        say(f"{entry.stage}/{entry.name}: $ {PREFLIGHT}")
        started = time.monotonic()
        code = subprocess.run(["bash", "-c", PREFLIGHT], cwd=ROOT, env=self.base_env, check=False).returncode  # noqa: S603, S607
        seconds = time.monotonic() - started
        if code == 0:
            self.record(Result(entry, "ok", seconds, "no placeholder left in stages/config.py"))
        elif code == 1:
            note = "stages/config.py holds placeholders (above): replace them, then `make preflight ENV=...`"
            self.record(Result(entry, "warn", seconds, note))
        else:
            self.record(Result(entry, "FAILED", seconds, f"`{PREFLIGHT}` exited {code}"))
        return code in (0, 1)

    def changes(self, entry: Entry) -> bool:
        """The change report against `main`; skipped where there is no git history to compare with."""
        if not (ROOT / ".git").exists():
            note = "no .git here (the pipeline's source is a zip): nothing to compare with; run it in a clone"
            self.record(Result(entry, "skipped", note=note))
            return True
        say(f"{entry.stage}/{entry.name}: $ {CHANGES}")
        started = time.monotonic()
        code = subprocess.run(["bash", "-c", CHANGES], cwd=ROOT, env=self.base_env, check=False).returncode  # noqa: S603, S607
        seconds = time.monotonic() - started
        report = "reports/changes/latest/changes.md"
        if code == 0:
            self.record(Result(entry, "ok", seconds, f"report: {report}"))
        elif code == 1:
            note = f"a stateful prod resource would be replaced or removed ({report}): fix it, or allow it in changes-allowed.toml"
            self.record(Result(entry, "FAILED", seconds, note))
        else:
            self.record(Result(entry, "FAILED", seconds, f"`{CHANGES}` exited {code} (above)"))
        return code == 0

    def start_stack(self, entry: Entry) -> bool:
        started = time.monotonic()
        local_dir = Path(tempfile.mkdtemp(prefix="yoctogram-rehearse-"))
        local_dir.chmod(0o755)  # as root, PostgreSQL runs as a system user that must reach into it
        self.stack = LocalStack(
            local_dir=local_dir,
            log_path=self.folder / "stack.log",
            port=free_port(),
            s3_port=free_port(),
            pg_port=free_port(),
        )
        say(
            f"Staging: the local stack at {self.stack.base_url} stands in for the deployed stage (log: {self.stack.log_path})"
        )
        try:
            self.stack.start()
        except RuntimeError as error:
            self.record(Result(entry, "FAILED", time.monotonic() - started, str(error)))
            return False
        self.record(
            Result(
                entry,
                "stand-in",
                time.monotonic() - started,
                f"`python -m devstack up` at {self.stack.base_url}",
            )
        )
        return True

    def step_env(self, step: StepCommands) -> dict[str, str]:
        # A setting of the rehearsal can be changed from the environment, e.g. LOAD_RUN_TIME=3m.
        env = {
            **self.base_env,
            **step.local_env,
            **{k: os.environ[k] for k in step.local_env if k in os.environ},
        }
        if self.stack is not None:
            env["SiteUrl"] = self.stack.base_url
            env.update(database_env(self.stack) if step is MIGRATE else {})
        return env

    def run_step(self, entry: Entry, step: StepCommands) -> bool:
        main = (*step.build, *step.post_build)
        if all(local_text(c) is None for c in main):
            self.record(Result(entry, "skipped", note="; ".join(c.local.reason for c in main)))
            return True
        env = self.step_env(step)
        started = time.monotonic()
        stand_ins = []
        failed = None
        for phase in ("install", "build", "post_build"):
            if failed is not None and phase != "post_build":
                continue  # as in CodeBuild: a failure skips the rest of install and build, not post_build
            for command in getattr(step, phase):
                text = local_text(command)
                if text is None:
                    say(f"{entry.stage}/{entry.name}: skipping `{command.text}`: {command.local.reason}")
                    continue
                if text != command.text:
                    stand_ins.append(f"`{text}` for `{command.text}` ({command.local.reason})")
                say(f"{entry.stage}/{entry.name}: $ {text}")
                code = subprocess.run(["bash", "-c", text], cwd=ROOT, env=env, check=False).returncode  # noqa: S603, S607
                if code != 0:
                    failed = failed or f"`{text}` exited {code}"
                    break
        if step is LOAD_TEST:
            review = Path(env["REPORTS_DIR"]) / "runs" / env["PIPELINE_EXECUTION_ID"] / REVIEW_PAGE
            self.review = review if review.exists() else None
        if step is PROD_CHANGES:
            changes = Path(env["REPORTS_DIR"]) / "runs" / env["PIPELINE_EXECUTION_ID"] / CHANGES_PAGE
            self.changes_report = changes if changes.exists() else None
        if step is APPROVAL:
            page = Path(env["REPORTS_DIR"]) / "runs" / env["PIPELINE_EXECUTION_ID"] / APPROVAL_PAGE
            self.approval_page = page if page.exists() else None
        status = "FAILED" if failed else "stand-in" if stand_ins else "ok"
        self.record(Result(entry, status, time.monotonic() - started, failed or "; ".join(stand_ins)))
        return failed is None

    def record(self, result: Result) -> None:
        self.results.append(result)
        entry = result.entry
        timing = f"{result.seconds:7.1f}s" if result.seconds else " " * 8
        say(f"{result.status:<8} {entry.stage}/{entry.name} {timing} {result.note}".rstrip())


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def print_plan() -> None:
    for entry in plan():
        print(f"{entry.stage}/{entry.name}")
        if entry.skip:
            print(f"    skipped: {entry.skip}")
        elif entry.marker == "stack":
            print("    the local stack (`python -m devstack up`) stands in for the stage's deployment")
        elif entry.marker == "approval":
            print("    stop: a person approves here; the approval page's path is printed")
        elif entry.marker == "preflight":
            print(f"    run       {PREFLIGHT}  (not a pipeline step: placeholders left are a warning here)")
        elif entry.marker == "changes":
            print(
                f"    run       {CHANGES}  (not a pipeline step: the pull-request check; skipped without .git)"
            )
        elif entry.step is not None:
            if entry.marker == "after-approval":
                print(f"    only with --record (the record's local stand-in: {RELEASES_LOCAL}/):")
            main = (*entry.step.build, *entry.step.post_build)
            if all(local_text(c) is None for c in main):
                for command in main:
                    print(f"    skipped   {command.text}  ({command.local.reason})")
                continue
            for command in entry.step.commands:
                text = local_text(command)
                if text == command.text:
                    print(f"    run       {command.text}")
                elif text is None:
                    print(f"    skipped   {command.text}  ({command.local.reason})")
                else:
                    print(f"    stand-in  {text}  for  {command.text}  ({command.local.reason})")


def print_summary(results: list[Result], total: float) -> None:
    print("\nRehearsal:", flush=True)
    for result in results:
        timing = f"{result.seconds:7.1f}s" if result.seconds else ""
        print(
            f"  {result.status:<8} {result.entry.stage + '/' + result.entry.name:<38} {timing:>8}  {result.note}"
        )
    print(f"  total {total:.0f} s", flush=True)


@contextlib.contextmanager
def terminated_as_interrupt() -> Iterator[None]:
    """SIGTERM (a stopped CI job, `kill`) stops the rehearsal like Ctrl-C: the local stack is stopped."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make rehearse", description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the plan and every command, run nothing")
    parser.add_argument(
        "--from", dest="start_at", choices=[e.name for e in plan() if e.step], help="start at this step"
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help=f"go on past the approval and record this rehearsal as the release in {RELEASES_LOCAL}/ "
        "(the next rehearsal's prod change report compares with it)",
    )
    args = parser.parse_args(argv)
    if args.list:
        print_plan()
        return 0
    stamp = datetime.now(UTC).strftime("%y%m%d-%H%M%S")
    folder = ROOT / "reports" / "rehearse" / stamp
    folder.mkdir(parents=True, exist_ok=True)
    rehearsal = Rehearsal(folder, args.start_at, record_release=args.record)
    started = time.monotonic()
    try:
        with terminated_as_interrupt():
            passed = rehearsal.run()
    except KeyboardInterrupt:
        passed = False
        print("\nInterrupted.", file=sys.stderr)
    finally:
        if rehearsal.stack is not None and rehearsal.stack.local_dir is not None:
            shutil.rmtree(rehearsal.stack.local_dir, ignore_errors=True)
    print_summary(rehearsal.results, time.monotonic() - started)
    if passed:
        where = "Recorded the release past" if args.record else "Stopped where"
        print(
            f"\n{where} the prod approval stands. Approval page: {rehearsal.approval_page or 'none'} "
            f"(capacity review: {rehearsal.review or 'none'}; prod change report: "
            f"{rehearsal.changes_report or 'none'})"
        )
        return 0
    print(
        f"\nThe rehearsal failed (above); the pipeline would stop at the same step. Files: {folder}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
