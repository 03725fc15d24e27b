"""The checklist: every item of one account (or all three), printed as it is known, and the exit code.

Exit code: 0 only when every item is OK (nothing to fix, and nothing that could not be checked, since
an unchecked item may need fixing); 1 otherwise; 2 for a usage error. With `--offline` only the
placeholders are listed (no AWS call), and the exit code says whether any is left.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from pipeline.preflight.checks import (
    ACCESS_DENIED,
    READ_ACCESS,
    Aws,
    Check,
    Context,
    caller_account,
    environment_checks,
    error_code,
    pipeline_checks,
)
from pipeline.preflight.placeholders import config_line, locate
from pipeline.preflight.results import Item, Status, cannot_check, fix, ok
from stages.config import EDGE_REGION, ENVIRONMENTS, PIPELINE, EnvironmentConfig, PipelineConfig

PIPELINE_TARGET = "pipeline"


@dataclass(frozen=True)
class Target:
    """One account to check: a stage's (`staging`, `prod`) or the pipeline's."""

    name: str
    config: EnvironmentConfig | PipelineConfig

    @property
    def account(self) -> str:
        return self.config.account

    @property
    def region(self) -> str:
        return self.config.region


def targets(
    env: str,
    environments: dict[str, EnvironmentConfig] | None = None,
    pipeline: PipelineConfig = PIPELINE,
) -> list[Target]:
    """The targets of `--env`: one, or `all` of them (the stages, then the pipeline)."""
    environments = ENVIRONMENTS if environments is None else environments
    every = [
        *(Target(name, config) for name, config in environments.items()),
        Target(PIPELINE_TARGET, pipeline),
    ]
    return every if env == "all" else [t for t in every if t.name == env]


def config_items(target: Target) -> list[Item]:
    """Offline: the placeholders of the target's config, each with the line to edit."""
    found = locate(target.config)
    if not found:
        return [ok("Config", config_line(target.config, ()), "no placeholder left")]
    return [fix("Config", placeholder.where, "", placeholder.what) for placeholder in found]


def describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        message = error.response.get("Error", {}).get("Message", "")
        return f"{error.operation_name}: {error_code(error)}{': ' + message if message else ''}"
    return f"{type(error).__name__}: {error}"


def run_check(check: Check, ctx: Context) -> list[Item]:
    """A check's items, or one CANNOT CHECK item saying why it could not run."""
    try:
        return check.run(ctx)
    except ClientError as error:
        what = (
            READ_ACCESS
            if error_code(error) in ACCESS_DENIED
            else "run it again; if it persists, look at the error"
        )
        return [cannot_check(check.group, check.title, describe(error), what)]
    except BotoCoreError as error:
        return [
            cannot_check(check.group, check.title, describe(error), "check the network, then run it again")
        ]
    except Exception as error:  # a bug here must not hide the other checks
        return [
            cannot_check(
                check.group,
                check.title,
                f"the check failed: {describe(error)}",
                "report this error (pipeline/preflight)",
            )
        ]


def online_items(
    target: Target, ctx: Context | None, *, shared_credentials: bool, no_credentials: str = ""
) -> Iterator[Item]:
    """The account's items: the caller's account first; the rest only with credentials of that account."""
    config = target.config
    pipeline = ctx.pipeline if ctx is not None else PIPELINE
    checks = (
        pipeline_checks(config)
        if isinstance(config, PipelineConfig)
        else environment_checks(config, pipeline)
    )
    title = f"credentials of account {target.account}"
    hint = (
        f"export AWS_PROFILE=<a profile of account {target.account}> (or AWS_ACCESS_KEY_ID and "
        f"AWS_SECRET_ACCESS_KEY), then: make preflight ENV={target.name}"
    )

    def skipped(reason: str) -> Iterator[Item]:
        for check in checks:
            yield cannot_check(check.group, check.title, reason)

    if ctx is None or not ctx.aws.has_credentials():
        yield cannot_check("Account", title, no_credentials or "no AWS credentials found", hint)
        yield from skipped("no credentials (above)")
        return
    try:
        account = caller_account(ctx, target.region)
    except (ClientError, BotoCoreError) as error:
        yield cannot_check("Account", title, f"the credentials do not work: {describe(error)}", hint)
        yield from skipped("no working credentials (above)")
        return
    if account != target.account:
        detail = f"they are for account {account}"
        what = (
            f"{hint}; or, if {account} is the {target.name} account, put it in account "
            f"({config_line(config, ('account',))})"
        )
        # With one set of credentials for every account (`--env all`), the others are expected to differ.
        yield (cannot_check if shared_credentials else fix)("Account", title, detail, what)
        yield from skipped(f"credentials of account {account} (above)")
        return
    yield ok("Account", title)
    for check in checks:
        yield from run_check(check, ctx)


