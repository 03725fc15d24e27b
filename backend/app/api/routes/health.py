"""Liveness (the process answers) and readiness (the database answers too)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter

from app.api.deps import SessionDep
from app.api.responses import unavailable
from app.core.errors import Unavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness")
@router.get("/health/", include_in_schema=False)
async def health() -> dict[str, object]:
    return {"success": True, "status": "ok"}


@router.get(
    "/health/ready",
    summary="Readiness: the database answers",
    responses={503: unavailable("The database does not answer")},
)
async def ready(session: SessionDep) -> dict[str, object]:
    try:
        await session.execute(sa.text("SELECT 1"))
    except Exception:
        raise Unavailable("The database does not answer") from None
    return {"success": True, "status": "ok", "database": "ok"}
