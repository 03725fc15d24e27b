"""`make rehearse` runs what the pipeline runs: the commands are read back out of the synthesized template."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pipeline.commands import APPROVAL, GENERATED, IMAGE_SCAN, PROD_CHANGES, RECORD_RELEASE, RELEASES_LOCAL
from pipeline.preflight.placeholders import locate
from stages.config import STAGING
from tests.conftest import load_file
from tests.templates import ROOT, PipelineView

# CDK Pipelines' own line that links an additional input (the cloud assembly) into a step's folder.
INPUT_LINK = re.compile(
    r'\[ ! -d "(?P<dir>[^"]+)" \] \|\| \{ echo .* exit 1; \} && ln -s -- "\$CODEBUILD_SRC_DIR_\w+" "(?P=dir)"'
)


@pytest.fixture(scope="module")
def rehearse() -> ModuleType:
    return load_file("rehearse", ROOT / "scripts" / "rehearse.py")


def generated_step(pipeline: PipelineView, logical_id: str) -> str | None:
    """Which of CDK Pipelines' own steps a CodeBuild project belongs to, if any."""
    path = pipeline.path(logical_id)
    for marker, name in (
        ("/UpdatePipeline/SelfMutation/", "SelfMutate"),
        ("/Assets/", "Assets"),
        ("/PipelinesSecurityCheck/", "ConfirmPermissionsBroadening"),
    ):
        if marker in path:
            return name
    return None


def our_projects(pipeline: PipelineView) -> dict[str, dict[str, Any]]:
    return {k: p for k, p in pipeline.projects().items() if generated_step(pipeline, k) is None}


def rehearsed_commands(rehearse: ModuleType) -> set[str]:
    """Every pipeline command the rehearsal accounts for (runs, stands in for, or skips with a reason)."""
    return {command.text for entry in rehearse.plan() if entry.step for command in entry.step.commands}


def test_every_command_of_every_codebuild_step_is_rehearsed(
    pipeline: PipelineView, rehearse: ModuleType
) -> None:
    rehearsed = rehearsed_commands(rehearse)
    checked = 0
    for logical_id, project in our_projects(pipeline).items():
        for command in pipeline.commands(project):
            if (link := INPUT_LINK.fullmatch(command)) is not None:
                # Only the image scan has an additional input: the cloud assembly it reads.
                assert link.group("dir") == "cdk.out" and IMAGE_SCAN.build[0].text.endswith(" cdk.out")
                continue
            assert command in rehearsed, (pipeline.path(logical_id), command)
            checked += 1
    assert checked >= 12


def test_the_rehearsal_runs_no_command_the_pipeline_does_not(
    pipeline: PipelineView, rehearse: ModuleType
) -> None:
    in_pipeline = {c for project in our_projects(pipeline).values() for c in pipeline.commands(project)}
    assert rehearsed_commands(rehearse) <= in_pipeline


def test_cdk_pipelines_own_steps_are_reported_as_skipped(
    pipeline: PipelineView, rehearse: ModuleType
) -> None:
    generated = {generated_step(pipeline, k) for k in pipeline.projects()} - {None}
    assert generated == set(GENERATED)
    skipped = {entry.name: entry.skip for entry in rehearse.plan() if entry.skip}
    assert set(skipped) == generated
    assert all(len(reason) > 40 for reason in skipped.values())


def test_what_cannot_run_here_says_why(rehearse: ModuleType) -> None:
    for entry in rehearse.plan():
        for command in entry.step.commands if entry.step else ():
            if command.local.how != "run":
                assert len(command.local.reason) > 40, command.text
            if command.local.how == "stand-in":
                assert command.local.command and command.local.command != command.text


def test_the_rehearsal_follows_the_pipelines_order(pipeline: PipelineView, rehearse: ModuleType) -> None:
    plan = rehearse.plan()
    stages = list(dict.fromkeys(entry.stage for entry in plan))
    assert stages == [s for s in pipeline.stage_names if s != "Source"]
    staging_steps = [
        a["Name"].rsplit(".", 1)[-1]
        for a in pipeline.actions("Staging")
        if a["ActionTypeId"]["Provider"] == "CodeBuild"
    ]
    assert staging_steps == [e.name for e in plan if e.stage == "Staging" and e.step]
    [stop] = [i for i, e in enumerate(plan) if e.marker == "approval"]
    assert plan[stop].name == "Approve"
    # after the approval, only what `--record` runs: the prod deployment is not rehearsed
    assert [(e.name, e.marker) for e in plan[stop + 1 :]] == [(RECORD_RELEASE.name, "after-approval")]
    approve = pipeline.action("Prod", "Approve")
    before = [
        a["Name"].split(".")[0] for a in pipeline.actions("Prod") if a["RunOrder"] < approve["RunOrder"]
    ]
    assert {e.name for e in plan[:stop] if e.stage == "Prod"} == set(before)