def check_target(
    target: Target,
    ctx: Context | None,
    *,
    offline: bool,
    shared_credentials: bool = False,
    no_credentials: str = "",
) -> Iterator[Item]:
    yield from config_items(target)
    if not offline:
        yield from online_items(
            target, ctx, shared_credentials=shared_credentials, no_credentials=no_credentials
        )


# --- output --------------------------------------------------------------------------------------------
WIDTH = len(Status.CANNOT_CHECK)


def format_item(item: Item) -> str:
    text = f"    {item.status:<{WIDTH}}  {item.title}" + (f": {item.detail}" if item.detail else "")
    if item.fix:
        text += f"\n    {'':<{WIDTH}}  -> {item.fix}"
    return text


def heading(target: Target) -> str:
    regions = " and ".join(dict.fromkeys((target.region, EDGE_REGION)))
    return f"{target.name}: account {target.account}, {regions}"


def summary(items: Sequence[Item]) -> str:
    counts = Counter(item.status for item in items)
    return ", ".join(f"{counts[status]} {status}" for status in Status)


def preflight(
    selected: Sequence[Target],
    ctx: Context | None,
    *,
    offline: bool = False,
    out: TextIO = sys.stdout,
    no_credentials: str = "",
) -> list[Item]:
    """Check each target, printing every item as it is known; returns them all."""
    shared = len(selected) > 1
    every: list[Item] = []
    for target in selected:
        print(f"\n{heading(target)}", file=out, flush=True)
        group = None
        items: list[Item] = []
        for item in check_target(
            target, ctx, offline=offline, shared_credentials=shared, no_credentials=no_credentials
        ):
            if item.group != group:
                group = item.group
                print(f"  {group}", file=out)
            print(format_item(item), file=out, flush=True)
            items.append(item)
        print(f"  {target.name}: {summary(items)}", file=out, flush=True)
        every.extend(items)
    return every


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    names = [*ENVIRONMENTS, PIPELINE_TARGET]
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.preflight",
        description="The read-only check of the accounts before the first push (make preflight ENV=...).",
    )
    parser.add_argument(
        "--env", choices=[*names, "all"], default="all", help="the account to check (default: all of them)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="only list the placeholders of stages/config.py (no AWS call)"
    )
    args = parser.parse_args(argv)
    selected = targets(args.env)
    ctx, no_credentials = None, ""
    if not args.offline:
        try:
            ctx = Context(aws=Aws(boto3.Session()), pipeline=PIPELINE)
        except ProfileNotFound as error:
            no_credentials = f"{error}: name a profile of ~/.aws/config in AWS_PROFILE"
    items = preflight(selected, ctx, offline=args.offline, out=out, no_credentials=no_credentials)
    counts = Counter(item.status for item in items)
    env = "" if args.env == "all" else f" ENV={args.env}"
    print(f"\npreflight: {summary(items)}", file=out)
    if counts[Status.FIX]:
        print(f"Fix each FIX item (what to do is under it), then run `make preflight{env}` again.", file=out)
        return 1
    if counts[Status.CANNOT_CHECK]:
        print(
            "Nothing to fix among what was checked, but some items could not be checked (how: under each).",
            file=out,
        )
        return 1
    print("Nothing to fix." if args.offline else "Nothing to fix: ready for the first push.", file=out)
    return 0
