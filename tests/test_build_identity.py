"""Which build a deployment is: the commit the pipeline synthesizes reaches every backend process
(`BUILD_COMMIT`, reported by /api/v1/health) and the web client's config.json, and nothing of a stage's
content reaches the pipeline's own template (a new commit alone must not make the pipeline mutate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stages.app import build_stages_app
from stages.components.backend_settings import BUILD_COMMIT_CONTEXT
from stages.config import STAGING
from tests.templates import PipelineView, StageTemplates, Synthesized, load_stage
from tests.test_web_client import deployments, staged_files

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def with_commit(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The staging Stage synthesized with a commit, as the pipeline's Synth step does (COMMIT_ID)."""
    outdir = tmp_path_factory.mktemp("with-commit")
    app = build_stages_app(
        str(outdir), configs=(STAGING,), frontend_dist=synthesized.frontend_dist, commit=COMMIT
    )
    app.synth()
    stage = load_stage(outdir, "Staging", STAGING)
    return Synthesized(
        app=app, outdir=outdir, frontend_dist=synthesized.frontend_dist, stages={"staging": stage}
    )


def backend_containers(stage: StageTemplates) -> list[tuple[str, dict[str, Any]]]:
    """(unit, container definition) of every container that runs the backend image, in every stack."""
    found = []
    for unit in ("Migrations", "App"):
        for definition in stage.resources(unit, "AWS::ECS::TaskDefinition").values():
            for container in definition["Properties"]["ContainerDefinitions"]:
                names = {e["Name"] for e in container.get("Environment", [])}
                if "POSTGRES_SSL_MODE" in names:  # only backend processes get the backend's settings
                    found.append((unit, container))
    return found


def test_every_backend_process_knows_the_commit(with_commit: Synthesized) -> None:
    containers = backend_containers(with_commit.stages["staging"])
    # the web service, the event worker, the cleanup and the migration task
    assert {c["Name"] for _, c in containers} == {"app", "worker", "cleanup", "migrate"}
    for unit, container in containers:
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert environment["BUILD_COMMIT"] == COMMIT, (unit, container["Name"])


def test_the_web_clients_config_names_the_commit(with_commit: Synthesized) -> None:
    stage = with_commit.stages["staging"]
    _, entry = deployments(stage)["entry"]
    config = json.loads(staged_files(with_commit, entry)["config.json"])
    assert config["build"] == {"commit": COMMIT}


def test_without_a_commit_the_processes_say_unknown(stage: StageTemplates) -> None:
    for _, container in backend_containers(stage):
        assert "BUILD_COMMIT" not in {e["Name"] for e in container["Environment"]}  # the API's default


def test_a_commit_that_is_not_one_is_refused(synthesized: Synthesized, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=BUILD_COMMIT_CONTEXT):
        build_stages_app(
            str(tmp_path), configs=(STAGING,), frontend_dist=synthesized.frontend_dist, commit="main; rm -rf"
        )


def test_no_stage_content_reaches_the_pipelines_template(
    pipeline: PipelineView, synthesized: Synthesized
) -> None:
    """Every asset of the stages (templates' file assets, images, the web client's config.json) changes
    with the commit; none of their hashes is in the pipeline's template, so a new commit leaves the
    pipeline as it is (no self-mutation restart on every push)."""
    template = json.dumps(pipeline.raw)
    hashes = set()
    for manifest in synthesized.outdir.glob("assembly-*/*.assets.json"):
        assets = json.loads(manifest.read_text())
        hashes |= set(assets.get("files", {})) | set(assets.get("dockerImages", {}))
    assert len(hashes) > 10
    assert [h for h in hashes if h in template] == []


def test_the_synth_step_passes_the_source_commit(pipeline: PipelineView) -> None:
    [build] = pipeline.actions("Build")
    [source] = pipeline.actions("Source")
    assert pipeline.env(build)["COMMIT_ID"] == f"#{{{source['Namespace']}.CommitId}}"
