"""Customer search and profile API over a small GlowBeauty loaded through the batch endpoint."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

from core.demo.glowbeauty import write_glowbeauty
from tests.auth_keys import AUTH_HEADERS, TEST_API_KEY
from tests.functions.sync_helpers import sync_demo


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("customers")
    demo = write_glowbeauty(tmp / "gb", seed=21, customers=150, end=date(2025, 3, 31))
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTHLENS_DATA_DIR", str(tmp / "store"))
    mp.delenv("GROWTHLENS_BUCKET", raising=False)
    mp.setenv("GROWTHLENS_API_KEY", TEST_API_KEY)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["sync", "customers"]), headers=AUTH_HEADERS) as c:
        for body in sync_demo(c, demo):
            assert body["rejected_count"] == 0
        yield c, json.loads((demo / "truth.json").read_text())
    _store.cache_clear()
    mp.undo()


def test_search_by_name_email_phone_and_id(loaded):
    c, truth = loaded
    sarah = truth["persons"]["P000001"]
    r = c.get("/api/customers", params={"q": "sarah johnson"}).json()
    assert r["total"] >= 1 and r["items"][0]["name"] == "Sarah Johnson"
    pid = r["items"][0]["id"]
    assert c.get("/api/customers", params={"q": "Johnson"}).json()["total"] >= 1
    by_email = c.get("/api/customers", params={"q": sarah["email"].upper()[:6]}).json()
    assert pid in {i["id"] for i in by_email["items"]}
    other = next(p for k, p in truth["persons"].items() if p["persona"] == "one_time_buyer")
    digits = other["phone"][-10:]
    q = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    hits = c.get("/api/customers", params={"q": q}).json()["items"]
    assert any(h["last_name"] == other["last_name"] for h in hits)
    assert c.get("/api/customers", params={"q": pid}).json()["items"][0]["id"] == pid
    assert c.get("/api/customers", params={"q": "zzzz-nobody"}).json()["total"] == 0


def test_list_sort_and_pagination(loaded):
    c, truth = loaded
    r = c.get("/api/customers", params={"sort": "-lifetime_value", "page_size": 10}).json()
    assert r["total"] == pytest.approx(len(truth["persons"]), rel=0.05)
    ltv = [i["lifetime_value"] for i in r["items"]]
    assert ltv == sorted(ltv, reverse=True) and len(ltv) == 10
    assert ltv[0] == pytest.approx(max(p["lifetime_value"] for p in truth["persons"].values()))
    p2 = c.get("/api/customers", params={"sort": "-lifetime_value", "page_size": 10, "page": 2}).json()
    assert not {i["id"] for i in r["items"]} & {i["id"] for i in p2["items"]}
    assert p2["items"][0]["lifetime_value"] <= ltv[-1]
    assert c.get("/api/customers", params={"sort": "bogus"}).status_code == 400
    assert c.get("/api/customers", params={"page": 0}).status_code == 422


def test_profile_timeline_identities(loaded):
    c, truth = loaded
    pid = c.get("/api/customers", params={"q": "sarah johnson"}).json()["items"][0]["id"]
    d = c.get(f"/api/customers/{pid}").json()
    sarah = truth["persons"]["P000001"]
    assert d["profile"]["lifetime_value"] == pytest.approx(sarah["lifetime_value"])
    assert d["profile"]["total_orders"] == sarah["total_orders"]
    assert d["profile"]["subscription_status"] == "active"
    assert len({e["source"] for e in d["timeline"]}) >= 3
    times = [e["time"] for e in d["timeline"]]
    assert times == sorted(times, reverse=True)
    sources = {i["source"] for i in d["identities"]}
    assert {"shopify", "klaviyo", "recharge"} <= sources
    ids = {i["source_customer_id"] for i in d["identities"]}
    assert {f"shopify:{x}" for x in sarah["ids"]["shopify"]} <= ids  # both accounts merged
    assert c.get("/api/customers/nobody").status_code == 404


def test_empty_store_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "empty"))
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["customers"]), headers=AUTH_HEADERS) as c:
        r = c.get("/api/customers")
        assert r.status_code == 404 and "sync" in r.json()["detail"]
    _store.cache_clear()
