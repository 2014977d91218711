"""Authentication: every route of the platform but the health checks needs a valid bearer token."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests

import previsio_sdk as pio

HEALTH = "/api/v1/health"
#: The health checks: liveness, and which parts answer (a load balancer asks them without a token).
HEALTH_CHECKS = (HEALTH, "/api/v1/health/parts")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _operations(url: str, token: str) -> list[tuple[str, str, dict[str, Any]]]:
    spec = requests.get(
        f"{url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def _fill(path: str) -> str:
    """Replace every ``{param}`` of an OpenAPI path by a random id."""
    return re.sub(r"\{[^}]+\}", lambda _m: uuid.uuid4().hex, path)


def test_health_answers_without_a_token(platform):
    """GET /api/v1/health answers 200 with the status and version to a caller without any token."""
    resp = requests.get(f"{platform.url}{HEALTH}", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "version": pio.__version__}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "unauthenticated"),
        ({"Authorization": "Bearer"}, "unauthenticated"),
        ({"Authorization": "Bearer "}, "unauthenticated"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "unauthenticated"),
        ({"Authorization": "Bearer pvo_not-a-real-token"}, "invalid_token"),
        ({"Authorization": "Bearer " + "x" * 5000}, "invalid_token"),
        ({"Authorization": "bearer pvo_not-a-real-token"}, "invalid_token"),
    ],
    ids=[
        "no-header",
        "bearer-no-token",
        "bearer-blank",
        "basic-scheme",
        "wrong-token",
        "huge-token",
        "lowercase-scheme-wrong-token",
    ],
)
def test_a_missing_or_wrong_token_gets_401_with_its_code(platform, headers, code):
    """Without a usable bearer token GET /projects answers 401 with the code telling which case it is."""
    resp = requests.get(f"{platform.url}/api/v1/projects", headers=headers, timeout=10)
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == resp.headers["X-Request-ID"]


def test_the_admin_token_is_accepted(platform):
    """The admin token written to <home>/admin.token opens GET /projects (the 401s are about the token)."""
    resp = requests.get(
        f"{platform.url}/api/v1/projects", headers={"Authorization": f"Bearer {platform.token}"}, timeout=10
    )
    assert resp.status_code == 200
    assert set(resp.json()) == {"items", "total", "page", "page_size"}


def test_openapi_declares_bearer_auth_on_every_operation_but_health(platform):
    """The OpenAPI document lists the bearer scheme on every operation except the two health checks."""
    ops = _operations(platform.url, platform.token)
    assert len(ops) >= 20, ops
    without = [(m, p) for m, p, op in ops if not op.get("security")]
    assert without == [("GET", p) for p in HEALTH_CHECKS]


@pytest.mark.parametrize(
    ("token", "code"),
    [(None, "unauthenticated"), ("pvo_not-a-real-token", "invalid_token")],
    ids=["no-token", "wrong-token"],
)
def test_every_operation_of_the_openapi_document_refuses_a_missing_or_wrong_token(platform, token, code):
    """Every operation of the OpenAPI document but health (path ids filled at random) answers 401."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ops = [(m, p) for m, p, _op in _operations(platform.url, platform.token) if p not in HEALTH_CHECKS]
    assert len(ops) >= 20
    wrong = []
    for method, path in ops:
        resp = requests.request(method, platform.url + _fill(path), headers=headers, timeout=30)
        try:
            got = resp.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            got = f"<not an error body: {resp.text[:100]!r}>"
        if resp.status_code != 401 or got != code:
            wrong.append((method, path, resp.status_code, got))
    assert wrong == []


def test_a_wrong_token_through_the_sdk_raises_authentication_error(platform):
    """An SDK client with a wrong token raises AuthenticationError (401, invalid_token), not echoing it."""
    bad = "pvo_" + uuid.uuid4().hex
    client = pio.Client(url=platform.url, token=bad)
    with pytest.raises(pio.AuthenticationError) as info:
        pio.Project.list(client=client)
    err = info.value
    assert (err.status, err.code) == (401, "invalid_token")
    assert err.message and err.request_id
    assert bad not in str(err) and bad not in repr(err)


def test_no_token_through_the_sdk_raises_authentication_error(platform, monkeypatch):
    """An SDK client given a URL but no token anywhere raises AuthenticationError (401, unauthenticated)."""
    monkeypatch.delenv("PREVISIO_TOKEN", raising=False)
    client = pio.Client(url=platform.url)
    with pytest.raises(pio.AuthenticationError) as info:
        pio.Project.from_id(uuid.uuid4().hex, client=client)
    assert (info.value.status, info.value.code) == (401, "unauthenticated")


def test_the_api_description_needs_a_token_too(platform):
    """GET /api/v1/openapi.json answers 401 without a token and the OpenAPI document with one."""
    url = f"{platform.url}/api/v1/openapi.json"
    assert requests.get(url, timeout=30).status_code == 401
    answer = requests.get(url, headers={"Authorization": f"Bearer {platform.token}"}, timeout=30)
    assert answer.status_code == 200
    assert answer.json()["openapi"].startswith("3.")
