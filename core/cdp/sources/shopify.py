"""Shopify: orders and customers (webhook topics ``orders/*``, ``customers/*``; REST/bulk exports).

Identifiers: the customer's email, phone, name and shipping address, the Shopify customer id
(``shopify:<id>``) and, when the storefront writes it to the order's note attributes, the GA4 client id
(``_ga_client_id`` → ``ga4:<id>``) that ties the order to the visitor's earlier anonymous browsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from core.cdp.events import Event, parse_time, require
from core.cdp.sources import ExportResult, header, parse_rows

SOURCE = "shopify"
SIGNATURE_SCHEME = "base64 HMAC-SHA256 of the raw body with the app's secret, header X-Shopify-Hmac-Sha256"
GA_NOTE_KEYS = ("_ga_client_id", "_ga", "ga_client_id")


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Shopify signs webhooks with ``base64(HMAC-SHA256(secret, body))`` in ``X-Shopify-Hmac-Sha256``."""
    got = header(headers, "X-Shopify-Hmac-Sha256")
    if not got or not secret:
        return False
    want = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(got.strip(), want)


def _s(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def parse(payload: dict, topic: str | None = None) -> list[Event]:
    """One order or customer (the topic decides; without one, an object with ``line_items`` is an order)."""
    if not isinstance(payload, dict):
        raise ValueError("shopify payload must be a JSON object")
    kind = (topic or "").split("/")[0].rstrip("s")
    if kind not in ("order", "customer"):
        kind = "order" if ("line_items" in payload or "total_price" in payload) else "customer"
    return [_order(payload)] if kind == "order" else [_customer(payload)]


def _order(o: dict) -> Event:
    oid = require(o, "id", "shopify order")
    where = f"shopify order {oid}"
    created = parse_time(require(o, "created_at", where), "created_at", where)
    total_raw = require(o, "total_price", where)
    try:
        total = float(total_raw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field 'total_price' is not a number: {total_raw!r}") from e
    cust = o.get("customer") or {}
    if not isinstance(cust, dict):
        raise ValueError(f"{where}: field 'customer' must be an object")
    ship = o.get("shipping_address") or o.get("billing_address") or {}
    email = _s(o.get("email")) or _s(cust.get("email"))
    if not email and not cust.get("id"):
        raise ValueError(f"{where}: missing required field 'email' (or 'customer.id')")
    ids = {
        "email": email,
        "phone": _s(cust.get("phone")) or _s(o.get("phone")) or _s(ship.get("phone")),
        "first_name": _s(cust.get("first_name")) or _s(ship.get("first_name")),
        "last_name": _s(cust.get("last_name")) or _s(ship.get("last_name")),
        "address": _s(ship.get("address1")),
        "city": _s(ship.get("city")),
        "postcode": _s(ship.get("zip")),
        "source_customer_id": f"shopify:{cust['id']}" if cust.get("id") else None,
    }
    for note in o.get("note_attributes") or []:
        if isinstance(note, dict) and note.get("name") in GA_NOTE_KEYS and note.get("value"):
            ids["anonymous_id"] = f"ga4:{note['value']}"
    items = [{"title": li.get("title"), "quantity": li.get("quantity"), "price": li.get("price"),
              "product_id": li.get("product_id")} for li in (o.get("line_items") or []) if isinstance(li, dict)]
    props = {
        "order_id": oid, "name": o.get("name"), "currency": o.get("currency"),
        "financial_status": o.get("financial_status"), "cancelled_at": o.get("cancelled_at"),
        "source_name": o.get("source_name"), "tags": o.get("tags"), "line_items": items,
    }
    return Event(
        event_id=f"shopify:order:{oid}", source=SOURCE, type="order", time=created,
        identifiers={k: v for k, v in ids.items() if v}, properties=props, amount=total,
        version=str(o.get("updated_at") or ""),
    )


def _customer(c: dict) -> Event:
    cid = require(c, "id", "shopify customer")
    where = f"shopify customer {cid}"
    created = parse_time(require(c, "created_at", where), "created_at", where)
    addr = c.get("default_address") or {}
    ids = {
        "email": _s(c.get("email")), "phone": _s(c.get("phone")) or _s(addr.get("phone")),
        "first_name": _s(c.get("first_name")), "last_name": _s(c.get("last_name")),
        "address": _s(addr.get("address1")), "city": _s(addr.get("city")), "postcode": _s(addr.get("zip")),
        "source_customer_id": f"shopify:{cid}",
    }
    props = {"customer_id": cid, "orders_count": c.get("orders_count"), "total_spent": c.get("total_spent"),
             "accepts_marketing": c.get("accepts_marketing"), "tags": c.get("tags"), "state": c.get("state")}
    return Event(
        event_id=f"shopify:customer:{cid}", source=SOURCE, type="customer_updated", time=created,
        identifiers={k: v for k, v in ids.items() if v}, properties=props, version=str(c.get("updated_at") or ""),
    )


def parse_export(rows: Iterable[Any], topic: str | None = None) -> ExportResult:
    """Many orders or customers (an export file); bad records are rejected with the field at fault."""
    return parse_rows(parse, rows, topic)
