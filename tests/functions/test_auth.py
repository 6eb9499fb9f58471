"""Sign-in and tenant isolation: no route but health answers without credentials (walked over the app's own route
list, so a new route is covered), keys are shown once, stored hashed, scoped and revocable, and a workspace's key
never reaches another workspace's data, whatever header it forges."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from functions.auth import create_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS

OPEN = {("GET", "/api/health")}
FILL = {"key_id": "abc123abc123", "source": "shopify"}  # path parameters a route checks before credentials


@pytest.fixture()
def app_store(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_DEMO_SECRETS", raising=False)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    yield create_app(), LocalStore(tmp_path)
    _store.cache_clear()


def _routes(app) -> list[tuple[str, str]]:
    """Every operation of the app's OpenAPI document, path parameters filled in."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        filled = re.sub(r"\{(\w+)\}", lambda m: FILL.get(m.group(1), "x"), path)
        out += [(m.upper(), filled) for m in sorted(ops)]
    return out


def test_every_route_but_health_refuses_anonymous_callers(app_store):
    app, _ = app_store
    c = TestClient(app)
    routes = _routes(app)
    assert len(routes) > 30  # the whole API, not a subset
    for method, path in routes:
        r = c.request(method, path)
        if (method, path) in OPEN:
            assert r.status_code == 200
        else:
            assert r.status_code == 401, (method, path, r.status_code, r.text)
    for method, path in routes:  # a made-up key is no better than none
        if (method, path) not in OPEN:
            r = c.request(method, path, headers={"Authorization": "Bearer glk_000000000000_forged"})
            assert r.status_code == 401, (method, path, r.text)


def test_a_key_is_shown_once_stored_hashed_scoped_and_revocable(app_store):
    app, store = app_store
    admin = TestClient(app, headers=AUTH_HEADERS)
    r = admin.post("/api/keys", json={"name": "warehouse loader", "scope": "read"})
    assert r.status_code == 201
    secret, key_id = r.json()["secret"], r.json()["key_id"]
    assert secret.startswith(f"glk_{key_id}_")
    raw = b"".join(store.read_bytes(k) for k in store.list("auth/"))
    assert secret.encode() not in raw  # only its hash is kept
    listed = admin.get("/api/keys").json()["keys"]
    assert [k["key_id"] for k in listed] == [key_id] and secret not in json.dumps(listed)
    assert listed[0]["last_used_at"] is None

    reader = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    assert reader.get("/api/sync/status").status_code == 200
    assert admin.get("/api/keys").json()["keys"][0]["last_used_at"] is not None
    denied = reader.post("/api/segments", json={"name": "n", "rule": {"all": []}})
    assert denied.status_code == 403 and "needs 'write'" in denied.json()["detail"]
    assert reader.get("/api/keys").status_code == 403  # managing keys needs admin
    assert reader.post("/api/keys", json={"name": "escalate", "scope": "admin"}).status_code == 403

    assert admin.delete(f"/api/keys/{key_id}").json()["revoked_at"]
    assert reader.get("/api/sync/status").status_code == 401
    assert admin.delete("/api/keys/ffffffffffff").status_code == 404


def test_a_workspace_key_sees_only_its_workspace_whatever_it_forges(app_store, monkeypatch):
    app, store = app_store
    monkeypatch.setenv("GROWTHLENS_TRUST_WORKSPACE_HEADER", "1")  # the old escape hatch: must change nothing now
    _, key_a = create_key(store, "brand-a", "a's admin", "admin")
    _, key_b = create_key(store, "brand-b", "b's admin", "admin")
    b = TestClient(app, headers={"Authorization": f"Bearer {key_b}"})
    orders = "\n".join(json.dumps({"id": 9000 + i, "email": f"secret.buyer{i}@brand-b.example",
                                   "created_at": f"2025-01-0{i + 1}T10:00:00Z", "total_price": "50.00",
                                   "customer": {"id": 700 + i, "email": f"secret.buyer{i}@brand-b.example",
                                                "first_name": "Bea", "last_name": f"Bee{i}"}})
                       for i in range(3))
    r = b.post("/api/sync/shopify/batch?topic=orders", content=orders,
               headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert "brand-b.example" in json.dumps(b.get("/api/customers?q=secret").json())
    assert any(k.startswith("workspaces/brand-b/") for k in store.list("workspaces/"))

    a = TestClient(app, headers={"Authorization": f"Bearer {key_a}", "X-Growthlens-Workspace": "brand-b"})
    for method, path in _routes(app):
        if method != "GET":
            continue
        for q in ("", "?q=secret"):
            r = a.get(path + q)
            assert "brand-b.example" not in r.text and "Bee0" not in r.text, (path, r.status_code)
    assert a.get("/api/keys").json()["keys"][0]["name"] == "a's admin"
    assert a.get("/api/customers?q=secret").json().get("total", 0) == 0


def test_no_cross_origin_access_unless_an_origin_is_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions.app import create_app

    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    r = TestClient(create_app(["health"])).options("/api/health", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    monkeypatch.setenv("GROWTHLENS_CORS_ORIGINS", "https://app.growthlens.example")
    c = TestClient(create_app(["health"]))
    assert "access-control-allow-origin" not in c.options("/api/health", headers=pre).headers
    ok = c.options("/api/health", headers={**pre, "Origin": "https://app.growthlens.example"})
    assert ok.headers["access-control-allow-origin"] == "https://app.growthlens.example"


def test_api_responses_carry_security_headers(app_store):
    app, _ = app_store
    c = TestClient(app)
    for r in (c.get("/api/health"), c.get("/api/customers")):  # an answer and a refusal alike
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in r.headers[
            "content-security-policy"]
    assert "content-security-policy" not in c.get("/docs").headers  # the docs page loads its scripts
