"""The audit log: profile reads, searches and key changes are recorded with who, what, when and from where; the
search text is kept only as a hash; parallel requests each get their entry; only admins read it, and only their
own workspace's."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from functions.auth import create_key
from functions.storage import LocalStore


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    store = LocalStore(tmp_path)
    _, admin = create_key(store, "brand-a", "ops", "admin")
    _, reader = create_key(store, "brand-a", "analyst", "read")
    _, other = create_key(store, "brand-b", "b ops", "admin")
    app = create_app()
    clients = {name: TestClient(app, headers={"Authorization": f"Bearer {k}", "User-Agent": f"agent-{name}"})
               for name, k in (("admin", admin), ("reader", reader), ("other", other))}
    orders = "\n".join(json.dumps({"id": 100 + i, "email": f"ann.lee{i}@example.com", "total_price": "40.00",
                                   "created_at": f"2025-02-0{i + 1}T09:00:00Z",
                                   "customer": {"id": 500 + i, "email": f"ann.lee{i}@example.com",
                                                "first_name": "Ann", "last_name": "Lee"}}) for i in range(3))
    r = clients["admin"].post("/api/sync/shopify/batch?topic=orders", content=orders,
                              headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    yield clients, store
    _store.cache_clear()


def test_reads_and_changes_are_recorded_with_who_what_and_where(env):
    c, store = env
    found = c["reader"].get("/api/customers", params={"q": "ann.lee0@example.com"}).json()
    person = found["items"][0]["person_id"]
    assert c["reader"].get(f"/api/customers/{person}").status_code == 200
    assert c["reader"].get("/api/segments/fields").status_code == 200  # the catalogue holds no one's data
    made = c["admin"].post("/api/keys", json={"name": "loader", "scope": "write"}).json()

    log = c["admin"].get("/api/audit").json()["entries"]
    actions = [e["action"] for e in log]
    assert actions[:4] == ["GET /api/audit", "POST /api/keys", "GET /api/customers/{person_id}",
                           "GET /api/customers"]  # reading the log is itself recorded
    assert "GET /api/segments/fields" not in actions
    read = log[2]
    assert read["target"] == {"person_id": person}
    assert read["actor"]["scope"] == "read" and read["actor"]["via"] == "key" and read["actor"]["subject"]
    assert read["from"]["user_agent"] == "agent-reader" and read["from"]["ip"]
    search = log[3]
    assert search["query"]["q"].startswith("sha256:")
    raw = b"".join(store.read_bytes(k) for k in store.list("workspaces/brand-a/audit/"))
    assert b"ann.lee0@example.com" not in raw and made["secret"].encode() not in raw
    only_profiles = c["admin"].get("/api/audit", params={"action": "{person_id}"}).json()["entries"]
    assert [e["action"] for e in only_profiles] == ["GET /api/customers/{person_id}"]


def test_parallel_requests_each_get_an_entry(env):
    c, _ = env
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: c["reader"].get("/api/customers").status_code, range(24)))
    assert codes == [200] * 24
    log = c["admin"].get("/api/audit", params={"action": "GET /api/customers", "limit": 100}).json()
    assert sum(e["action"] == "GET /api/customers" for e in log["entries"]) == 24


def test_only_admins_read_the_log_and_only_their_workspace(env):
    c, _ = env
    c["reader"].get("/api/customers")
    assert c["reader"].get("/api/audit").status_code == 403
    theirs = c["other"].get("/api/audit").json()["entries"]
    assert all(e["actor"]["subject"] != "" for e in theirs)
    assert not any("customers" in e["action"] for e in theirs)  # brand-b's log: its own reads of it only
    r = c["admin"].get("/api/audit", params={"since": "2026-02-01", "until": "2026-01-01"})
    assert r.status_code == 400 and "before" in r.json()["detail"]
