"""The OpenAPI document is the contract clients are generated from: it must say what the API answers.

The document is checked as written (every error documented with the error body, optional tokens
documented as optional), and then against the real server: schemathesis sends generated requests,
valid and invalid, and checks every answer's status, content type, headers and body against it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings

from .conftest import ServedApi

OPENAPI = "/api/v1/openapi.json"
METHODS = ("get", "post", "delete", "put", "patch")
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20261126"))
"""Fixed, so a green run stays green until the code changes; `FUZZ_SEED=<n> make test` explores others."""
FUZZ_EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "40")


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(OPENAPI)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


async def test_every_error_response_is_documented_with_the_error_body(client: httpx.AsyncClient) -> None:
    document = await _document(client)
    schemas = document["components"]["schemas"]
    assert {"ErrorResponse", "ValidationErrorResponse", "ValidationIssue"} <= set(schemas)
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 shape is not what the API sends
    assert schemas["ErrorResponse"]["required"] == ["detail"]
    assert schemas["ErrorResponse"]["properties"]["success"]["const"] is False
    operations = _operations(document)
    assert len(operations) == 15
    for name, operation in operations.items():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]
            expected = "ValidationErrorResponse" if status == "422" else "ErrorResponse"
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, (name, status)
            assert response["description"], (name, status)
        # Everything but liveness reads the database, which may be away for a moment.
        assert ("503" in operation["responses"]) == (name != "GET /api/v1/health"), name
        # Anything that reads a token says what a bad one gets.
        if "security" in operation:
            assert "401" in operation["responses"], name


async def test_optional_tokens_are_documented_as_optional(client: httpx.AsyncClient) -> None:
    operations = _operations(await _document(client))
    optional = {name for name, op in operations.items() if {} in op.get("security", [])}
    required = {name for name, op in operations.items() if op.get("security") == [{"HTTPBearer": []}]}
    assert optional == {
        "GET /api/v1/feed/latest",
        "GET /api/v1/feed/by_user/{creator}",
        "GET /api/v1/users/profile/{user_id}",
        "GET /api/v1/images/media/{image_id}",
    }
    assert required == {
        "POST /api/v1/auth/logout/",
        "POST /api/v1/auth/logout-everywhere/",
        "GET /api/v1/users/me",
        "DELETE /api/v1/users/me",
        "POST /api/v1/images/upload/{privacy}/generate",
        "POST /api/v1/images/upload/{image_id}/confirm",
        "DELETE /api/v1/images/{image_id}",
    }
    # ...and they are: anonymous calls get an answer, not a 401.
    for name in ("GET /api/v1/feed/latest", "GET /api/v1/images/media/00000000-0000-4000-8000-000000000000"):
        method, path = name.split()
        response = await client.request(method, path)
        assert response.status_code in (200, 404), (name, response.text)


async def test_a_new_image_links_to_what_a_client_does_with_it(client: httpx.AsyncClient) -> None:
    operations = _operations(await _document(client))
    ids = {op["operationId"]: name for name, op in operations.items()}
    links = operations["POST /api/v1/images/upload/{privacy}/generate"]["responses"]["200"]["links"]
    assert {ids[link["operationId"]] for link in links.values()} == {
        "POST /api/v1/images/upload/{image_id}/confirm",
        "GET /api/v1/images/media/{image_id}",
        "DELETE /api/v1/images/{image_id}",
    }
    assert all(link["parameters"] == {"image_id": "$response.body#/id"} for link in links.values())


async def test_a_validation_error_has_the_documented_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/feed/latest", params={"limit": "0", "before": "1700000000"})
    assert response.status_code == 422
    body = response.json()
    assert body["success"] is False
    assert "query.limit" in body["detail"] and "query.before" in body["detail"]
    assert {tuple(issue["loc"]) for issue in body["errors"]} == {("query", "limit"), ("query", "before")}
    assert "ISO 8601" in body["detail"]  # a number is not taken as Unix time: the parameter is a date-time


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/api/v1/auth/login/", "POST"),
        ("PUT", "/api/v1/users/me", "GET, DELETE"),  # two routes: both methods named
        ("POST", "/api/v1/feed/latest", "GET"),
        ("GET", "/api/v1/images/00000000-0000-4000-8000-000000000000", "DELETE"),
    ],
)
async def test_a_method_the_path_does_not_take_is_405_with_every_allowed_method(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    # Locally the web client's catch-all answers every GET; API paths still get the answer they get in AWS.
    response = await client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.json() == {"success": False, "detail": "Method Not Allowed"}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_api_path_that_does_not_exist_is_404_for_every_method(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/api/v1/nothing/here")
    assert response.status_code == 404
    assert response.json() == {"success": False, "detail": "Not found"}


def _schemathesis(served_api: ServedApi, cwd: Path, *options: str) -> str:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{served_api.url}{OPENAPI}",
            # Every check of the responses against the document; not "schema-valid requests are
            # accepted": a cursor is an opaque token, which no schema can tell valid from forged.
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            FUZZ_EXAMPLES,
            "--seed",
            str(FUZZ_SEED),
            # stateful: sequences that follow the document's links (generate -> confirm, media, delete).
            "--phases",
            "examples,coverage,fuzzing,stateful",
            # One worker: with two, case generation runs in two threads whose ast.parse calls (hypothesis
            # describing filters) race on CPython 3.11.7's shared AST recursion counter, and the tool
            # crashes ("SystemError: AST constructor recursion depth mismatch", gh-106905).
            "--workers",
            "1",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, (
        f"FUZZ_SEED={FUZZ_SEED} repeats this run; each case below has a curl command\n{report}"
    )
    assert "generated" in result.stdout and " passed" in result.stdout, report
    return result.stdout


def test_every_answer_of_the_server_matches_the_document(served_api: ServedApi, tmp_path: Path) -> None:
    """schemathesis over the real server, anonymous and logged in: no 5xx, and nothing undocumented."""
    account = {"username": "fuzzer", "email": "fuzzer@example.com", "password": "fuzzing-password"}
    httpx.post(f"{served_api.url}/api/v1/auth/register/", json=account)
    token = httpx.post(
        f"{served_api.url}/api/v1/auth/login/", json={"username": "fuzzer", "password": "fuzzing-password"}
    ).json()["access_token"]

    anonymous = _schemathesis(served_api, tmp_path)
    assert "Authentication failed" in anonymous  # the operations that need a token said so

    # Logged in, without deleting the account or logging out (its token would then be refused for the
    # rest of the run; the anonymous run covers those operations' answers).
    logged_in = _schemathesis(
        served_api,
        tmp_path,
        "-H",
        f"Authorization: Bearer {token}",
        "--exclude-operation-id",
        "delete_me_api_v1_users_me_delete",
        "--exclude-operation-id",
        "logout_api_v1_auth_logout__post",
        "--exclude-operation-id",
        "logout_everywhere_api_v1_auth_logout_everywhere__post",
    )
    assert "Authentication failed" not in logged_in  # the token was accepted throughout
    assert "✅ Stateful" in logged_in  # the links were followed
    assert httpx.get(
        f"{served_api.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    ).is_success


async def test_a_body_over_the_limit_is_a_json_413_declared_or_streamed(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    limit = settings.MAX_REQUEST_BODY_BYTES
    body = b'{"username": "' + b"a" * limit + b'", "password": "x"}'
    declared = await client.post(
        "/api/v1/auth/login/", content=body, headers={"content-type": "application/json"}
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it is read
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    streamed = await client.post(
        "/api/v1/auth/login/", content=chunks(), headers={"content-type": "application/json"}
    )
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {
            "success": False,
            "detail": f"The request body is larger than {limit} bytes; uploads go to the presigned URL",
        }
    # A body within the limit is read and validated as usual.
    small = await client.post("/api/v1/auth/login/", json={"username": "a" * 300, "password": "x"})
    assert small.status_code == 422
