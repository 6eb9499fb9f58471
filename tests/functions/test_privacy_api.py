"""A data-subject export: found by person id or by any spelling of an email the person used, it holds the profile,
every stored event, the merged identities and the segment history; only admins may ask, and the request is
audited."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from core.demo.glowbeauty import write_glowbeauty
from functions.auth import create_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS
from tests.functions.sync_helpers import sync_demo


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("privacy")
    demo = write_glowbeauty(tmp / "gb", seed=5, customers=120, end=date(2025, 3, 31))
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTHLENS_DATA_DIR", str(tmp / "store"))
    mp.delenv("GROWTHLENS_BUCKET", raising=False)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(), headers=AUTH_HEADERS) as c:
        sync_demo(c, demo)
        c.store = LocalStore(tmp / "store")
        yield c
    _store.cache_clear()
    mp.undo()


def test_export_holds_everything_about_the_person(api):
    top = api.get("/api/customers", params={"sort": "-lifetime_value", "page_size": 1}).json()["items"][0]
    pid = top["person_id"]
    above = {"all": [{"field": "lifetime_value", "op": "gt", "value": top["lifetime_value"] + 1}]}
    seg = api.post("/api/segments", json={"name": "Bought", "rules": above})  # its baseline: without her
    assert seg.status_code == 201, seg.text
    anyone = {"all": [{"field": "lifetime_value", "op": "gt", "value": 0}]}
    r = api.put(f"/api/segments/{seg.json()['id']}", json={"name": "Bought", "rules": anyone})
    assert r.status_code == 200, r.text
    detail = api.get(f"/api/customers/{pid}", params={"limit": 5000}).json()

    bundle = api.post("/api/privacy/export", json={"person_id": pid}).json()
    assert bundle["person_id"] == pid and bundle["profile"]["email"] == detail["profile"]["email"]
    assert len(bundle["events"]) == detail["timeline_total"] > 0
    assert {e["event_id"] for e in bundle["events"]} == {e["event_id"] for e in detail["timeline"]}
    assert {i["record_id"] for i in bundle["identities"]} == {i["record_id"] for i in detail["identities"]}
    assert any(s["name"] == "Bought" for s in bundle["segments"])
    assert any(h["segment"] == "Bought" and h["change"] == "entered" for h in bundle["segment_history"])

    email = detail["profile"]["email"]
    local, domain = email.split("@")
    by_email = api.post("/api/privacy/export", json={"email": f"  {local.upper()}@{domain} "}).json()
    assert by_email["person_id"] == pid


def test_only_admins_ask_and_every_request_is_audited(api):
    _, reader = create_key(api.store, "default", "analyst", "read")
    r = TestClient(api.app, headers={"Authorization": f"Bearer {reader}"}).post(
        "/api/privacy/export", json={"email": "nobody@example.com"})
    assert r.status_code == 403
    assert api.post("/api/privacy/export", json={"email": "nobody@example.com"}).status_code == 404
    bad = api.post("/api/privacy/export", json={"person_id": "p", "email": "a@b.co"})
    assert bad.status_code == 422 and "exactly one" in bad.text
    log = api.get("/api/audit", params={"action": "/api/privacy/export"}).json()["entries"]
    assert len(log) >= 2 and all(e["actor"]["scope"] == "admin" for e in log)
