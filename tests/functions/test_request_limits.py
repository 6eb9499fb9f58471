"""Bad input gets a clear 4xx, never a 500: nested JSON, non-finite numbers, oversized bodies, bad workspace ids."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.auth_keys import AUTH_HEADERS, TEST_API_KEY


@pytest.fixture()
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("GROWTHLENS_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("GROWTHLENS_WEBHOOK_SECRET_SHOPIFY", "s")
    monkeypatch.setenv("GROWTHLENS_TRUST_WORKSPACE_HEADER", "1")
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["health", "sync", "customers"]), headers=AUTH_HEADERS) as c:
        yield c
    _store.cache_clear()


@pytest.mark.parametrize("path", ["/api/sync/shopify/batch", "/api/sync/shopify/webhook"])
def test_deeply_nested_json_is_a_400(client, path):
    r = client.post(path, content=b"[" * 50_000, headers={"Content-Type": "application/json",
                                                          "X-Growthlens-Api-Key": TEST_API_KEY})
    assert r.status_code == 400 and "nests 50000 levels" in r.json()["detail"]
    ndjson = b'{"a": 1}\n' + b"{" * 100
    r = client.post(path, content=ndjson, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and "nests" in r.json()["detail"]


def test_non_finite_numbers_are_a_400(client):
    r = client.post("/api/sync/shopify/batch", content=b'[{"id": 1, "total_price": NaN}]',
                    headers={"Content-Type": "application/json", "X-Growthlens-Api-Key": TEST_API_KEY})
    assert r.status_code == 400 and "NaN" in r.json()["detail"]


def test_oversized_bodies_are_a_413(client, monkeypatch):
    big = b"[" + b'"x",' * 300_000 + b'"x"]'  # 1.2 MB: over the webhook limit
    r = client.post("/api/sync/shopify/webhook", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "1 MB" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b" " * 50_000

    r = client.post("/api/sync/shopify/webhook", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    monkeypatch.setenv("GROWTHLENS_MAX_UPLOAD_BYTES", "1000")
    r = client.post("/api/sync/shopify/batch", content=b"[" + b"1," * 600 + b"1]",
                    headers={"Content-Type": "application/json", "X-Growthlens-Api-Key": TEST_API_KEY})
    assert r.status_code == 413


@pytest.mark.parametrize("ws", ["a" * 300, "brandb/cdp", "..", "Acme", "-x", "a_b"])
def test_bad_workspace_ids_are_a_400(client, ws, tmp_path, monkeypatch):
    """A deployment configured with a bad workspace id refuses to work in it; a header naming one changes
    nothing (the workspace comes from credentials only)."""
    r = client.get("/api/customers", headers={"X-Growthlens-Workspace": ws})
    assert r.status_code == 404 and "invalid" not in r.json()["detail"]  # default's (empty) store, not ws's
    monkeypatch.setenv("GROWTHLENS_WORKSPACE", ws)
    r = client.get("/api/customers")
    assert r.status_code == 400 and "invalid workspace id" in r.json()["detail"]
    r = client.post("/api/sync/shopify/batch", content=b"[]", headers={"X-Growthlens-Api-Key": TEST_API_KEY})
    assert r.status_code == 400
    written = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert all("workspaces/default/audit/" in str(p) for p in written)  # only the first request's audit entry


def test_good_workspace_ids_pass(client):
    for ws in ("default", "brand-b", "a" * 63, "0acme"):
        r = client.get("/api/customers", headers={"X-Growthlens-Workspace": ws})
        assert r.status_code == 404 and "no customer data" in r.json()["detail"]
