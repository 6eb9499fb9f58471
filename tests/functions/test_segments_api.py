"""Segments API over a small GlowBeauty: system segments find the planted personas, previews equal the saved
membership and a plain pandas evaluation, invalid rules change nothing, webhooks move people in and out (logged
once), and an interrupted recomputation heals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from datetime import date

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from core.demo.glowbeauty import FILES, write_glowbeauty
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS, TEST_API_KEY
from tests.functions.sync_helpers import sync_demo

WS = "default"
API_KEY = TEST_API_KEY
SECRET = "test-shopify-secret-segments"
BRIEF_RULE = {"all": [{"field": "lifetime_value", "op": "gt", "value": 500},
                      {"field": "last_order_date", "op": "within_last", "value": 60},
                      {"field": "email_engagement", "op": "eq", "value": "High"}]}


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A store with GlowBeauty (300 customers) synced through the batch API, and the demo's truth."""
    tmp = tmp_path_factory.mktemp("segments")
    demo = write_glowbeauty(tmp / "gb", seed=5, customers=300, end=date(2025, 3, 31))
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTHLENS_DATA_DIR", str(tmp / "store"))
    mp.delenv("GROWTHLENS_BUCKET", raising=False)
    mp.setenv("GROWTHLENS_API_KEY", API_KEY)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["sync"]), headers=AUTH_HEADERS) as c:
        sync_demo(c, demo)
    _store.cache_clear()
    mp.undo()
    yield tmp / "store", json.loads((demo / "truth.json").read_text()), demo


@pytest.fixture()
def api(synced, tmp_path, monkeypatch):
    """A client on a private copy of the synced store (tests may change it)."""
    src, truth, demo = synced
    shutil.copytree(src, tmp_path / "store")
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.setenv("GROWTHLENS_API_KEY", API_KEY)
    monkeypatch.setenv("GROWTHLENS_WEBHOOK_SECRET_SHOPIFY", SECRET)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["sync", "customers", "segments"]), headers=AUTH_HEADERS) as c:
        c.store = LocalStore(tmp_path / "store")
        c.truth = truth
        c.demo = demo
        yield c
    _store.cache_clear()


def _profiles(c) -> pd.DataFrame:
    return c.store.read_table(f"workspaces/{WS}/cdp/profiles.parquet")


def _persona_ids(c, persona: str) -> set[str]:
    """Person ids of the planted persona, matched through the primary email."""
    prof = _profiles(c)
    by_email = dict(zip(prof["email"].str.lower(), prof["person_id"], strict=False))
    return {by_email[p["email"].lower()] for p in c.truth["persons"].values()
            if p["persona"] == persona and p["email"].lower() in by_email}


def test_fields_catalogue_drives_the_builder(api):
    r = api.get("/api/segments/fields")
    assert r.status_code == 200, r.text
    doc = r.json()
    fields = {f["name"]: f for f in doc["fields"]}
    assert fields["lifetime_value"]["unit"] == "$" and "gt" in fields["lifetime_value"]["operators"]
    assert "within_last" in fields["last_order_date"]["operators"]
    assert set(fields["email_engagement"]["values"]) == {"High", "Medium", "Low"}
    # prediction fields come with the predictions the refresh writer scored
    pred = api.store.read_table(f"workspaces/{WS}/cdp/predictions.parquet")
    assert "churn_risk" in pred.columns and {"churn_risk", "predicted_ltv", "health", "next_action"} <= set(fields)
    assert set(fields["next_action"]["values"]) >= {"win_back", "offer_subscription", "no_action"}
    events = {e["name"]: e for e in doc["events"]}
    products = next(p for p in events["order"]["properties"] if p["name"] == "product")
    assert "Retinol Night Cream" in products["values"]
    assert doc["operators"]["gt"]


