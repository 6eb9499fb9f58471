"""Lambda handlers invoked with API Gateway HTTP API (v2) events, as Lambda would call them."""

from __future__ import annotations

import json

import pytest

import functions.handlers as handlers
from functions.app import ROUTE_GROUPS


def v2_event(path: str, method: str = "GET", query: str = "", body: str | None = None,
             headers: dict | None = None, claims: dict | None = None) -> dict:
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.example.com", **(headers or {})},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "127.0.0.1", "protocol": "HTTP/1.1"},
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if claims is not None:  # what API Gateway's JWT authorizer adds after verifying the token
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if body is not None:
        event["body"] = body
    return event


USER = {"sub": "user-1", "custom:workspace": "default", "cognito:groups": "[read write]"}


def test_every_group_answers_health() -> None:
    for group in ROUTE_GROUPS:
        resp = getattr(handlers, group)(v2_event("/api/health"), None)
        assert resp["statusCode"] == 200, group
        assert json.loads(resp["body"])["status"] == "healthy"


def test_unknown_group_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        handlers.handler_for("nope")


def test_group_handler_serves_only_its_routes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions import deps

    deps._store.cache_clear()
    resp = handlers.jobs(v2_event("/api/jobs/abc", claims=USER), None)
    assert resp["statusCode"] == 404
    assert "no job" in json.loads(resp["body"])["detail"]
    # a route of another group is not mounted on the jobs function
    resp = handlers.health(v2_event("/api/jobs/abc"), None)
    assert resp["statusCode"] == 404
    assert json.loads(resp["body"])["detail"] == "Not Found"


def test_verified_token_claims_sign_in_and_choose_the_workspace(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions import deps

    deps._store.cache_clear()
    assert handlers.sync(v2_event("/api/sync/status"), None)["statusCode"] == 401  # no token, no key
    ok = handlers.sync(v2_event("/api/sync/status", claims={**USER, "custom:workspace": "brand-b"}), None)
    assert ok["statusCode"] == 200
    assert not (tmp_path / "workspaces" / "default").exists()  # brand-b's request touched nothing of default
    lost = handlers.sync(v2_event("/api/sync/status", claims={"sub": "user-2"}), None)
    assert lost["statusCode"] == 403 and "workspace" in json.loads(lost["body"])["detail"]
    reader = {**USER, "cognito:groups": "[read]"}
    r = handlers.segments(v2_event("/api/segments", "POST", body="{}", claims=reader,
                                   headers={"content-type": "application/json"}), None)
    assert r["statusCode"] == 403 and "needs 'write'" in json.loads(r["body"])["detail"]
