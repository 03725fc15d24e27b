"""The shell commands of every CodeBuild step of the pipeline: the one place they are written.

`pipeline.steps` turns each `StepCommands` into a CodeBuild step, verbatim, and `scripts/rehearse.py`
(`make rehearse`) runs the same commands here, in the pipeline's order, with the local stack standing in
for staging. `tests/test_pipeline_rehearse.py` reads the commands back out of the synthesized pipeline
template and checks that rehearse runs every one of them, so the two cannot drift apart.

A command reads what differs between the pipeline and a rehearsal from environment variables: the
stage outputs under their own names (`SiteUrl`, `ClusterName`, ...; the pipeline sets them with
`env_from_cfn_outputs`, rehearse from the local stack), and the settings in `env` / `local_env`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

PYTHON_VERSION = "3.12"
"""CodeBuild `runtime-versions` (major.minor; the image pins the patch): the backend image's Python."""
NODE_VERSION = "22"
"""CodeBuild `runtime-versions`: the web client's build needs Node >= 20.19 (Vite 8); 22 is the LTS that
package.json also installs for the CDK CLI."""

STEP_REQUIREMENTS = "python -m pip install --quiet --requirement pipeline/requirements.txt"
LOADTEST_REQUIREMENTS = "python -m pip install --quiet --requirement pipeline/requirements-loadtest.txt"

LOADTEST_REPORTS = "reports/loadtest"
"""Where `python -m loadtests run` writes run folders (`latest` links to the newest)."""
JUNIT_DIR = "reports/junit"
"""Where `pipeline.review` puts the load test's JUnit file for the CodeBuild report group (a real folder:
the report group must not depend on CodeBuild following the `latest` symlink)."""
JUNIT_FILE = "loadtest.xml"
REVIEW_PAGE = "capacity.html"
"""The capacity review's page in a run folder (written by `python -m loadtests.capacity`)."""
CHANGES_PAGE = "changes/changes.html"
"""The prod change report's page in a run folder (written by `python -m pipeline.prod_changes`)."""
APPROVAL_PAGE = "approval.html"
"""The one page the prod approval's link opens, in a run folder (written by `python -m pipeline.approval`)."""
RELEASES_PREFIX = "releases/prod/"
"""The record of the release that last reached prod, in the reports bucket (`pipeline.releases`): outside
`runs/`, which expires."""
RELEASES_LOCAL = "reports/rehearse/releases"
"""`make rehearse`'s stand-in for the release record (`s3://<reports bucket>/releases/prod/`): kept across
rehearsals, written only by `make rehearse REHEARSE_ARGS=--record`."""
BASELINE_PREFIX = "baseline/"
"""The load-test baselines in the reports bucket (`pipeline.baseline`): the staging run of every release
that reached prod, per target, profile and shape; outside `runs/`, which expires."""
BASELINE_FETCHED = "reports/loadtest-baseline"
"""Where the LoadTest step fetches the baselines to (`python -m loadtests run --baseline-dir`)."""
BASELINE_LOCAL = "reports/rehearse/baseline"
"""`make rehearse`'s stand-in for `s3://<reports bucket>/baseline/`: written only by `--record`."""


def console_object_url(region: str, bucket: str, key: str) -> str:
    """The S3 console's page of one object: it needs a console login (no presigned URL that expires with
    a build's credentials), and its Open button shows the file."""
    return f"https://{region}.console.aws.amazon.com/s3/object/{bucket}?region={region}&bucketType=general&prefix={key}"


@dataclass(frozen=True)
class Local:
    """What `make rehearse` does with a command.

    `run`: run it verbatim. `stand-in`: run `command` instead, because the original only makes sense in
    AWS. `skip`: nothing here can stand in; rehearse prints `reason`.
    """

    how: Literal["run", "stand-in", "skip"]
    reason: str = ""
    command: str | None = None


RUN = Local("run")


@dataclass(frozen=True)
class Command:
    text: str
    local: Local = RUN