def test_system_segments_find_the_planted_personas(api):
    segs = {s["id"]: s for s in api.get("/api/segments").json()["segments"]}
    assert {"vip-customers", "at-risk-subscribers", "prime-for-subscription"} <= set(segs)
    assert all(segs[s]["system"] for s in ("vip-customers", "at-risk-subscribers", "prime-for-subscription"))
    prof = _profiles(api).set_index("person_id")
    vip = api.get("/api/segments/vip-customers/members", params={"page_size": 500}).json()
    assert vip["total"] == int((prof["lifetime_value"] > 1000).sum()) == segs["vip-customers"]["count"]
    at_risk = api.get("/api/segments/at-risk-subscribers/members", params={"page_size": 500}).json()
    found = {i["id"] for i in at_risk["items"]}
    planted = _persona_ids(api, "at_risk_subscriber")
    assert len(planted) >= 15
    assert len(found & planted) / len(planted) >= 0.9  # recall
    assert len(found & planted) / len(found) >= 0.8  # precision


def test_preview_equals_saved_membership_and_pandas(api):
    p = api.post("/api/segments/preview", json={"rules": BRIEF_RULE})
    assert p.status_code == 200, p.text
    prev = p.json()
    prof = _profiles(api)
    as_of = pd.Timestamp(prev["as_of"])
    score = prof["email_engagement_score"]
    expect = prof[(prof["lifetime_value"] > 500) & (prof["last_order_date"] >= as_of - pd.Timedelta(days=60))
                  & (score >= 60)]
    assert prev["count"] == len(expect) > 0
    assert prev["base"] == len(prof) and prev["share"] == pytest.approx(len(expect) / len(prof))
    assert prev["avg_ltv"] == pytest.approx(expect["lifetime_value"].mean(), abs=0.01)
    assert [s["id"] for s in prev["sample"]] == list(
        expect.sort_values(["lifetime_value", "person_id"], ascending=[False, True])["person_id"].head(20))
    assert prev["revenue_12m"] > 0
    s = api.post("/api/segments", json={"name": "Engaged high value", "rules": BRIEF_RULE})
    assert s.status_code == 201, s.text
    seg = s.json()
    assert seg["count"] == prev["count"] and seg["computation"] == "done"
    members = api.get(f"/api/segments/{seg['id']}/members", params={"page_size": 500}).json()
    assert {i["id"] for i in members["items"]} == set(expect["person_id"])


def test_invalid_rules_get_400_naming_the_path_and_change_nothing(api):
    ok = api.post("/api/segments", json={"name": "Keep", "rules": {"all": []}})
    assert ok.status_code == 201
    key = api.store.root / f"workspaces/{WS}/cdp/segments/definitions.json"
    before = key.read_bytes()
    cases = [
        ({"all": [{"field": "lifetime_value", "op": "gt", "value": 1}, {"field": "lifetime_value", "op": "gt",
                                                                           "value": "lots"}]}, "rules.all[1].value"),
        ({"all": [{"any": [{"field": "no_such_field", "op": "eq", "value": 1}]}]}, "rules.all[0].any[0].field"),
        ({"all": [{"field": "subscription_status", "op": "gt", "value": 1}]}, "rules.all[0].op"),
        ({"all": [{"event": "teleported"}]}, "rules.all[0].event"),
        ({"all": [{"segment": "nope", "op": "in"}]}, "rules.all[0].segment"),
        ({"all": [], "any": []}, "rules"),
    ]
    for rules, path in cases:
        for r in (api.post("/api/segments/preview", json={"rules": rules}),
                  api.post("/api/segments", json={"name": "Bad", "rules": rules}),
                  api.put(f"/api/segments/{ok.json()['id']}", json={"rules": rules})):
            assert r.status_code == 400, (rules, r.text)
            assert r.json()["detail"].startswith(path), (path, r.json()["detail"])
    assert key.read_bytes() == before
    # a cycle through a saved segment is refused too
    a = ok.json()["id"]
    b = api.post("/api/segments", json={"name": "Refers to Keep", "rules": {"all": [{"segment": a, "op": "in"}]}})
    assert b.status_code == 201, b.text
    r = api.put(f"/api/segments/{a}", json={"rules": {"all": [{"segment": b.json()["id"], "op": "in"}]}})
    assert r.status_code == 400 and "segment" in r.json()["detail"]


