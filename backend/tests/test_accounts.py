"""Registration, login, tokens, /users/me and profiles."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User

from .conftest import DEFAULT_PASSWORD, MakeUser


def account(name: str = "alice", **overrides: str) -> dict[str, str]:
    return {"username": name, "email": f"{name}@example.com", "password": "s3cret-passw0rd", **overrides}


async def test_register_then_login_by_username_and_by_email(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/auth/register/", json=account())
    assert created.status_code == 201
    assert created.json() == {"success": True}
    for login in ("alice", "ALICE@example.com"):
        response = await client.post(
            "/api/v1/auth/login/", json={"username": login, "password": "s3cret-passw0rd"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200
        assert me.json()["username"] == "alice" and me.json()["email"] == "alice@example.com"
        assert set(me.json()) == {"id", "username", "email", "bio"}


async def test_password_is_stored_as_argon2id(client: httpx.AsyncClient, db: AsyncSession) -> None:
    await client.post("/api/v1/auth/register/", json=account())
    user = (await db.execute(User.__table__.select())).one()
    assert user.hashed_password.startswith("$argon2id$")
    assert "s3cret" not in user.hashed_password


@pytest.mark.parametrize(
    "second",
    [account(), account("ALICE", email="other@example.com"), account("bob", email="Alice@Example.com")],
    ids=["same", "username-case", "email-case"],
)
async def test_duplicate_registration_is_409(client: httpx.AsyncClient, second: dict[str, str]) -> None:
    assert (await client.post("/api/v1/auth/register/", json=account())).status_code == 201
    response = await client.post("/api/v1/auth/register/", json=second)
    assert response.status_code == 409
    assert response.json()["success"] is False


async def test_concurrent_duplicate_registration_is_one_201_and_the_rest_409(
    client: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/v1/auth/register/", json=account("racer")) for _ in range(8))
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 7


@pytest.mark.parametrize(
    ("field", "value"),
    [("password", "short7!"), ("email", "not-an-email"), ("username", "a b"), ("username", "x" * 33)],
)
async def test_register_validates_input(client: httpx.AsyncClient, field: str, value: str) -> None:
    response = await client.post("/api/v1/auth/register/", json=account(**{field: value}))
    assert response.status_code == 422
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": DEFAULT_PASSWORD},
    ],
    ids=["wrong-password", "unknown-user"],
)
async def test_bad_credentials_are_401_with_one_message(
    client: httpx.AsyncClient, make_user: MakeUser, credentials: dict[str, str]
) -> None:
    await make_user("alice")
    response = await client.post("/api/v1/auth/login/", json=credentials)
    assert response.status_code == 401
    assert response.json() == {"success": False, "detail": "Incorrect username/email or password"}


async def test_inactive_user_cannot_log_in(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("sleeper", is_active=False)
    response = await client.post(
        "/api/v1/auth/login/", json={"username": "sleeper", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 401


async def test_health_answers_while_eight_logins_hash_passwords(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """Password hashing runs off the event loop: a health check overtakes 8 logins in flight."""
    await make_user("busy")
    logins = [
        asyncio.create_task(
            client.post("/api/v1/auth/login/", json={"username": "busy", "password": DEFAULT_PASSWORD})
        )
        for _ in range(8)
    ]
    await asyncio.sleep(0)  # let every login start
    health = await client.get("/api/v1/health")
    still_running = sum(not task.done() for task in logins)
    results = await asyncio.gather(*logins)
    assert health.status_code == 200
    assert still_running > 0, "health had to wait for every login: hashing blocks the event loop"
    assert all(r.status_code == 200 for r in results)


def _token(settings: Settings, user_id: uuid.UUID, *, key: str | None = None, **claims: object) -> str:
    now = datetime.now(UTC)
    payload = {"sub": str(user_id), "iat": now, "exp": now + timedelta(minutes=5), "typ": "access", **claims}
    return jwt.encode(payload, key or settings.secret_key, algorithm="HS256")


@pytest.mark.parametrize(
    "make_header",
    [
        lambda s, u: "Bearer not.a.token",
        lambda s, u: "Bearer " + _token(s, u, exp=datetime.now(UTC) - timedelta(seconds=1)),
        lambda s, u: "Bearer " + _token(s, u, key="another-secret-key-of-sufficient-length!"),
        lambda s, u: "Bearer " + _token(s, uuid.uuid4()),
        lambda s, u: "Bearer " + _token(s, u, typ="refresh"),
        lambda s, u: "Basic dXNlcjpwYXNz",
        lambda s, u: "Bearer",
    ],
    ids=["malformed", "expired", "forged", "unknown-user", "wrong-type", "basic-scheme", "empty"],
)
@pytest.mark.parametrize("path", ["/api/v1/feed/latest", "/api/v1/users/me"])
async def test_bad_tokens_are_401_never_anonymous(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, make_header: object, path: str
) -> None:
    user = await make_user()
    response = await client.get(path, headers={"Authorization": make_header(settings, user.id)})  # type: ignore[operator]
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/users/me")).status_code == 401


async def test_profile_is_public_and_404_when_unknown(
    client: httpx.AsyncClient, make_user: MakeUser, auth: object
) -> None:
    user = await make_user("carol", bio="I take pictures")
    anonymous = await client.get(f"/api/v1/users/profile/{user.id}")
    assert anonymous.json() == {"success": True, "username": "carol", "bio": "I take pictures"}
    other = await make_user()
    logged_in = await client.get(f"/api/v1/users/profile/{user.id}", headers=auth(other))  # type: ignore[operator]
    assert logged_in.json() == anonymous.json()
    missing = await client.get(f"/api/v1/users/profile/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["success"] is False
    assert (await client.get("/api/v1/users/profile/not-a-uuid")).status_code == 422


def test_secret_key_is_required_outside_local() -> None:
    from pydantic import ValidationError

    from app.core.config import LOCAL_DEV_SECRET

    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        Settings(APP_ENV="aws", SECRET_KEY=None)
    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        Settings(APP_ENV="aws", SECRET_KEY="too-short")
    with pytest.raises(ValidationError, match="not the local development secret"):
        Settings(APP_ENV="aws", SECRET_KEY=LOCAL_DEV_SECRET)
    assert Settings(APP_ENV="aws", SECRET_KEY="k" * 32).APP_ENV == "aws"


def test_token_lifetime_is_configurable(settings: Settings) -> None:
    from app.core.security import create_access_token

    short = settings.model_copy(update={"ACCESS_TOKEN_EXPIRE_MINUTES": 7})
    claims = jwt.decode(create_access_token(uuid.uuid4(), short), settings.secret_key, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 7 * 60


async def test_deleting_my_account_removes_my_posts_and_their_files(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    make_image: object,
    auth: object,
    moto_endpoint: str,
    settings: Settings,
) -> None:
    from devstack.s3server import client as aws_client

    me, other = await make_user(), await make_user()
    mine = [
        await make_image(me, public=True, state="ready"),
        await make_image(me, public=False, state="pending"),
    ]  # type: ignore[operator]
    theirs = await make_image(other, public=True)  # type: ignore[operator]
    s3 = aws_client("s3", moto_endpoint)
    for image in [*mine, theirs]:
        bucket = settings.PUBLIC_IMAGES_BUCKET if image.public else settings.PRIVATE_IMAGES_BUCKET
        s3.put_object(Bucket=bucket, Key=image.original_key, Body=b"x")
        s3.put_object(Bucket=bucket, Key=image.rendition_key, Body=b"y")
    response = await client.delete("/api/v1/users/me", headers=auth(me))  # type: ignore[operator]
    assert response.status_code == 200 and response.json() == {"success": True}
    assert (await client.get("/api/v1/users/me", headers=auth(me))).status_code == 401  # type: ignore[operator]
    for image in mine:
        bucket = settings.PUBLIC_IMAGES_BUCKET if image.public else settings.PRIVATE_IMAGES_BUCKET
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        assert not [o for o in listed if str(image.id) in o["Key"]]
    feed = (await client.get("/api/v1/feed/latest")).json()
    assert [item["id"] for item in feed["results"]] == [str(theirs.id)]
    assert s3.head_object(Bucket=settings.PUBLIC_IMAGES_BUCKET, Key=theirs.original_key)["ContentLength"] == 1
    assert (await client.delete("/api/v1/users/me")).status_code == 401


async def test_a_nul_character_in_the_login_name_is_a_422_not_a_500(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: PostgreSQL text cannot hold NUL, so it must never reach the query."""
    response = await client.post(
        "/api/v1/auth/login/", json={"username": "\u0005I\u0000x", "password": "whatever"}
    )
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]


def test_a_verified_token_is_still_checked_for_expiry_and_forgeries_are_not_remembered(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core import security

    user_id = uuid.uuid4()
    token = _token(settings, user_id)
    assert security.decode_access_token(token, settings).user_id == user_id
    assert security.decode_access_token(token, settings).user_id == user_id  # remembered
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(security.InvalidToken):
        security.decode_access_token(forged, settings)
    other_key = settings.model_copy(
        update={"SECRET_KEY": SecretStr("another-secret-key-of-sufficient-length!")}
    )
    with pytest.raises(security.InvalidToken):
        security.decode_access_token(token, other_key)  # remembered only for the key that verified it
    later = datetime.now(UTC) + timedelta(minutes=6)
    monkeypatch.setattr(security.time, "time", lambda: later.timestamp())
    with pytest.raises(security.InvalidToken, match="expired"):
        security.decode_access_token(token, settings)
