"""Source adapters: each tool's payloads → canonical events; malformed input names the field; signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, date, datetime

import pytest

from core.cdp.events import EVENT_TYPES, events_to_frame
from core.cdp.sources import SOURCES, adapter, ga4, gorgias, klaviyo, read_rows, recharge, shopify
from core.demo.glowbeauty import generate_glowbeauty

SHOPIFY_ORDER = {
    "id": 820982911946154508, "email": "Jon.Snow@Example.com", "created_at": "2024-03-01T10:15:00-05:00",
    "updated_at": "2024-03-01T12:00:00-05:00", "total_price": "98.50", "currency": "USD",
    "financial_status": "paid", "name": "#1001",
    "customer": {"id": 115310627314723954, "email": "Jon.Snow@Example.com", "first_name": "Jon",
                 "last_name": "Snow", "phone": "(555) 625-1199"},
    "line_items": [{"id": 1, "title": "Retinol Night Cream", "quantity": 1, "price": "64.00", "product_id": 8003}],
    "shipping_address": {"address1": "123 Wall St", "city": "Winterfell", "zip": "40003"},
    "note_attributes": [{"name": "_ga_client_id", "value": "123.456"}],
}


@pytest.fixture(scope="module")
def gb():
    return generate_glowbeauty(seed=11, customers=150, end=date(2024, 12, 31))


def test_shopify_order_and_customer():
    [e] = shopify.parse(SHOPIFY_ORDER, "orders/create")
    assert e.event_id == "shopify:order:820982911946154508" and e.type == "order"
    assert e.amount == 98.5 and e.time == datetime(2024, 3, 1, 15, 15, tzinfo=UTC)
    assert e.identifiers["email"] == "Jon.Snow@Example.com"
    assert e.identifiers["source_customer_id"] == "shopify:115310627314723954"
    assert e.identifiers["anonymous_id"] == "ga4:123.456"
    assert e.identifiers["phone"] == "(555) 625-1199" and e.identifiers["postcode"] == "40003"
    [c] = shopify.parse({"id": 5, "email": "a@b.co", "created_at": "2024-01-01T00:00:00Z"}, "customers/update")
    assert c.type == "customer_updated" and c.identifiers["source_customer_id"] == "shopify:5"


@pytest.mark.parametrize("field,mutate", [
    ("total_price", lambda o: o.pop("total_price")),
    ("created_at", lambda o: o.update(created_at="not a date")),
    ("total_price", lambda o: o.update(total_price="ninety")),
    ("id", lambda o: o.pop("id")),
])
def test_shopify_malformed_names_the_field(field, mutate):
    o = json.loads(json.dumps(SHOPIFY_ORDER))
    mutate(o)
    with pytest.raises(ValueError, match=field):
        shopify.parse(o, "orders/create")


def test_klaviyo_shapes():
    flat = {"type": "event", "id": "4abc", "attributes": {"datetime": "2024-05-01T10:00:00+00:00",
                                                          "event_properties": {"Campaign Name": "Spring"}},
            "metric": {"name": "Opened Email"}, "profile": {"id": "01HX", "email": "a@b.co"}}
    [e] = klaviyo.parse(flat)
    assert e.type == "email_opened" and e.identifiers == {"email": "a@b.co", "source_customer_id": "klaviyo:01HX"}
    api = {"data": [{"type": "event", "id": "4abd", "attributes": {"timestamp": 1714557600,
                                                                   "event_properties": {}},
                     "relationships": {"metric": {"data": {"type": "metric", "id": "M1"}},
                                       "profile": {"data": {"type": "profile", "id": "01HX"}}}}],
           "included": [{"type": "metric", "id": "M1", "attributes": {"name": "Clicked Email"}},
                        {"type": "profile", "id": "01HX", "attributes": {"email": "a@b.co"}}]}
    [e2] = klaviyo.parse(api)
    assert e2.type == "email_clicked" and e2.identifiers["email"] == "a@b.co"
    assert e2.time == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    prof = {"type": "profile", "id": "01HX", "attributes": {"email": "a@b.co", "created": "2024-01-01T00:00:00Z",
                                                            "location": {"zip": "02139"}}}
    [p] = klaviyo.parse(prof)
    assert p.type == "customer_updated" and p.identifiers["postcode"] == "02139"
    bad = dict(flat, metric={})
    with pytest.raises(ValueError, match="metric"):
        klaviyo.parse(bad)
    with pytest.raises(ValueError, match="attributes.datetime"):
        klaviyo.parse(dict(flat, attributes={"event_properties": {}}))


def test_ga4_export_row_and_measurement_protocol():
    row = {"event_name": "purchase", "event_timestamp": 1714557600123456, "user_pseudo_id": "99.1",
           "user_id": "777", "event_params": [{"key": "ga_session_id", "value": {"int_value": 5}}],
           "ecommerce": {"transaction_id": "#1001", "purchase_revenue": 64.0}}
    [e] = ga4.parse(row)
    assert e.type == "web_purchase" and e.identifiers == {"anonymous_id": "ga4:99.1",
                                                          "source_customer_id": "shopify:777"}
    assert e.properties["transaction_id"] == "#1001"
    [e_again] = ga4.parse(dict(row))
    assert e_again.event_id == e.event_id  # deterministic id for replays
    mp = {"client_id": "99.1", "timestamp_micros": 1714557600000000,
          "events": [{"name": "page_view", "params": {"page_location": "/"}}, {"name": "view_item"}]}
    evs = ga4.parse(mp)
    assert [x.type for x in evs] == ["page_view", "product_viewed"] and "source_customer_id" not in evs[0].identifiers
    with pytest.raises(ValueError, match="user_pseudo_id"):
        ga4.parse({"event_name": "page_view", "event_timestamp": 1714557600123456})
    with pytest.raises(ValueError, match="event_timestamp"):
        ga4.parse({"event_name": "page_view", "event_timestamp": "yesterday", "user_pseudo_id": "1"})


def test_gorgias_ticket_and_messages():
    t = {"ticket": {"id": 9, "created_datetime": "2024-02-02T10:00:00+00:00", "subject": "Refund request",
                    "customer": {"id": 3, "email": "a@b.co", "name": "Ann Lee"}, "tags": [{"name": "refund"}],
                    "messages": [{"id": 1, "created_datetime": "2024-02-02T10:00:00+00:00", "from_agent": False},
                                 {"id": 2, "created_datetime": "2024-02-02T12:00:00+00:00", "from_agent": True}]}}
    evs = gorgias.parse(t)
    assert [e.type for e in evs] == ["ticket_created", "ticket_message", "ticket_message"]
    assert evs[0].identifiers == {"email": "a@b.co", "first_name": "Ann", "last_name": "Lee",
                                  "source_customer_id": "gorgias:3"}
    assert evs[0].properties["tags"] == ["refund"]
    with pytest.raises(ValueError, match="customer.email"):
        gorgias.parse({"id": 9, "created_datetime": "2024-02-02T10:00:00+00:00", "customer": {}})


def test_recharge_subscription_and_charge():
    s = {"subscription": {"id": 1, "customer_id": 2, "email": "a@b.co", "status": "CANCELLED", "price": "45.00",
                          "created_at": "2024-01-01T09:00:00", "updated_at": "2024-03-01T09:00:00",
                          "cancelled_at": "2024-03-01T09:00:00", "order_interval_frequency": "2",
                          "order_interval_unit": "month"}}
    evs = recharge.parse(s)
    assert [e.type for e in evs] == ["subscription_created", "subscription_cancelled"]
    assert evs[0].properties["interval_days"] == 60 and evs[0].properties["status"] == "cancelled"
    assert evs[0].time == datetime(2024, 1, 1, 9, tzinfo=UTC)  # naive ReCharge times read as UTC
    [c] = recharge.parse({"charge": {"id": 5, "customer_id": 2, "status": "SUCCESS", "total_price": "45.00",
                                     "processed_at": "2024-02-01T09:00:00"}})
    assert c.type == "charge_paid" and c.amount == 45.0
    with pytest.raises(ValueError, match="price"):
        recharge.parse({"id": 1, "customer_id": 2, "status": "ACTIVE", "price": "abc",
                        "created_at": "2024-01-01T09:00:00"}, "subscriptions")


def test_every_generated_export_parses(gb):
    files = gb.files()
    total = 0
    for name, topics in {"shopify": ("customers", "orders"), "klaviyo": ("profiles", "events"), "ga4": ("events",),
                         "gorgias": ("tickets",), "recharge": ("subscriptions", "charges")}.items():
        mod = adapter(name)
        for topic in topics:
            rows = files[f"{name}/{topic}.ndjson"]
            res = mod.parse_export(rows, topic)
            assert res.rejected == [] and res.received == len(rows) and len(res.events) >= len(rows)
            total += len(res.events)
            assert {e.type for e in res.events} <= EVENT_TYPES
    assert total > 1000


def test_parse_export_rejects_bad_rows_and_keeps_good_ones():
    rows = [SHOPIFY_ORDER, {"id": 1, "created_at": "2024-01-01T00:00:00Z", "line_items": []}, "junk"]
    res = shopify.parse_export(rows, "orders")
    assert len(res.events) == 1 and res.received == 3
    assert "record 1" in res.rejected[0][1] and "total_price" in res.rejected[0][1]
    assert "record 2" in res.rejected[1][1]


def test_read_rows_formats():
    arr = json.dumps([{"a": 1}, {"a": 2}]).encode()
    assert read_rows(arr) == [{"a": 1}, {"a": 2}]
    assert read_rows(json.dumps({"orders": [{"a": 1}]})) == [{"a": 1}]
    assert read_rows(b'{"a": 1}\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    assert read_rows(b"id,customer.email\n1,x@y.z\n", "text/csv") == [{"id": "1", "customer": {"email": "x@y.z"}}]
    with pytest.raises(ValueError, match="line 2"):
        read_rows(b'{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match="empty"):
        read_rows(b"  ")
    with pytest.raises(ValueError, match="unknown source"):
        adapter("hubspot")
    assert len(SOURCES) == 5


def _sign(source: str, body: bytes, secret: str) -> dict[str, str]:
    if source == "shopify":
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256)
                                                          .digest()).decode()}
    if source == "klaviyo":
        return {"Klaviyo-Timestamp": "1714557600",
                "Klaviyo-Signature": hmac.new(secret.encode(), body + b"1714557600", hashlib.sha256).hexdigest()}
    if source == "gorgias":
        return {"X-Gorgias-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
    if source == "recharge":
        return {"X-Recharge-Hmac-Sha256": hashlib.sha256(secret.encode() + body).hexdigest()}
    return {"api_secret": secret}


@pytest.mark.parametrize("source", SOURCES)
def test_signatures_accept_and_refuse(source):
    mod = adapter(source)
    body = b'{"id": 1}'
    good = _sign(source, body, "s3cret-value-123")
    assert mod.verify_signature(body, good, "s3cret-value-123")
    lower = {k.lower(): v for k, v in good.items()}
    assert mod.verify_signature(body, lower, "s3cret-value-123")  # header names are case-insensitive
    assert not mod.verify_signature(body, good, "another-secret")
    assert not mod.verify_signature(body, {}, "s3cret-value-123")
    if source != "ga4":  # the body is signed, so tampering is detected
        assert not mod.verify_signature(b'{"id": 2}', good, "s3cret-value-123")


def test_events_to_frame_columns():
    df = events_to_frame(shopify.parse(SHOPIFY_ORDER, "orders/create"))
    assert str(df["time"].dt.tz) == "UTC" and df.loc[0, "amount"] == 98.5
    assert json.loads(df.loc[0, "properties"])["name"] == "#1001"
