"""Liveness (the process answers, and which build it is) and readiness (the database answers too)."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.deps import SessionDep
from app.api.responses import unavailable
from app.core.build import BuildInfo
from app.core.errors import Unavailable

router = APIRouter(tags=["health"])


class Build(BaseModel):
    """Which build answered (app/core/build.py): the pipeline's serving check compares it with the run's."""

    commit: str = Field(
        description="The commit the deployment was made from; `unknown` when nothing set it",
        examples=["739ba6b2c0d4e1f8a9b7c6d5e4f3a2b1c0d9e8f7"],
    )
    image: str = Field(
        description="The container image the task definition names (registry/repository:tag); `local` on "
        "the local stack, `unknown` when ECS's task metadata could not be read",
        examples=["111111111111.dkr.ecr.us-west-2.amazonaws.com/cdk-hnb659fds-container-assets:bc8e9a61"],
    )
    image_digest: str = Field(
        description="The running image's digest (`sha256:...`), as ECR and ECS's DescribeTasks give it; "
        "`local` or `unknown` as `image`",
        examples=["sha256:25f3695bedfb454a50f12d127839a68ad3caf91e451c1da073db34c542c4d2cb"],
    )


class Health(BaseModel):
    success: Literal[True] = True
    status: Literal["ok"] = "ok"
    build: Build


class Ready(BaseModel):
    success: Literal[True] = True
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"


@router.get("/health", summary="Liveness, and which build answers", response_model=Health)
@router.get("/health/", include_in_schema=False, response_model=Health)
async def health(request: Request) -> Health:
    """Answers without touching the database (the load balancer's and the container's health check)."""
    build: BuildInfo = request.app.state.build
    return Health(build=Build(commit=build.commit, image=build.image, image_digest=build.image_digest))


@router.get(
    "/health/ready",
    summary="Readiness: the database answers",
    response_model=Ready,
    responses={503: unavailable("The database does not answer")},
)
async def ready(session: SessionDep) -> Ready:
    try:
        await session.execute(sa.text("SELECT 1"))
    except Exception:
        raise Unavailable("The database does not answer") from None
    return Ready()