@dataclass(frozen=True, kw_only=True)
class StepCommands:
    """The commands of one CodeBuild step, by buildspec phase."""

    name: str
    """The step's id: its action's name in the pipeline."""
    purpose: str
    install: tuple[Command, ...] = ()
    build: tuple[Command, ...] = ()
    post_build: tuple[Command, ...] = ()
    """Run even when a `build` command failed (CodeBuild's post_build phase): a failed load test still
    gets its capacity review and its report uploaded."""
    outputs: tuple[str, ...] = ()
    """Stage outputs the commands read, each as an environment variable of the output's name."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Settings of the pipeline's run (plain CodeBuild environment variables)."""
    local_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The same settings for `make rehearse`."""

    @property
    def commands(self) -> tuple[Command, ...]:
        return (*self.install, *self.build, *self.post_build)


SYNTH = StepCommands(
    name="Synth",
    purpose="lint, unit and infrastructure tests, then cdk synth with the cdk-nag gate and cfn-lint",
    # The same targets a developer runs; make installs the pinned Python and npm dependencies itself.
    build=(Command("make test-ci"), Command("make synth")),
)

IMAGE_SCAN = StepCommands(
    name="ImageScan",
    purpose="fail on critical findings of ECR's scan of every image the Assets stage pushed",
    install=(Command(STEP_REQUIREMENTS),),
    build=(
        Command(
            "python -m pipeline.image_scan cdk.out",
            Local(
                "skip",
                "the images are built and pushed only by the pipeline's Assets stage (Docker, ECR); "
                "there is no registry here to scan them",
            ),
        ),
    ),
)

MIGRATE = StepCommands(
    name="Migrate",
    purpose="run the new release's migration task on Fargate before the app stack deploys",
    install=(Command(STEP_REQUIREMENTS),),
    build=(
        Command(
            "python -m pipeline.migrate",
            Local(
                "stand-in",
                "the ECS task runs `python -m app.migrate` from the new backend image; here the same "
                "module runs against the local stack's database",
                "python -m app.migrate",
            ),
        ),
    ),
    outputs=("MigrationTaskDefinitionArn", "ClusterName", "TaskSubnetIds", "TaskSecurityGroupId"),
)

SERVING = StepCommands(
    name="Serving",
    purpose="what serves is this run's build: deployments completed and healthy, tasks, compressor and "
    "API on this run's image digests",
    install=(Command(STEP_REQUIREMENTS),),
    build=(
        Command(
            "python -m pipeline.serving cdk.out",
            Local(
                "stand-in",
                "there is no ECS, ECR or Lambda here (the images are built only by the pipeline); the "
                "local stack's API must report the working tree's commit",
                "python -m pipeline.serving --local",
            ),
        ),
    ),
    outputs=("SiteUrl", "ClusterName"),
)

SMOKE = StepCommands(
    name="Smoke",
    purpose="health, web page, config.json, register/login/feed, and a public upload through the site",
    install=(Command(STEP_REQUIREMENTS),),
    build=(Command('python -m pipeline.smoke --url "$SiteUrl"'),),
    outputs=("SiteUrl",),
)

LOAD_TEST = StepCommands(
    name="LoadTest",
    purpose="the Locust step shape with the staging thresholds and the regression gate, then the capacity "
    "review, uploaded",
    install=(Command(LOADTEST_REQUIREMENTS),),
    build=(
        # The regression gate's baseline: the staging run of the last release that reached prod.
        Command(
            'python -m pipeline.baseline fetch --target "$LOAD_TARGET" --profile "$LOAD_PROFILE" '
            f'--shape "$LOAD_SHAPE" --into {BASELINE_FETCHED}'
        ),
        Command(
            'python -m loadtests run --host "$SiteUrl" --target "$LOAD_TARGET" --shape "$LOAD_SHAPE" '
            '--profile "$LOAD_PROFILE" --run-time "$LOAD_RUN_TIME" --processes "$LOAD_PROCESSES" '
            f"--reports-dir {LOADTEST_REPORTS} --baseline-dir {BASELINE_FETCHED}"
        ),
    ),
    post_build=(Command(f"python -m pipeline.review {LOADTEST_REPORTS}/latest"),),
    outputs=(
        "SiteUrl",
        "ClusterName",
        "ServiceName",
        "LoadBalancerFullName",
        "DbClusterIdentifier",
    ),
    # Thresholds belong to a target (docs/design.md): staging's gates in the pipeline, `local` on a laptop.
    env=MappingProxyType(
        {
            "LOAD_TARGET": "staging",
            "LOAD_SHAPE": "step",
            "LOAD_PROFILE": "staging",
            "LOAD_RUN_TIME": "30m",
            "LOAD_PROCESSES": "2",
        }
    ),
    local_env=MappingProxyType(
        {
            "LOAD_TARGET": "local",
            "LOAD_SHAPE": "smoke",
            "LOAD_PROFILE": "local",
            "LOAD_RUN_TIME": "30s",
            "LOAD_PROCESSES": "1",
            "BASELINE_DIR": BASELINE_LOCAL,
        }
    ),
)

PROD_CHANGES = StepCommands(
    name="ProdChanges",
    purpose="the change report from the release that last reached prod to this run's prod templates",
    install=(
        Command(f"{STEP_REQUIREMENTS} --requirement requirements/infra.txt"),
        Command(
            "npm ci --no-audit --no-fund --loglevel=error",
            Local(
                "skip",
                "make has installed the pinned node_modules here already (the CDK's diff engine among "
                "them), and `npm ci` would replace them under everyone's feet",
            ),
        ),
    ),
    # Fails on a stateful prod resource replaced or removed without an allowance (changes-allowed.toml).
    build=(Command("python -m pipeline.prod_changes cdk.out"),),
    local_env=MappingProxyType({"RELEASES_DIR": RELEASES_LOCAL}),
)

APPROVAL = StepCommands(
    name="ApprovalPage",
    purpose="one page for the prod approval: capacity review, regression verdict, prod change report, "
    "image scan and permission broadening, each with its status",
    install=(Command(STEP_REQUIREMENTS),),
    build=(Command("python -m pipeline.approval"),),
)

RECORD_RELEASE = StepCommands(
    name="RecordRelease",
    purpose="store this run's prod templates, load-test results and metadata as the release in prod",
    install=(Command(STEP_REQUIREMENTS),),
    # Also adds the release's staging load test to the regression gate's baselines (pipeline.baseline).
    build=(Command("python -m pipeline.releases record cdk.out"),),
    local_env=MappingProxyType({"RELEASES_DIR": RELEASES_LOCAL, "BASELINE_DIR": BASELINE_LOCAL}),
)

GENERATED = MappingProxyType(
    {
        "SelfMutate": "CDK Pipelines' own step: `cdk deploy` of the pipeline stack into the pipeline account",
        "Assets": "CDK Pipelines' own step: `cdk-assets publish` builds the images with Docker on ARM "
        "CodeBuild and pushes them (and the file assets) to the environments' bootstrap buckets and "
        "registries",
        "ConfirmPermissionsBroadening": "CDK Pipelines' own step: `cdk diff --security-only` against the "
        "prod account, which needs that account's deploy role",
    }
)
"""CodeBuild steps that CDK Pipelines writes itself, with why `make rehearse` cannot run them here."""
