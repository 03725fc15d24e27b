"""`python -m pipeline.serving CDK_OUT`: after a stage's App deploy, is this run's build what serves?

A stack update can succeed while the wrong thing serves: a first create completes even when the
circuit breaker has failed the deployment and no task runs (aws/containers-roadmap#1369), and nothing
else checks that the tasks run the images this run built. This step, after each App deploy (staging and
prod), checks what is actually running, against what this run's cloud assembly says should:

1. **this run's images**: every image the stage's templates name in the CDK container-assets
   repository must be one this run's asset manifests publish; ECR's `DescribeImages` gives each tag's
   digest (a tag is its asset's hash);
2. **every ECS service of the cluster** (`ListServices`, matched to the templates' services by task
   definition family): the PRIMARY deployment is `COMPLETED` (rolloutState) with at least its desired
   count running, no deployment is `FAILED` (rolled back, or a first create with nothing to roll back
   to), every running task belongs to that deployment, is `HEALTHY` where the task definition has an
   essential container with a health check, and runs this run's image digests, container by container.
   A deployment still `IN_PROGRESS` (a canary's bake, tasks starting) is waited for, with progress
   printed, up to `--timeout-minutes`;
3. **the compressor** Lambda (each function with an image in the templates): `Code.ImageUri` names this
   run's tag and `Code.ResolvedImageUri` its digest, and its last update succeeded;
4. **the API** (`SiteUrl`): `/api/v1/health` reports the web container's digest (and `COMMIT_ID`, when
   the pipeline passes it), on several requests, so more than one task answers.

A failure prints the service's deployments (status, rolloutState and its reason, counts, task
definition) and its last events. Exit 0 when all holds, 1 when something does not, 2 when the check
cannot run (settings missing, no such stage in CDK_OUT).

Settings (environment): `STAGE_ID` (the stage's assembly, `Staging` or `Prod`), `ClusterName` and
`SiteUrl` (stage outputs), `SERVING_ROLE_ARN` (the stage account's read-only role, see
`pipeline.access_stack`), `TARGET_REGION`, `COMMIT_ID` (optional).

`--local` (`make rehearse`): only the API, against the local stack: its build must be the working
tree's commit (`git rev-parse HEAD`, or `COMMIT_ID`) and image `local`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.aws import StepError, session_for

ASSETS_REPOSITORY_PREFIX = "cdk-"
ASSETS_REPOSITORY_MARK = "-container-assets-"
"""The CDK bootstrap's image repository: `cdk-<qualifier>-container-assets-<account>-<region>`."""
HEALTH = "/api/v1/health"
EVENTS_SHOWN = 8
"""The service's last events printed on a failure (ECS keeps the newest 100)."""
POLL_SECONDS = 15.0
LOCAL = "local"

Out = Callable[[str], None]


class NotServing(Exception):
    """What serves is not this run's build (or not healthy); the message says what was found."""


# --- what this run should serve ----------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRef:
    """An image of this run: its tag (the asset's hash) in the stage's assets repository."""

    repository: str
    tag: str
    label: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.label or 'image'} ({self.tag[:12]})"


@dataclass(frozen=True)
class ExpectedService:
    family: str
    """Its task definition's family: how a running service is matched to the template's."""
    images: Mapping[str, ImageRef]
    """Container name -> this run's image, for the containers that run one (others: a pinned public
    image, e.g. the Datadog agent, named as it is and not ours to check by digest)."""
    health_checked: bool
    """An essential container has a health check: ECS reports the task HEALTHY (else UNKNOWN)."""
    api_container: str | None
    """The container behind the load balancer (the API), if any."""


@dataclass(frozen=True)
class ExpectedFunction:
    name: str
    image: ImageRef


@dataclass(frozen=True)
class Expected:
    stage: str
    account: str
    region: str
    repository: str
    services: tuple[ExpectedService, ...]
    functions: tuple[ExpectedFunction, ...]

    @property
    def images(self) -> set[ImageRef]:
        found = {image for s in self.services for image in s.images.values()}
        return found | {f.image for f in self.functions}

    @property
    def api(self) -> tuple[ExpectedService, str] | None:
        for service in self.services:
            if service.api_container:
                return service, service.api_container
        return None


