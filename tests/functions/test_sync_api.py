"""Sync API: signed webhooks (accept/refuse), batch exports in several formats, idempotency, out-of-order
delivery and the sync log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest
from fastapi.testclient import TestClient

from functions import cdp_store
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS, TEST_API_KEY

SECRET = "test-shopify-secret-0123456789"
API_KEY = TEST_API_KEY
KEY = {"X-Growthlens-Api-Key": API_KEY}


def _order(oid: int, updated: str, total: str = "64.00", email: str = "ann@example.com") -> dict:
    return {"id": oid, "email": email, "created_at": "2024-03-01T10:15:00-05:00", "updated_at": updated,
            "total_price": total, "financial_status": "paid", "name": f"#{oid}",
            "customer": {"id": 42, "email": email, "first_name": "Ann", "last_name": "Lee", "phone": "5556251199"},
            "line_items": [{"id": 1, "title": "Retinol Night Cream", "quantity": 1, "price": total}]}


def _shopify_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/create", "Content-Type": "application/json"}


@pytest.fixture()
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("GROWTHLENS_WEBHOOK_SECRET_SHOPIFY", SECRET)
    monkeypatch.setenv("GROWTHLENS_API_KEY", API_KEY)
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_DEMO_SECRETS", raising=False)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["sync", "customers"]), headers=AUTH_HEADERS) as c:
        c.store_dir = tmp_path / "store"
        yield c
    _store.cache_clear()


def test_webhook_signature_accepted_and_refused(client):
    body = json.dumps(_order(1001, "2024-03-01T10:20:00-05:00")).encode()
    r = client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    wrong = client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body, "nope"))
    assert wrong.status_code == 401 and "X-Shopify-Hmac-Sha256" in wrong.json()["detail"]
    unsigned = client.post("/api/sync/shopify/webhook", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    tampered = client.post("/api/sync/shopify/webhook", content=body.replace(b"64.00", b"1.00"),
                           headers=_shopify_headers(body))
    assert tampered.status_code == 401
    # a source without a configured secret refuses everything
    r = client.post("/api/sync/klaviyo/webhook", content=b"{}", headers={"Klaviyo-Signature": "x"})
    assert r.status_code == 401 and "GROWTHLENS_WEBHOOK_SECRET_KLAVIYO" in r.json()["detail"]
    assert client.post("/api/sync/hubspot/webhook", content=b"{}").status_code == 404


def test_demo_secrets_only_when_enabled(client, monkeypatch):
    body = json.dumps({"ticket": {"id": 7, "created_datetime": "2024-02-02T10:00:00+00:00",
                                  "customer": {"id": 3, "email": "ann@example.com"}, "messages": []}}).encode()
    sig = "sha256=" + hmac.new(b"growthlens-demo-gorgias", body, hashlib.sha256).hexdigest()
    assert client.post("/api/sync/gorgias/webhook", content=body,
                       headers={"X-Gorgias-Signature": sig}).status_code == 401
    monkeypatch.setenv("GROWTHLENS_DEMO_SECRETS", "1")
    r = client.post("/api/sync/gorgias/webhook", content=body, headers={"X-Gorgias-Signature": sig})
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_webhook_idempotent(client):
    body = json.dumps(_order(1001, "2024-03-01T10:20:00-05:00")).encode()
    first = client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body)).json()
    again = client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body)).json()
    assert first["accepted"] == 1 and again["accepted"] == 0 and again["duplicates"] == 1
    events = cdp_store.load_events(LocalStore(client.store_dir), "default")
    assert len(events) == 1
    status = client.get("/api/sync/status").json()
    shop = next(s for s in status["sources"] if s["source"] == "shopify")
    assert shop["received"] == 2 and shop["accepted"] == 1 and shop["duplicates"] == 1 and shop["last_sync"]
    assert status["profiles"]["persons"] == 1


def test_out_of_order_delivery_gives_the_same_result(tmp_path, monkeypatch):
    created = _order(2002, "2024-03-01T10:20:00-05:00", total="64.00")
    updated = _order(2002, "2024-03-02T09:00:00-05:00", total="58.00")  # a later edit of the same order
    other = _order(2003, "2024-03-03T09:00:00-05:00", total="30.00")
    tables = []
    for order in ([created, updated, other], [other, updated, created]):
        store = LocalStore(tmp_path / f"s{len(tables)}")
        for o in order:
            cdp_store.ingest_batch(store, "default", "shopify", json.dumps(o).encode(), "application/json",
                                   topic="orders/updated")
        ev = cdp_store.load_events(store, "default").sort_values("event_id").reset_index(drop=True)
        prof = store.read_table("workspaces/default/cdp/profiles.parquet")
        tables.append((ev, prof))
    (ev_a, prof_a), (ev_b, prof_b) = tables
    assert ev_a.equals(ev_b)
    assert ev_a.loc[ev_a["event_id"] == "shopify:order:2002", "amount"].item() == 58.0  # newest revision wins
    assert prof_a.equals(prof_b) and prof_a["lifetime_value"].item() == pytest.approx(88.0)


def test_batch_formats_and_rejections(client):
    orders = [_order(3000 + i, "2024-03-01T10:20:00-05:00") for i in range(3)]
    r = client.post("/api/sync/shopify/batch?topic=orders", content=json.dumps(orders),
                    headers={"Content-Type": "application/json", **KEY})
    assert r.status_code == 200 and r.json()["accepted"] == 3
    nd = "\n".join(json.dumps(_order(4000 + i, "2024-03-01T10:20:00-05:00")) for i in range(2))
    r = client.post("/api/sync/shopify/batch?topic=orders", content=nd,
                    headers={"Content-Type": "application/x-ndjson", **KEY})
    assert r.json()["accepted"] == 2
    csv = ("id,email,created_at,total_price,customer.id,customer.first_name\n"
           "5001,bo@example.com,2024-04-01T10:00:00Z,20.00,77,Bo\n"
           "5002,bo@example.com,2024-04-02T10:00:00Z,,77,Bo\n")
    r = client.post("/api/sync/shopify/batch?topic=orders", content=csv, headers={"Content-Type": "text/csv", **KEY})
    out = r.json()
    assert out["accepted"] == 1 and out["rejected_count"] == 1
    assert "total_price" in out["rejected"][0]["reason"] and "record 1" in out["rejected"][0]["reason"]
    # nothing readable → 400 naming the field
    r = client.post("/api/sync/shopify/batch?topic=orders", content=json.dumps([{"id": 1}]), headers=KEY)
    assert r.status_code == 400 and "created_at" in r.json()["detail"]
    r = client.post("/api/sync/shopify/batch", content=b"", headers=KEY)
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    status = client.get("/api/sync/status").json()
    shop = next(s for s in status["sources"] if s["source"] == "shopify")
    assert shop["rejected"] == 2 and any("total_price" in x["reason"] for x in shop["reasons"])
    assert shop["accepted"] == 6
    assert {s["source"] for s in status["sources"]} == {"shopify", "klaviyo", "ga4", "gorgias", "recharge"}
    assert not next(s for s in status["sources"] if s["source"] == "ga4")["connected"]


def test_batch_needs_a_signature_or_the_api_key(client):
    """An unsigned batch is refused (it would bypass the webhook signatures); the source's signature or the API
    key admit it."""
    body = json.dumps([_order(6001, "2024-03-01T10:20:00-05:00", email="mallory@example.com")]).encode()
    anonymous = TestClient(client.app)
    for headers in ({}, {"X-Growthlens-Api-Key": "wrong"}, _shopify_headers(body, "nope")):
        r = anonymous.post("/api/sync/shopify/batch?topic=orders", content=body,
                           headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 401 and "API key" in r.json()["detail"]
    assert client.get("/api/customers", params={"q": "mallory"}).status_code == 404  # nothing stored
    r = anonymous.post("/api/sync/shopify/batch?topic=orders", content=body, headers=_shopify_headers(body))
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert client.get("/api/customers", params={"q": "mallory"}).json()["total"] == 1


def test_webhook_recomputes_only_the_touched_customer(client):
    from datetime import date

    from core.demo.glowbeauty import FILES, generate_glowbeauty

    data = generate_glowbeauty(seed=4, customers=60, end=date(2025, 5, 31))
    store = LocalStore(client.store_dir)
    files = data.files()
    for source, topics in FILES.items():
        for topic, rel in topics.items():
            cdp_store.ingest_batch(store, "default", source, files[rel], topic=topic, rebuild=False)
    first = cdp_store.refresh(store, "default", None)
    before = store.read_table("workspaces/default/cdp/profiles.parquet").set_index("person_id")
    assert first["persons"] == len(before) >= 55
    # a new order from an existing Shopify customer, dated before the newest event
    old = next(o for o in data.shopify_orders if o["customer"]["id"] == data.shopify_orders[0]["customer"]["id"])
    new = json.loads(json.dumps(old))
    new.update(id=999_000_001, name="#99999", total_price="41.00", created_at="2025-05-01T10:00:00-05:00",
               updated_at="2025-05-01T10:00:00-05:00")
    body = json.dumps(new).encode()
    r = client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body))
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh"]
    assert refresh["recomputed"] == 1 and refresh["resolved"] is False  # no new record: no re-resolution
    after = store.read_table("workspaces/default/cdp/profiles.parquet").set_index("person_id")
    [pid] = refresh["recomputed_ids"]
    assert after.loc[pid, "lifetime_value"] == pytest.approx(before.loc[pid, "lifetime_value"] + 41.0)
    others = before.index.drop(pid)
    assert after.loc[others, ["lifetime_value", "total_orders", "email_engagement_score"]].equals(
        before.loc[others, ["lifetime_value", "total_orders", "email_engagement_score"]])
    found = client.get("/api/customers", params={"q": pid}).json()["items"][0]
    assert found["lifetime_value"] == pytest.approx(after.loc[pid, "lifetime_value"])


def test_cli_sync_loads_a_demo_folder(tmp_path, monkeypatch, capsys):
    from datetime import date

    from core.demo.glowbeauty import write_glowbeauty
    from functions.cli.main import main

    demo = write_glowbeauty(tmp_path / "gb", seed=8, customers=40, end=date(2025, 1, 31))
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "cli-store"))
    assert main(["sync", str(demo)]) == 0
    out = capsys.readouterr().out
    assert "orders.ndjson" in out and "customer profiles" in out
    store = LocalStore(tmp_path / "cli-store")
    prof = store.read_table("workspaces/default/cdp/profiles.parquet")
    assert len(prof) == pytest.approx(40, abs=2)
    n_events = len(cdp_store.load_events(store, "default"))
    assert main(["sync", str(demo)]) == 0  # running it again changes nothing
    assert len(cdp_store.load_events(store, "default")) == n_events
    line = capsys.readouterr().out.split("orders.ndjson")[1].split("\n")[0]
    assert re.search(r"accepted\s+0\s", line) and not re.search(r"duplicates\s+0\s", line)
    assert main(["sync", str(tmp_path / "missing")]) == 2


def test_ga4_measurement_protocol_with_api_secret(client, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_WEBHOOK_SECRET_GA4", "ga4-api-secret")
    body = json.dumps({"client_id": "555.1", "user_id": "42", "timestamp_micros": 1714557600000000,
                       "events": [{"name": "login"}, {"name": "view_item", "params": {"items": []}}]})
    r = client.post("/api/sync/ga4/webhook?api_secret=ga4-api-secret", content=body)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert client.post("/api/sync/ga4/webhook?api_secret=wrong", content=body).status_code == 401
    assert client.post("/api/sync/ga4/webhook", content=body).status_code == 401
    status = {s["source"]: s for s in client.get("/api/sync/status").json()["sources"]}
    assert status["ga4"]["webhook_secret_configured"] and not status["klaviyo"]["webhook_secret_configured"]


def test_person_ids_stay_stable_when_new_customers_arrive(tmp_path):
    from datetime import date

    from core.demo.glowbeauty import FILES, generate_glowbeauty

    data = generate_glowbeauty(seed=6, customers=50, end=date(2025, 2, 28))
    store = LocalStore(tmp_path / "stable")
    files = data.files()
    for source, topics in FILES.items():
        for topic, rel in topics.items():
            cdp_store.ingest_batch(store, "default", source, files[rel], topic=topic, rebuild=False)
    cdp_store.refresh(store, "default", None)
    before = store.read_table("workspaces/default/cdp/clusters.parquet")
    new = _order(777_000_001, "2025-02-01T10:00:00-05:00", email="newcomer@example.com")
    new["customer"]["id"] = 990_001
    out = cdp_store.ingest_batch(store, "default", "shopify", [new], topic="orders/create")
    assert out["refresh"]["resolved"] is True and out["refresh"]["recomputed"] == 1
    after = store.read_table("workspaces/default/cdp/clusters.parquet")
    m = before.merge(after, on="record_id", suffixes=("_before", "_after"))
    assert len(m) == len(before) and (m["person_id_before"] == m["person_id_after"]).all()
    assert after["person_id"].nunique() == before["person_id"].nunique() + 1


def test_a_guest_checkout_reaches_the_customer_with_that_email(client):
    """An order with an email but no Shopify customer (a guest checkout) is attached to the person with that email,
    by the incremental refresh and by a full rebuild alike."""
    body = json.dumps(_order(5001, "2024-03-01T10:20:00-05:00")).encode()
    assert client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body)).status_code == 200
    guest = _order(5002, "2024-03-02T10:20:00-05:00", total="36.00", email="ANN@example.com ")
    del guest["customer"]
    body = json.dumps(guest).encode()
    assert client.post("/api/sync/shopify/webhook", content=body, headers=_shopify_headers(body)).status_code == 200
    hits = client.get("/api/customers", params={"q": "ann@example.com"}).json()["items"]
    assert len(hits) == 1 and hits[0]["total_orders"] == 2 and hits[0]["lifetime_value"] == 100.0
    store = LocalStore(client.store_dir)
    cdp_store.refresh(store, "default", full=True)
    prof = store.read_table("workspaces/default/cdp/profiles.parquet")
    assert prof["total_orders"].tolist() == [2] and prof["lifetime_value"].tolist() == [100.0]


def test_a_stale_klaviyo_webhook_is_refused(client, monkeypatch):
    """Klaviyo signs a timestamp: a delivery replayed after the tolerance is refused, a fresh one accepted."""
    import hashlib
    import hmac
    import time

    monkeypatch.setenv("GROWTHLENS_WEBHOOK_SECRET_KLAVIYO", "klaviyo-secret-123")
    body = json.dumps({"data": {"type": "profile", "id": "01KLAV", "attributes": {
        "email": "kim@example.com", "first_name": "Kim", "created": "2025-01-01T10:00:00Z",
        "updated": "2025-01-02T10:00:00Z"}}}).encode()

    def send(ts: str):
        sig = hmac.new(b"klaviyo-secret-123", body + ts.encode(), hashlib.sha256).hexdigest()
        return client.post("/api/sync/klaviyo/webhook", content=body, headers={
            "Content-Type": "application/json", "Klaviyo-Timestamp": ts, "Klaviyo-Signature": sig})

    old = send(str(int(time.time()) - 600))
    assert old.status_code == 401 and "stale klaviyo webhook" in old.json()["detail"]
    assert send("yesterday").status_code == 401
    fresh = send(str(int(time.time())))
    assert fresh.status_code == 200, fresh.text
