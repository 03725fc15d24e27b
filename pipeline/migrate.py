"""`python -m pipeline.migrate`: the pre step of each stage's app stack (docs/design.md: "Deploy order").

Runs the new release's migration task definition (`python -m app.migrate` in the new backend image) once
on Fargate, in the stage's cluster, task subnets and task security group, waits for it to stop, prints
its log, and exits 0 only when its container exited 0. The app stack, whose new code expects the new
schema, deploys only after that.

Environment (the pipeline sets it): the stage outputs `MigrationTaskDefinitionArn`, `ClusterName`,
`TaskSubnetIds` (comma-separated) and `TaskSecurityGroupId`; `TARGET_ROLE_ARN`, the stage account's role
that may run the task (`pipeline.access_stack`); `TARGET_REGION`, the stage's region.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import StepError, required_env, session_for

OUTPUTS = ("MigrationTaskDefinitionArn", "ClusterName", "TaskSubnetIds", "TaskSecurityGroupId")
POLL_SECONDS = 10.0


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run_task_request(env: dict[str, str]) -> dict[str, Any]:
    """ECS RunTask arguments for one migration task in the stage's private task subnets."""
    subnets = [s.strip() for s in env["TaskSubnetIds"].split(",") if s.strip()]
    if not subnets:
        raise StepError("TaskSubnetIds names no subnet")
    return {
        "cluster": env["ClusterName"],
        "taskDefinition": env["MigrationTaskDefinitionArn"],
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": "yoctogram-pipeline",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": subnets,
                "securityGroups": [env["TaskSecurityGroupId"]],
                "assignPublicIp": "DISABLED",
            }
        },
    }


def outcome(task: dict[str, Any]) -> tuple[bool, str]:
    """(succeeded, what happened) for a STOPPED task: every container must have exited 0."""
    containers = task.get("containers", [])
    codes = {c.get("name", "?"): c.get("exitCode") for c in containers}
    reason = task.get("stoppedReason") or task.get("stopCode") or "no reason given"
    if containers and all(code == 0 for code in codes.values()):
        return True, "the migration task exited 0"
    details = ", ".join(f"{name} exit code {code}" for name, code in codes.items()) or "no container ran"
    container_reasons = "; ".join(c["reason"] for c in containers if c.get("reason"))
    return (
        False,
        f"the migration task failed: {details} ({reason}{'; ' + container_reasons if container_reasons else ''})",
    )


def log_stream(task_definition: dict[str, Any], task_arn: str) -> tuple[str, str] | None:
    """(log group, stream) of the task's first container with the awslogs driver, if any."""
    task_id = task_arn.rsplit("/", 1)[-1]
    for container in task_definition.get("containerDefinitions", []):
        config = container.get("logConfiguration") or {}
        options = config.get("options") or {}
        if config.get("logDriver") == "awslogs" and "awslogs-group" in options:
            prefix = options.get("awslogs-stream-prefix")
            stream = f"{prefix}/{container['name']}/{task_id}" if prefix else task_id
            return options["awslogs-group"], stream
    return None


def wait_for_stop(
    describe: Callable[[], dict[str, Any]],
    *,
    timeout_s: float,
    poll_s: float = POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """Poll until the task is STOPPED (returned) or `timeout_s` passes (None), saying each new status."""
    deadline = clock() + timeout_s
    last = None
    while True:
        task = describe()
        status = task.get("lastStatus")
        if status != last:
            say(f"task status: {status}")
            last = status
        if status == "STOPPED":
            return task
        if clock() >= deadline:
            return None
        sleep(poll_s)


def migrate(session: Any, env: dict[str, str], timeout_s: float) -> None:
    ecs = session.client("ecs")
    request = run_task_request(env)
    say(f"Running {env['MigrationTaskDefinitionArn']} in cluster {env['ClusterName']}")
    started = ecs.run_task(**request)
    if started.get("failures") or not started.get("tasks"):
        raise StepError(f"ECS did not start the migration task: {started.get('failures')}")
    task_arn = started["tasks"][0]["taskArn"]
    say(f"task {task_arn}")

    def describe() -> dict[str, Any]:
        tasks = ecs.describe_tasks(cluster=env["ClusterName"], tasks=[task_arn])["tasks"]
        return tasks[0] if tasks else {"lastStatus": "PENDING"}  # ECS may not list a task it just started

    task = wait_for_stop(describe, timeout_s=timeout_s)
    if task is None:
        ecs.stop_task(cluster=env["ClusterName"], task=task_arn, reason="pipeline migration step timed out")
        print_log(session, ecs, env, task_arn)
        raise StepError(f"the migration task did not finish within {timeout_s / 60:.0f} minutes; stopped it")
    print_log(session, ecs, env, task_arn)
    ok, message = outcome(task)
    if not ok:
        raise StepError(message)
    say(message)


def print_log(session: Any, ecs: Any, env: dict[str, str], task_arn: str) -> None:
    """The task's log lines (what a failed deployment is debugged from); never fails the step itself."""
    try:
        definition = ecs.describe_task_definition(taskDefinition=env["MigrationTaskDefinitionArn"])
        location = log_stream(definition["taskDefinition"], task_arn)
        if location is None:
            say("the task definition has no awslogs log configuration: no log to show")
            return
        group, stream = location
        say(f"log {group} {stream}:")
        events = session.client("logs").get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True
        )
        for event in events.get("events", []):
            print(f"    {event['message']}", flush=True)
    except Exception as error:
        say(f"could not read the task's log: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout-minutes", type=float, default=30.0, help="stop the task after this long")
    args = parser.parse_args(argv)
    try:
        env = required_env(
            *OUTPUTS,
            hint="the pipeline sets them from the stage's outputs; `make rehearse` runs `python -m app.migrate` "
            "against the local database instead",
        )
        session = session_for(os.environ.get("TARGET_ROLE_ARN"), os.environ.get("TARGET_REGION"), "migrate")
        migrate(session, env, args.timeout_minutes * 60)
    except (StepError, BotoCoreError, ClientError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