def _image_text(value: Any) -> str | None:
    """An image reference as the template writes it: a string, or `Fn::Sub` of the partition's suffix."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"].replace("${AWS::URLSuffix}", "amazonaws.com")
        return None if "${" in text else text
    return None


def _asset_image(value: Any, published: Mapping[tuple[str, str], str], where: str) -> ImageRef | str:
    """This run's image for a template's image reference, or the reference itself when it is not in an
    assets repository. An assets-repository image that this run does not publish is a mix-up: refused."""
    text = _image_text(value)
    if text is None:
        raise StepError(f"{where}: cannot read its image from the template: {json.dumps(value)[:200]}")
    name, _, tag = text.rpartition(":")
    repository = name.split("/", 1)[1] if "/" in name else name
    if not (repository.startswith(ASSETS_REPOSITORY_PREFIX) and ASSETS_REPOSITORY_MARK in repository):
        return text
    if "@" in text or (repository, tag) not in published:
        raise StepError(
            f"{where} names {text}, which this run's asset manifests do not publish: a tag from "
            "elsewhere would deploy an image this run did not build"
        )
    return ImageRef(repository, tag, published[(repository, tag)])


def expected_from_assembly(cdk_out: Path, stage: str) -> Expected:
    """What the stage's templates and asset manifests in CDK_OUT say should serve."""
    folder = cdk_out / f"assembly-{stage}"
    if not folder.is_dir():
        raise StepError(f"no {folder}: is CDK_OUT the synth output, and STAGE_ID a stage ({stage!r})?")
    manifest = json.loads((folder / "manifest.json").read_text())
    names: dict[tuple[str, str], set[str]] = {}
    for path in sorted(folder.glob("*.assets.json")):
        for asset in json.loads(path.read_text()).get("dockerImages", {}).values():
            for destination in asset.get("destinations", {}).values():
                key = (destination["repositoryName"], destination["imageTag"])
                # e.g. `Web/TaskDefinition/App/AssetImage` -> `Web`: one image can serve several
                names.setdefault(key, set()).add(str(asset.get("displayName") or "image").split("/")[0])
    published = {key: "+".join(sorted(found)) for key, found in names.items()}
    services: list[ExpectedService] = []
    functions: list[ExpectedFunction] = []
    environments = set()
    for artifact in manifest["artifacts"].values():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template = json.loads((folder / artifact["properties"]["templateFile"]).read_text())
        resources = template.get("Resources", {})
        for logical_id, resource in resources.items():
            where = f"{artifact['properties'].get('stackName', '?')}/{logical_id}"
            if resource["Type"] == "AWS::ECS::Service":
                services.append(_service(resources, resource, published, where))
                environments.add(artifact["environment"])
            elif resource["Type"] == "AWS::Lambda::Function" and "ImageUri" in resource["Properties"].get(
                "Code", {}
            ):
                function = _function(resource, published, where)
                if function is not None:
                    functions.append(function)
                environments.add(artifact["environment"])
    if not services:
        raise StepError(f"no ECS service in {folder}'s templates: is {stage!r} the right stage?")
    if len(environments) != 1:  # aws://account/region: the stage's services all live in one
        raise StepError(f"the stage's services and functions live in {sorted(environments)}, not one place")
    environment = environments.pop()
    account, region = environment.removeprefix("aws://").split("/")
    repositories = {image.repository for s in services for image in s.images.values()}
    repositories |= {f.image.repository for f in functions}
    if len(repositories) != 1:
        raise StepError(f"the stage's images live in {sorted(repositories) or 'no'} assets repository")
    return Expected(stage, account, region, repositories.pop(), tuple(services), tuple(functions))


