"""Lambda handlers invoked with API Gateway HTTP API (v2) events, as Lambda would call them."""

from __future__ import annotations

import json

import pytest

import functions.handlers as handlers
from functions.app import ROUTE_GROUPS


def v2_event(path: str, method: str = "GET", query: str = "", body: str | None = None,
             headers: dict | None = None) -> dict:
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
    if body is not None:
        event["body"] = body
    return event


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
    resp = handlers.jobs(v2_event("/api/jobs/abc"), None)
    assert resp["statusCode"] == 404
    assert "no job" in json.loads(resp["body"])["detail"]
    # a route of another group is not mounted on the jobs function
    resp = handlers.health(v2_event("/api/jobs/abc"), None)
    assert resp["statusCode"] == 404
    assert json.loads(resp["body"])["detail"] == "Not Found"
