"""ReCharge: subscriptions and charges (webhooks ``subscription/*``, ``charge/*`` wrap the object in
``{"subscription": {...}}`` / ``{"charge": {...}}``; exports list the objects).

A subscription becomes one state event (``subscription_created``, its newest revision wins by ``updated_at``)
plus a ``subscription_cancelled`` event when it was cancelled. A charge becomes ``charge_paid`` or
``charge_failed``; charges mirror Shopify orders, so revenue is counted from the orders, not the charges.
ReCharge timestamps without an offset are read as UTC.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from core.cdp.events import Event, parse_time, require
from core.cdp.sources import ExportResult, header, parse_rows

SOURCE = "recharge"
SIGNATURE_SCHEME = "hex SHA-256 of the API client secret followed by the raw body, header X-Recharge-Hmac-Sha256"


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """``X-Recharge-Hmac-Sha256`` = hex SHA-256(client secret + body), ReCharge's webhook validation."""
    got = header(headers, "X-Recharge-Hmac-Sha256")
    if not got or not secret:
        return False
    want = hashlib.sha256(secret.encode() + body).hexdigest()
    return hmac.compare_digest(got.strip().lower(), want)


def _s(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def _money(v: Any, field: str, where: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field '{field}' is not a number: {v!r}") from e


def parse(payload: dict, topic: str | None = None) -> list[Event]:
    """One subscription or charge; the topic (``subscription/...``, ``charge/...``, ``subscriptions``,
    ``charges``) or the wrapper key decides, else the shape (``total_price`` → charge)."""
    if not isinstance(payload, dict):
        raise ValueError("recharge payload must be a JSON object")
    if isinstance(payload.get("subscription"), dict):
        return _subscription(payload["subscription"])
    if isinstance(payload.get("charge"), dict):
        return [_charge(payload["charge"])]
    kind = (topic or "").split("/")[0].rstrip("s")
    if kind == "subscription" or (kind != "charge" and "total_price" not in payload):
        return _subscription(payload)
    return [_charge(payload)]


def _subscription(s: dict) -> list[Event]:
    sid = require(s, "id", "recharge subscription")
    where = f"recharge subscription {sid}"
    cid = require(s, "customer_id", where)
    created = parse_time(require(s, "created_at", where), "created_at", where)
    status = str(require(s, "status", where)).lower()
    price = _money(require(s, "price", where), "price", where)
    freq = s.get("order_interval_frequency") or 30
    unit = str(s.get("order_interval_unit") or "day").lower()
    try:
        interval_days = float(freq) * {"day": 1, "week": 7, "month": 30}.get(unit.rstrip("s"), 1)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field 'order_interval_frequency' is not a number: {freq!r}") from e
    ids = {"email": _s(s.get("email")), "source_customer_id": f"recharge:{cid}"}
    ids = {k: v for k, v in ids.items() if v}
    props = {"subscription_id": sid, "status": status, "price": price, "interval_days": interval_days,
             "product_title": s.get("product_title"), "quantity": s.get("quantity"),
             "cancelled_at": s.get("cancelled_at"), "cancellation_reason": s.get("cancellation_reason")}
    out = [Event(event_id=f"recharge:subscription:{sid}", source=SOURCE, type="subscription_created", time=created,
                 identifiers=ids, properties=props, amount=price, version=str(s.get("updated_at") or ""))]
    if s.get("cancelled_at"):
        ct = parse_time(s["cancelled_at"], "cancelled_at", where)
        out.append(Event(event_id=f"recharge:subscription:{sid}:cancelled", source=SOURCE,
                         type="subscription_cancelled", time=ct, identifiers=ids,
                         properties={"subscription_id": sid, "reason": s.get("cancellation_reason")}))
    return out


def _charge(c: dict) -> Event:
    chid = require(c, "id", "recharge charge")
    where = f"recharge charge {chid}"
    cid = require(c, "customer_id", where)
    status = str(require(c, "status", where)).lower()
    when = c.get("processed_at") or c.get("scheduled_at")
    if not when:
        raise ValueError(f"{where}: missing required field 'processed_at'")
    t = parse_time(when, "processed_at", where)
    total = _money(require(c, "total_price", where), "total_price", where)
    bill = c.get("billing_address") or {}
    ids = {"email": _s(c.get("email")), "first_name": _s(c.get("first_name")), "last_name": _s(c.get("last_name")),
           "phone": _s(bill.get("phone")), "address": _s(bill.get("address1")), "city": _s(bill.get("city")),
           "postcode": _s(bill.get("zip")), "source_customer_id": f"recharge:{cid}"}
    ids = {k: v for k, v in ids.items() if v}
    ok = status in ("success", "paid", "processed")
    return Event(event_id=f"recharge:charge:{chid}", source=SOURCE, type="charge_paid" if ok else "charge_failed",
                 time=t, identifiers=ids,
                 properties={"charge_id": chid, "status": status, "shopify_order_id": c.get("shopify_order_id"),
                             "subscription_id": c.get("subscription_id"), "type": c.get("type")},
                 amount=total, version=str(c.get("updated_at") or ""))


def parse_export(rows: Iterable[Any], topic: str | None = None) -> ExportResult:
    """Many subscriptions or charges; bad records are rejected with the field at fault."""
    return parse_rows(parse, rows, topic)