def _service(
    resources: Mapping[str, Any],
    resource: Mapping[str, Any],
    published: Mapping[tuple[str, str], str],
    where: str,
) -> ExpectedService:
    reference = resource["Properties"].get("TaskDefinition")
    if not (isinstance(reference, dict) and "Ref" in reference):
        raise StepError(f"{where}: its task definition is not a resource of the same template")
    definition = resources[reference["Ref"]]["Properties"]
    family = definition.get("Family")
    if not isinstance(family, str):
        raise StepError(f"{where}: its task definition has no fixed Family, by which the check finds it")
    images: dict[str, ImageRef] = {}
    health_checked = False
    for container in definition["ContainerDefinitions"]:
        image = _asset_image(container["Image"], published, f"{where} container {container['Name']}")
        if isinstance(image, ImageRef):
            images[container["Name"]] = image
        health_checked |= bool(container.get("HealthCheck")) and container.get("Essential", True) is not False
    balancers = resource["Properties"].get("LoadBalancers") or []
    api = balancers[0].get("ContainerName") if balancers else None
    return ExpectedService(family, images, health_checked, api)


def _function(
    resource: Mapping[str, Any], published: Mapping[tuple[str, str], str], where: str
) -> ExpectedFunction | None:
    name = resource["Properties"].get("FunctionName")
    if not isinstance(name, str):
        raise StepError(f"{where}: an image function without a fixed FunctionName cannot be checked")
    image = _asset_image(resource["Properties"]["Code"]["ImageUri"], published, where)
    return ExpectedFunction(name, image) if isinstance(image, ImageRef) else None


# --- the registry ------------------------------------------------------------------------------------
def digests_of(ecr: Any, repository: str, images: Iterable[ImageRef]) -> dict[str, str]:
    """Tag -> digest of each of this run's images, from ECR (one call per tag: a stage has a few, and
    ECR refuses a whole batch for one missing tag); a tag missing there fails."""
    found: dict[str, str] = {}
    for image in sorted(set(images), key=lambda i: i.tag):
        try:
            answer = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": image.tag}])
        except ClientError as error:
            if error.response["Error"]["Code"] != "ImageNotFoundException":
                raise
            raise NotServing(
                f"this run's {image} is not in {repository}: did the Assets stage publish it?"
            ) from None
        [detail] = answer["imageDetails"]
        found[image.tag] = detail["imageDigest"]
    return found


# --- ECS -----------------------------------------------------------------------------------------------
def family_of(task_definition_arn: str) -> str:
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def describe_deployments(service: Mapping[str, Any]) -> list[str]:
    """The deployments and last events of a service, for a person reading a failure."""
    lines = [
        f"    service {service['serviceName']}: desired {service.get('desiredCount')}, running "
        f"{service.get('runningCount')}, pending {service.get('pendingCount')}"
    ]
    for deployment in service.get("deployments", []):
        reason = deployment.get("rolloutStateReason")
        lines.append(
            f"    deployment {deployment.get('id', '?')} {deployment.get('status')} "
            f"{deployment.get('rolloutState', '-')}: {deployment.get('runningCount', 0)}/"
            f"{deployment.get('desiredCount', 0)} running, {deployment.get('failedTasks', 0)} failed, "
            f"{family_of(deployment.get('taskDefinition', '?'))}:"
            f"{deployment.get('taskDefinition', '?').rsplit(':', 1)[-1]}" + (f" ({reason})" if reason else "")
        )
    events = service.get("events", [])[:EVENTS_SHOWN]
    if events:
        lines.append(f"    its last {len(events)} events, newest first:")
        lines += [f"      {e.get('createdAt', '')} {e.get('message', '')}" for e in events]
    return lines


def services_of(ecs: Any, cluster: str) -> dict[str, dict[str, Any]]:
    """Every service of the cluster, by its task definition's family."""
    arns: list[str] = []
    for page in ecs.get_paginator("list_services").paginate(cluster=cluster):
        arns += page.get("serviceArns", [])
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(arns), 10):
        answer = ecs.describe_services(cluster=cluster, services=arns[start : start + 10])
        for service in answer.get("services", []):
            if service.get("status") == "ACTIVE":
                found[family_of(service["taskDefinition"])] = service
    return found


def running_tasks(ecs: Any, cluster: str, service_name: str) -> list[dict[str, Any]]:
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=service_name, desiredStatus="RUNNING"
    ):
        arns += page.get("taskArns", [])
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100]).get("tasks", [])
    return tasks