def test_crud_conflicts_and_history(api):
    r = api.post("/api/segments", json={"name": "Big spenders", "rules": {
        "all": [{"field": "lifetime_value", "op": "gt", "value": 300}]}})
    sid = r.json()["id"]
    n300 = r.json()["count"]
    assert api.post("/api/segments", json={"name": "big SPENDERS", "rules": {"all": []}}).status_code == 409
    r = api.put(f"/api/segments/{sid}", json={"rules": {"all": [{"field": "lifetime_value", "op": "gt",
                                                                  "value": 600}]}})
    assert r.status_code == 200
    n600 = r.json()["count"]
    assert n600 < n300
    hist = api.get(f"/api/segments/{sid}").json()["history"]
    assert [h["count"] for h in hist] == [n300, n600] and hist[0]["baseline"]
    assert hist[1]["exited"] == n300 - n600 and hist[1]["entered"] == 0
    exited = api.get(f"/api/segments/{sid}/changes", params={"change": "exited"}).json()["changes"]
    assert len(exited) == n300 - n600
    assert api.delete("/api/segments/vip-customers").status_code == 409
    assert api.put("/api/segments/vip-customers", json={"name": "Renamed"}).status_code == 409
    user = api.post("/api/segments", json={"name": "Uses big spenders", "rules": {
        "all": [{"segment": sid, "op": "in"}]}}).json()
    assert user["count"] == n600
    assert api.delete(f"/api/segments/{sid}").status_code == 409  # still referred to
    assert api.delete(f"/api/segments/{user['id']}").status_code == 204
    assert api.delete(f"/api/segments/{sid}").status_code == 204
    assert api.get(f"/api/segments/{sid}").status_code == 404
    assert not api.store.list(f"workspaces/{WS}/cdp/segments/{sid}/")