def test_every_make_target_the_pipeline_runs_exists(pipeline: PipelineView) -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for project in our_projects(pipeline).values():
        for command in pipeline.commands(project):
            if command.startswith("make "):
                assert command.split()[1] in targets, f"the Makefile has no target for `{command}`"
    assert "rehearse" in targets, "`make rehearse` runs scripts/rehearse.py"


def test_the_plan_lists_every_command(rehearse: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert rehearse.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for command in rehearsed_commands(rehearse):
        assert command in listed


def test_the_rehearsal_starts_with_the_offline_preflight(
    rehearse: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    first = rehearse.plan()[0]
    assert (first.stage, first.name, first.marker) == ("Build", "Preflight", "preflight")
    assert first.step is None  # not a pipeline step: nothing the pipeline runs is added
    assert rehearse.main(["--list"]) == 0
    assert f"run       {rehearse.PREFLIGHT}" in capsys.readouterr().out


def test_placeholders_are_a_warning_in_the_rehearsal(
    rehearse: ModuleType, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rehearsal = rehearse.Rehearsal(tmp_path, None)
    first = rehearse.plan()[0]
    assert rehearsal.do(first) is True  # the rehearsal goes on
    [result] = rehearsal.results
    assert result.status == "warn"
    assert "make preflight ENV=" in result.note
    listed = capfd.readouterr().out
    for placeholder in locate(STAGING):  # the shipped config is placeholders by design
        assert placeholder.where in listed


def test_the_rehearsal_runs_the_change_report_against_main(
    rehearse: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [(entry.stage, entry.name) for entry in rehearse.plan()]
    assert steps.index(("Build", "Changes")) == steps.index(("Build", "Synth")) + 1
    entry = rehearse.plan()[steps.index(("Build", "Changes"))]
    assert (entry.marker, entry.step) == (
        "changes",
        None,
    )  # not a pipeline step: nothing the pipeline runs is added
    assert rehearse.CHANGES.startswith("python -m pipeline.changes") and rehearse.CHANGES.endswith(
        "--base main"
    )
    assert rehearse.main(["--list"]) == 0
    assert f"run       {rehearse.CHANGES}" in capsys.readouterr().out


def test_the_change_report_is_skipped_without_git_history(
    rehearse: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's source is a zip of the branch: there is no history to compare with."""
    monkeypatch.setattr(rehearse, "ROOT", tmp_path)  # a checkout without .git
    rehearsal = rehearse.Rehearsal(tmp_path, None)
    [entry] = [e for e in rehearse.plan() if e.marker == "changes"]
    assert rehearsal.do(entry) is True  # the rehearsal goes on
    [result] = rehearsal.results
    assert result.status == "skipped"
    assert "no .git" in result.note and "zip" in result.note


def test_the_prod_change_report_is_rehearsed_against_a_local_record(
    rehearse: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the approval, against a folder standing in for the record (kept across rehearsals);
    `--record` runs the recording step after it, into the same folder."""
    steps = [(entry.stage, entry.name) for entry in rehearse.plan()]
    # then the approval page, which shows the change report among the run's other reports
    assert steps.index(("Prod", PROD_CHANGES.name)) == steps.index(("Prod", APPROVAL.name)) - 1
    assert steps.index(("Prod", APPROVAL.name)) == steps.index(("Prod", "Approve")) - 1
    for step in (PROD_CHANGES, RECORD_RELEASE):
        assert step.local_env["RELEASES_DIR"] == RELEASES_LOCAL
        assert [c.local.how for c in step.build] == ["run"]
    rehearsal = rehearse.Rehearsal(tmp_path, None)
    env = rehearsal.step_env(PROD_CHANGES)
    assert env["RELEASES_DIR"] == RELEASES_LOCAL and env["REPORTS_DIR"] == str(tmp_path / "bucket")
    # without --record the rehearsal ends at the approval, and never writes the stand-in
    ran: list[str] = []
    monkeypatch.setattr(rehearse.Rehearsal, "do", lambda self, entry: ran.append(entry.name) or True)
    assert rehearsal.run() is True
    assert ran[-1] == "Approve" and RECORD_RELEASE.name not in ran
    ran.clear()
    assert rehearse.Rehearsal(tmp_path, None, record_release=True).run() is True
    assert ran[-2:] == ["Approve", RECORD_RELEASE.name]