@dataclass
class ServiceState:
    """One look at a service: settled (all holds), still moving (wait), or failed (stop)."""

    settled: bool = False
    failed: str | None = None
    progress: str = ""


def judge_service(
    expected: ExpectedService,
    service: Mapping[str, Any],
    tasks: list[dict[str, Any]],
    digests: Mapping[str, str],
) -> ServiceState:
    """What one service's deployments and running tasks say, against this run's images."""
    deployments = service.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return ServiceState(failed="it has no PRIMARY deployment")
    failed = [d for d in deployments if d.get("rolloutState") == "FAILED"]
    if failed:
        reason = failed[0].get("rolloutStateReason") or "no reason given"
        if primary.get("rolloutState") == "FAILED":
            return ServiceState(
                failed=f"its deployment FAILED with nothing to roll back to ({reason}); a first create reports "
                "success to CloudFormation all the same (aws/containers-roadmap#1369)"
            )
        return ServiceState(failed=f"a deployment FAILED and was rolled back ({reason})")
    desired, running = int(primary.get("desiredCount", 0)), int(primary.get("runningCount", 0))
    state = primary.get("rolloutState", "COMPLETED")
    healthy = [t for t in tasks if _healthy(t, expected)]
    progress = f"{state}, {running}/{desired} running, {len(healthy)} healthy"
    if state == "IN_PROGRESS" or len([d for d in deployments if d.get("status") == "ACTIVE"]):
        return ServiceState(progress=progress + ", deployment in progress")
    if desired < 1:
        return ServiceState(failed="its desired count is 0: no task serves")
    if running < desired or len(healthy) < desired:
        return ServiceState(progress=progress + ", waiting for tasks")
    for task in tasks:
        problem = _wrong_task(task, primary, expected, digests)
        if problem:
            return ServiceState(failed=problem)
    return ServiceState(settled=True, progress=progress)


def _healthy(task: Mapping[str, Any], expected: ExpectedService) -> bool:
    if task.get("lastStatus") != "RUNNING":
        return False
    return task.get("healthStatus") == "HEALTHY" if expected.health_checked else True


def _wrong_task(
    task: Mapping[str, Any], primary: Mapping[str, Any], expected: ExpectedService, digests: Mapping[str, str]
) -> str | None:
    name = task.get("taskArn", "?").rsplit("/", 1)[-1]
    if task.get("taskDefinitionArn") != primary.get("taskDefinition"):
        return (
            f"task {name} runs {task.get('taskDefinitionArn', '?').rsplit('/', 1)[-1]}, not the primary "
            f"deployment's {primary.get('taskDefinition', '?').rsplit('/', 1)[-1]}"
        )
    containers = {c.get("name"): c for c in task.get("containers", [])}
    for container_name, image in sorted(expected.images.items()):
        container = containers.get(container_name)
        if container is None:
            return f"task {name} has no container {container_name!r}"
        want, got = digests[image.tag], container.get("imageDigest")
        if got != want:
            return (
                f"task {name} container {container_name!r} runs {got or 'no known digest'} "
                f"({container.get('image', '?')}), not this run's {image}: {want}"
            )
    return None