def _order_webhook(api, email: str, total: str, oid: int) -> dict:
    """A new order of the customer with this email, shaped like their stored Shopify orders."""
    rows = [json.loads(line) for line in (api.demo / FILES["shopify"]["orders"]).read_text().splitlines()]
    order = next(o for o in rows if str(o.get("email", "")).lower() == email.lower())
    order.update({"id": oid, "name": f"#{oid}", "created_at": "2025-03-30T10:15:00-05:00",
                  "updated_at": "2025-03-30T10:15:00-05:00", "total_price": total, "financial_status": "paid",
                  "cancelled_at": None,
                  "line_items": [{"id": 1, "title": "Glow Starter Kit", "quantity": 1, "price": total}]})
    body = json.dumps(order).encode()
    sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    r = api.post("/api/sync/shopify/webhook", content=body, headers={
        "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/create", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def test_webhook_moves_a_customer_into_a_segment_once(api):
    prof = _profiles(api)
    emails = {str(json.loads(line).get("email", "")).lower()
              for line in (api.demo / FILES["shopify"]["orders"]).read_text().splitlines()}
    low = prof[(prof["lifetime_value"] > 0) & (prof["lifetime_value"] < 200)
               & prof["email"].str.lower().isin(emails)].iloc[0]
    before = api.get("/api/segments/vip-customers").json()
    _order_webhook(api, low["email"], "1500.00", 990001)
    after = api.get("/api/segments/vip-customers").json()
    assert after["count"] == before["count"] + 1
    assert after["history"][-1]["entered"] == 1 and after["history"][-1]["exited"] == 0
    changes = api.get("/api/segments/vip-customers/changes").json()["changes"]
    assert changes[0] == {"at": after["computed_at"], "person_id": low["person_id"], "change": "entered"}
    detail = api.get(f"/api/customers/{low['person_id']}").json()
    assert "vip-customers" in {s["id"] for s in detail["segments"]}
    _order_webhook(api, low["email"], "1500.00", 990001)  # a replay changes nothing and logs nothing
    again = api.get("/api/segments/vip-customers").json()
    assert len(again["history"]) == len(after["history"])


def test_members_csv_and_customer_search_by_segment(api):
    seg = api.get("/api/segments/vip-customers").json()
    csv = api.get("/api/segments/vip-customers/members", params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("person_id,") and len(lines) == seg["count"] + 1
    found = api.get("/api/customers", params={"segment": "vip-customers", "page_size": 500}).json()
    assert found["total"] == seg["count"]
    assert all(i["lifetime_value"] > 1000 for i in found["items"])
    ltv = [i["lifetime_value"] for i in found["items"]]
    assert ltv == sorted(ltv, reverse=True)
    assert api.get("/api/customers", params={"segment": "nope"}).status_code == 404


def test_an_interrupted_recomputation_heals_without_double_logging(api, monkeypatch):
    from functions.cdp import segment_service

    sid = api.post("/api/segments", json={"name": "Over 200", "rules": {
        "all": [{"field": "lifetime_value", "op": "gt", "value": 200}]}}).json()["id"]
    r = api.put(f"/api/segments/{sid}", json={"rules": {"all": [{"field": "lifetime_value", "op": "gt",
                                                                  "value": 400}]}})
    assert r.status_code == 200
    store = api.store
    real = type(store).write_table
    calls = {"n": 0}

    def failing(self, key, df):  # the snapshot write fails after the change file was written
        if key.endswith(f"{sid}/members.parquet"):
            calls["n"] += 1
            raise OSError("disk full")
        return real(self, key, df)

    monkeypatch.setattr(type(store), "write_table", failing)
    from functions.cdp.segment_defs import update_definition

    update_definition(store, WS, sid, segment_service.validator(store, WS), rules={
        "all": [{"field": "lifetime_value", "op": "gt", "value": 800}]})
    with pytest.raises(OSError):
        segment_service.recompute(store, WS)
    assert calls["n"] == 1
    monkeypatch.setattr(type(store), "write_table", real)
    segment_service.recompute(store, WS)
    doc = api.get(f"/api/segments/{sid}").json()
    prof = _profiles(api)
    assert doc["count"] == int((prof["lifetime_value"] > 800).sum())
    assert [h["count"] for h in doc["history"]][-1] == doc["count"] and len(doc["history"]) == 3
    exited = api.get(f"/api/segments/{sid}/changes", params={"limit": 5000, "change": "exited"}).json()["changes"]
    ids = [c["person_id"] for c in exited]
    assert len(ids) == len(set(ids)) == int(((prof["lifetime_value"] > 200) & (prof["lifetime_value"] <= 800)).sum())


def test_the_engine_reads_an_s3_store_like_a_local_one(api, monkeypatch):
    """Deployed, the engine downloads the published files from S3 (moto here) and answers the same."""
    import boto3
    from moto import mock_aws

    from functions.cdp.segment_engine import SegmentEngine
    from functions.cdp.segment_service import lookup_for
    from functions.storage import S3Store

    local = api.post("/api/segments/preview", json={"rules": BRIEF_RULE}).json()
    behaviour = {"all": [{"event": "email_opened", "count": {"op": "gte", "value": 2},
                          "window": {"last_days": 45}}]}
    local_b = api.post("/api/segments/preview", json={"rules": behaviour}).json()
    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                 ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="gl-seg-test")
        s3 = S3Store("gl-seg-test", client=client)
        for key in api.store.list(f"workspaces/{WS}/cdp/"):
            s3.write_bytes(key, api.store.read_bytes(key))
        eng = SegmentEngine(s3, WS)
        got = eng.preview(BRIEF_RULE, lookup_for(s3, WS)).to_json()
        got_b = eng.preview(behaviour, lookup_for(s3, WS)).to_json()
    for a, b in ((local, got), (local_b, got_b)):
        assert b["count"] == a["count"] and b["revenue_12m"] == a["revenue_12m"]
        assert [s["id"] for s in b["sample"]] == [s["id"] for s in a["sample"]]
    assert local_b["count"] > 0
