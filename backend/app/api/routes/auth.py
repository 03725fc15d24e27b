"""Registration, login and logout (paths keep the published v1 contract, trailing slash included)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from app.api.deps import BearerToken, CurrentUser, SessionDep, SettingsDep
from app.api.responses import (
    DATABASE_DOWN,
    TOKEN_REQUIRED,
    UNREADABLE_BODY,
    Responses,
    error,
)
from app.models import LoginRequest, Success, Token, UserCreate
from app.services import accounts
from app.services.login_throttle import client_address

router = APIRouter(prefix="/auth", tags=["auth"], responses={**UNREADABLE_BODY, **DATABASE_DOWN})

_ERRORS: Responses = {409: error("Username or email taken")}
_LOGIN_ERRORS: Responses = {
    401: error("Wrong username/email or password"),
    429: {
        **error(
            "Too many login attempts lately for this username/email or from this address (whether or not "
            "the account exists); wait `Retry-After` seconds"
        ),
        "headers": {
            "Retry-After": {
                "description": "Seconds until the attempts window ends",
                "schema": {"type": "integer"},
            }
        },
    },
}


@router.post("/register/", status_code=status.HTTP_201_CREATED, response_model=Success, responses=_ERRORS)
@router.post(
    "/register", status_code=status.HTTP_201_CREATED, response_model=Success, include_in_schema=False
)
async def register(data: UserCreate, session: SessionDep) -> Success:
    await accounts.register(session, data)
    return Success()


@router.post("/login/", response_model=Token, responses=_LOGIN_ERRORS)
@router.post("/login", response_model=Token, include_in_schema=False)
async def login(data: LoginRequest, session: SessionDep, settings: SettingsDep, request: Request) -> Token:
    return await accounts.login(
        session,
        login=data.username,
        password=data.password,
        settings=settings,
        address=client_address(request, settings),
    )


@router.post("/logout/", response_model=Success, responses=TOKEN_REQUIRED)
@router.post("/logout", response_model=Success, include_in_schema=False)
async def logout(token: BearerToken, session: SessionDep) -> Success:
    """Revoke the token sent, on every server, at once. Repeating it with the same token is harmless."""
    await accounts.logout(session, token)
    return Success()


@router.post("/logout-everywhere/", response_model=Success, responses=TOKEN_REQUIRED)
@router.post("/logout-everywhere", response_model=Success, include_in_schema=False)
async def logout_everywhere(user: CurrentUser, session: SessionDep) -> Success:
    """Revoke every token issued to me so far (every device, this one included); log in again after."""
    await accounts.logout_everywhere(session, user)
    return Success()
