"""Registration and login (paths keep the published v1 contract, trailing slash included)."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import SessionDep, SettingsDep
from app.api.responses import DATABASE_DOWN, UNREADABLE_BODY, Responses, error
from app.models import LoginRequest, Success, Token, UserCreate
from app.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"], responses={**UNREADABLE_BODY, **DATABASE_DOWN})

_ERRORS: Responses = {409: error("Username or email taken")}


@router.post("/register/", status_code=status.HTTP_201_CREATED, response_model=Success, responses=_ERRORS)
@router.post(
    "/register", status_code=status.HTTP_201_CREATED, response_model=Success, include_in_schema=False
)
async def register(data: UserCreate, session: SessionDep) -> Success:
    await accounts.register(session, data)
    return Success()


@router.post("/login/", response_model=Token, responses={401: error("Wrong username/email or password")})
@router.post("/login", response_model=Token, include_in_schema=False)
async def login(data: LoginRequest, session: SessionDep, settings: SettingsDep) -> Token:
    return await accounts.login(session, login=data.username, password=data.password, settings=settings)
