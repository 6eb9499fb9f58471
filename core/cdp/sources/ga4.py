"""Google Analytics 4: web events, from the BigQuery export (one row per event) or Measurement-Protocol-style
payloads (``{"client_id", "user_id", "timestamp_micros", "events": [{"name", "params"}]}``).

Identifiers: the browser's ``user_pseudo_id``/``client_id`` (``ga4:<id>``, an anonymous id) and, once the visitor
logs in or checks out, ``user_id``. The store sets GA4's ``user_id`` to the Shopify customer id (the usual
setup), so it becomes ``shopify:<user_id>`` and ties the anonymous history to the customer.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from core.cdp.events import Event, parse_time, require, stable_id
from core.cdp.sources import ExportResult, header, parse_rows

SOURCE = "ga4"
USER_ID_NAMESPACE = "shopify"
SIGNATURE_SCHEME = ("Measurement-Protocol style: the stream's API secret in the api_secret query parameter "
                    "(or an X-GA4-Api-Secret header)")

EVENT_NAMES: dict[str, str] = {
    "page_view": "page_view",
    "view_item": "product_viewed",
    "add_to_cart": "added_to_cart",
    "begin_checkout": "checkout_started",
    "purchase": "web_purchase",
    "login": "login",
}


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """The Measurement Protocol authenticates with an API secret; it arrives as ``api_secret`` (the API passes
    query parameters alongside the headers) or the ``X-GA4-Api-Secret`` header."""
    got = header(headers, "api_secret") or header(headers, "X-GA4-Api-Secret")
    return bool(got and secret) and hmac.compare_digest(got.strip(), secret)


def _params(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    out: dict[str, Any] = {}
    for p in raw or []:
        if isinstance(p, dict) and "key" in p:
            v = p.get("value") or {}
            out[p["key"]] = next((v[k] for k in ("string_value", "int_value", "double_value", "float_value")
                                  if v.get(k) is not None), None)
    return out


def parse(payload: dict, topic: str | None = None, received_at: datetime | None = None) -> list[Event]:
    """A BigQuery export row (has ``event_name``) or a Measurement Protocol payload (has ``events``)."""
    if not isinstance(payload, dict):
        raise ValueError("ga4 payload must be a JSON object")
    if "events" in payload:
        return _mp(payload, received_at)
    return [_row(payload)]


def _ids(pseudo: Any, user_id: Any) -> dict[str, str]:
    ids = {"anonymous_id": f"ga4:{pseudo}"}
    if user_id not in (None, ""):
        ids["source_customer_id"] = f"{USER_ID_NAMESPACE}:{user_id}"
    return ids


def _row(r: dict) -> Event:
    name = require(r, "event_name", "ga4 event")
    ts = require(r, "event_timestamp", f"ga4 {name} event")
    pseudo = require(r, "user_pseudo_id", f"ga4 {name} event at {ts}")
    where = f"ga4 {name} event of {pseudo}"
    try:
        ts_int = int(ts)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: field 'event_timestamp' must be integer microseconds, got {ts!r}") from e
    t = parse_time(ts_int, "event_timestamp", where) if ts_int > 1e14 else None
    if t is None:
        raise ValueError(f"{where}: field 'event_timestamp' must be microseconds since 1970, got {ts!r}")
    params = _params(r.get("event_params"))
    ecommerce = r.get("ecommerce") or {}
    props = {"event_name": name, "page_location": params.get("page_location"),
             "session_id": params.get("ga_session_id"),
             "items": [i.get("item_name") for i in r.get("items") or [] if isinstance(i, dict)]}
    if ecommerce:
        props["transaction_id"] = ecommerce.get("transaction_id")
        props["revenue"] = ecommerce.get("purchase_revenue")
    eid = stable_id(pseudo, ts_int, name, params.get("ga_session_id"))
    return Event(event_id=f"ga4:{eid}", source=SOURCE, type=EVENT_NAMES.get(name, "web_event"), time=t,
                 identifiers=_ids(pseudo, r.get("user_id")), properties=props)


def _mp(p: dict, received_at: datetime | None) -> list[Event]:
    client = require(p, "client_id", "ga4 measurement protocol payload")
    where = f"ga4 payload of client {client}"
    events = p.get("events")
    if not isinstance(events, list) or not events:
        raise ValueError(f"{where}: field 'events' must be a non-empty list")
    base_ts = p.get("timestamp_micros")
    out = []
    for k, ev in enumerate(events):
        if not isinstance(ev, dict) or not ev.get("name"):
            raise ValueError(f"{where}: missing required field 'events[{k}].name'")
        ts = ev.get("timestamp_micros", base_ts)
        if ts is not None:
            t = parse_time(int(ts), f"events[{k}].timestamp_micros", where)
        else:
            t = received_at or datetime.now(UTC)
        params = _params(ev.get("params"))
        eid = stable_id(client, ts, ev["name"], json.dumps(params, sort_keys=True, default=str),
                        None if ts is not None else t.isoformat())
        out.append(Event(event_id=f"ga4:{eid}", source=SOURCE, type=EVENT_NAMES.get(ev["name"], "web_event"),
                         time=t, identifiers=_ids(client, p.get("user_id")),
                         properties={"event_name": ev["name"], **params}))
    return out


def parse_export(rows: Iterable[Any], topic: str | None = None) -> ExportResult:
    """Rows of the BigQuery export; bad rows are rejected with the field at fault."""
    return parse_rows(parse, rows, topic)
