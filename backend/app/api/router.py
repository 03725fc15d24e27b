"""All /api/v1 routes."""

from fastapi import APIRouter

from app.api.routes import auth, feed, health, images, users

api_router = APIRouter(prefix="/api/v1")
for module in (health, auth, users, feed, images):
    api_router.include_router(module.router)
