"""All /api/v1 routes."""

from fastapi import APIRouter

from app.api.routes import auth, feed, health, images, users

api_router = APIRouter(prefix="/api/v1")
# Routes are matched in order: the health probes and the feeds (most of the traffic) come first.
for module in (health, feed, auth, users, images):
    api_router.include_router(module.router)