def check_services(
    ecs: Any,
    cluster: str,
    expected: Expected,
    digests: Mapping[str, str],
    *,
    timeout_s: float,
    out: Out,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = POLL_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Every expected service settled on this run's images; waits while deployments move. Returns the
    services by family (the API's service tells how many tasks answer)."""
    deadline = clock() + timeout_s
    started = clock()
    while True:
        found = services_of(ecs, cluster)
        missing = [s.family for s in expected.services if s.family not in found]
        if missing:
            raise NotServing(
                f"no service of the cluster {cluster} runs task definition family {', '.join(missing)} "
                f"(it has: {', '.join(sorted(found)) or 'none'})"
            )
        unknown = sorted(set(found) - {s.family for s in expected.services})
        if unknown:
            raise NotServing(f"the cluster {cluster} runs services this stage does not define: {unknown}")
        waiting = []
        for service in expected.services:
            described = found[service.family]
            tasks = running_tasks(ecs, cluster, described["serviceName"])
            state = judge_service(service, described, tasks, digests)
            if state.failed:
                raise NotServing(
                    "\n".join([f"{service.family}: {state.failed}", *describe_deployments(described)])
                )
            if not state.settled:
                waiting.append((service, described, state))
        if not waiting:
            for service in expected.services:
                images = ", ".join(f"{c} {i}" for c, i in sorted(service.images.items()))
                out(f"ok    {service.family}: deployment COMPLETED, every task healthy and on {images}")
            return found
        elapsed = clock() - started
        if clock() >= deadline:
            lines = [f"still not settled after {elapsed / 60:.0f} min (--timeout-minutes):"]
            for service, described, state in waiting:
                lines += [f"{service.family}: {state.progress}", *describe_deployments(described)]
            raise NotServing("\n".join(lines))
        for service, _, state in waiting:
            out(f"wait  {service.family}: {state.progress} ({elapsed:.0f} s)")
        sleep(poll_s)


# --- Lambda ----------------------------------------------------------------------------------------------
def check_functions(
    lambda_: Any,
    expected: Expected,
    digests: Mapping[str, str],
    *,
    timeout_s: float,
    out: Out,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 5.0,
) -> None:
    """Each image function runs this run's image: its tag and its resolved digest."""
    for function in expected.functions:
        deadline = clock() + timeout_s
        while True:
            answer = lambda_.get_function(FunctionName=function.name)
            configuration, code = answer.get("Configuration", {}), answer.get("Code", {})
            update = configuration.get("LastUpdateStatus", "Successful")
            if update != "InProgress" or clock() >= deadline:
                break
            out(f"wait  {function.name}: its last update is InProgress")
            sleep(poll_s)
        if update != "Successful":
            reason = configuration.get("LastUpdateStatusReason") or ""
            raise NotServing(f"{function.name}: its last update is {update} {reason}".rstrip())
        want = digests[function.image.tag]
        image_uri, resolved = code.get("ImageUri", ""), code.get("ResolvedImageUri", "")
        if image_uri.rpartition(":")[2] != function.image.tag:
            raise NotServing(
                f"{function.name} is configured with {image_uri}, not this run's {function.image}"
            )
        if resolved.rpartition("@")[2] != want:
            raise NotServing(f"{function.name} runs {resolved or 'an unknown image'}, not this run's {want}")
        out(f"ok    {function.name}: runs {function.image}, {want}")


# --- the API ---------------------------------------------------------------------------------------------
def check_api(
    client: httpx.Client,
    site_url: str,
    *,
    digest: str,
    commit: str | None,
    answers: int,
    timeout_s: float,
    out: Out,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """`answers` health answers, each reporting `digest` (and `commit`); waits for a first answer."""
    url = f"{site_url.rstrip('/')}{HEALTH}"
    deadline = clock() + timeout_s
    seen: dict[tuple[str, str], int] = {}
    while sum(seen.values()) < answers:
        try:
            response = client.get(url, headers={"Cache-Control": "no-cache"})
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as error:
            body, problem = None, f"{type(error).__name__}: {error}"
        else:
            problem = f"answered {response.status_code}"
        if not isinstance(body, dict):
            if clock() >= deadline:
                raise NotServing(f"{url} did not answer within {timeout_s:.0f} s: {problem}")
            sleep(5)
            continue
        build = body.get("build") or {}
        got = (str(build.get("image_digest")), str(build.get("commit")))
        seen[got] = seen.get(got, 0) + 1
        if got[0] != digest:
            raise NotServing(f"{url} reports image {got[0]} ({build.get('image')}), not this run's {digest}")
        if commit and got[1] != commit:
            raise NotServing(f"{url} reports commit {got[1]}, not this run's {commit}")
    out(
        f"ok    API: {answers} answers of {url} report {digest}"
        + (f", commit {commit[:12]}" if commit else "")
    )


# --- running it --------------------------------------------------------------------------------------
def working_tree_commit(root: Path) -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "HEAD"],  # noqa: S607 (git from PATH, as everywhere in this repository)
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def check_local(env: Mapping[str, str], client: httpx.Client, out: Out, *, timeout_s: float) -> None:
    """The rehearsal's part: the local stack's API reports the working tree's commit and a local image."""
    site = env.get("SiteUrl", "").strip()
    if not site:
        raise StepError("SiteUrl is not set: the local stack's URL (make rehearse sets it)")
    commit = env.get("COMMIT_ID", "").strip() or working_tree_commit(Path.cwd())
    check_api(client, site, digest=LOCAL, commit=commit, answers=3, timeout_s=timeout_s, out=out)


def check_stage(
    expected: Expected,
    *,
    cluster: str,
    site_url: str,
    commit: str | None,
    ecr: Any,
    ecs: Any,
    lambda_: Any,
    http: httpx.Client,
    timeout_s: float,
    out: Out,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Every check of a deployed stage, in order; NotServing at the first that does not hold."""
    digests = digests_of(ecr, expected.repository, expected.images)
    for image in sorted(expected.images, key=lambda i: i.label):
        out(f"      this run's {image}: {digests[image.tag]}")
    found = check_services(
        ecs, cluster, expected, digests, timeout_s=timeout_s, out=out, sleep=sleep, clock=clock
    )
    check_functions(
        lambda_, expected, digests, timeout_s=min(timeout_s, 300.0), out=out, sleep=sleep, clock=clock
    )
    api = expected.api
    if api is None:
        out("      no service is behind the load balancer: no API to ask")
        return
    service, container = api
    answers = max(3, 2 * int(found[service.family].get("desiredCount", 1)))
    check_api(
        http,
        site_url,
        digest=digests[service.images[container].tag],
        commit=commit,
        answers=answers,
        timeout_s=min(timeout_s, 300.0),
        out=out,
        sleep=sleep,
        clock=clock,
    )


def main(argv: list[str] | None = None, *, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serving", description=__doc__.splitlines()[0])
    parser.add_argument("cdk_out", type=Path, nargs="?", help="this run's cloud assembly (the synth output)")
    parser.add_argument("--local", action="store_true", help="only the local stack's API (make rehearse)")
    parser.add_argument("--timeout-minutes", type=float, default=30.0, help="for deployments in progress")
    args = parser.parse_args(argv)
    settings = dict(env if env is not None else os.environ)
    timeout_s = args.timeout_minutes * 60

    def out(line: str) -> None:
        print(line, flush=True)

    headers = {"User-Agent": "yoctogram-pipeline-serving"}
    try:
        with httpx.Client(timeout=15, follow_redirects=True, headers=headers) as http:
            if args.local:
                out("==> What serves: the local stack's API")
                check_local(settings, http, out, timeout_s=timeout_s)
                out("==> The local stack serves the working tree's build")
                return 0
            if args.cdk_out is None:
                raise StepError("CDK_OUT is required (the synth output), or --local")
            missing = [n for n in ("STAGE_ID", "ClusterName", "SiteUrl") if not settings.get(n, "").strip()]
            if missing:
                raise StepError(f"{', '.join(missing)} not set: the pipeline sets them (stage outputs)")
            expected = expected_from_assembly(args.cdk_out, settings["STAGE_ID"])
            out(f"==> What serves in {expected.stage} ({expected.account}/{expected.region})")
            region = settings.get("TARGET_REGION") or expected.region
            session = session_for(settings.get("SERVING_ROLE_ARN") or None, region, "serving")
            check_stage(
                expected,
                cluster=settings["ClusterName"],
                site_url=settings["SiteUrl"],
                commit=settings.get("COMMIT_ID", "").strip() or None,
                ecr=session.client("ecr"),
                ecs=session.client("ecs"),
                lambda_=session.client("lambda"),
                http=http,
                timeout_s=timeout_s,
                out=out,
            )
    except StepError as error:
        print(f"ERROR: the serving check cannot run: {error}", file=sys.stderr)
        return 2
    except NotServing as error:
        print(f"FAIL  {error}", file=sys.stderr)
        print("ERROR: what serves is not this run's build (above)", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"ERROR: the serving check could not ask AWS: {error}", file=sys.stderr)
        return 2
    out(f"==> {expected.stage} serves this run's build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
