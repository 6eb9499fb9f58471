"""Klaviyo: profiles and events (email opens and clicks, reviews and referrals pushed by connected apps).

Accepted shapes: a JSON:API object (``{"type": "event", "id", "attributes", "relationships"}`` with the metric and
profile in ``included``), a ``{"data": [...], "included": [...]}`` page, a flattened export record with ``metric``
and ``profile`` objects next to ``attributes``, and a profile object (``{"type": "profile", ...}``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from core.cdp.events import Event, parse_time, require
from core.cdp.sources import ExportResult, header, parse_rows

SOURCE = "klaviyo"
SIGNATURE_SCHEME = ("hex HMAC-SHA256 of the raw body followed by the Klaviyo-Timestamp header value, with the "
                    "webhook's secret, header Klaviyo-Signature (Klaviyo system webhooks)")

METRICS: dict[str, str] = {
    "received email": "email_received",
    "opened email": "email_opened",
    "clicked email": "email_clicked",
    "unsubscribed": "email_unsubscribed",
    "unsubscribed from email marketing": "email_unsubscribed",
    "submitted review": "review_submitted",
    "referred friend": "friend_referred",
}


TIMESTAMP_HEADER = "Klaviyo-Timestamp"  # Unix seconds; a webhook route refuses a stale one (replays)


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """``Klaviyo-Signature`` = hex HMAC-SHA256(secret, body + Klaviyo-Timestamp)."""
    got = header(headers, "Klaviyo-Signature")
    ts = header(headers, "Klaviyo-Timestamp") or ""
    if not got or not secret:
        return False
    want = hmac.new(secret.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(got.strip().lower(), want)


def _s(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def _included(payload: dict) -> dict[tuple[str, str], dict]:
    out = {}
    for inc in payload.get("included") or []:
        if isinstance(inc, dict) and inc.get("type") and inc.get("id"):
            out[(inc["type"], str(inc["id"]))] = inc
    return out


def parse(payload: dict, topic: str | None = None) -> list[Event]:
    """One event or profile, or a ``data`` page of them."""
    if not isinstance(payload, dict):
        raise ValueError("klaviyo payload must be a JSON object")
    if "data" in payload:
        data = payload["data"]
        inc = _included(payload)
        items = data if isinstance(data, list) else [data]
        out: list[Event] = []
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                raise ValueError(f"klaviyo payload: field 'data[{k}]' must be an object")
            out.extend(_one(item, topic, inc))
        return out
    return _one(payload, topic, {})


def _one(obj: dict, topic: str | None, inc: dict[tuple[str, str], dict]) -> list[Event]:
    kind = obj.get("type") or ("profile" if (topic or "").startswith("profile") else "event")
    if kind == "profile":
        return [_profile(obj)]
    if kind != "event":
        raise ValueError(f"klaviyo record: field 'type' must be 'event' or 'profile', got {kind!r}")
    return [_event(obj, inc)]


def _profile_ids(p: dict) -> dict[str, str]:
    attrs = p.get("attributes") if isinstance(p.get("attributes"), dict) else p
    loc = attrs.get("location") or {}
    ids = {
        "email": _s(attrs.get("email")), "phone": _s(attrs.get("phone_number")),
        "first_name": _s(attrs.get("first_name")), "last_name": _s(attrs.get("last_name")),
        "address": _s(loc.get("address1")), "city": _s(loc.get("city")), "postcode": _s(loc.get("zip")),
        "source_customer_id": f"klaviyo:{p['id']}" if p.get("id") else None,
    }
    return {k: v for k, v in ids.items() if v}


def _profile(p: dict) -> Event:
    pid = require(p, "id", "klaviyo profile")
    where = f"klaviyo profile {pid}"
    attrs = p.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise ValueError(f"{where}: field 'attributes' must be an object")
    ids = _profile_ids(p)
    if not (ids.get("email") or ids.get("phone")):
        raise ValueError(f"{where}: missing required field 'attributes.email' (or 'attributes.phone_number')")
    created = parse_time(require(attrs, "created", where), "attributes.created", where)
    return Event(event_id=f"klaviyo:profile:{pid}", source=SOURCE, type="customer_updated", time=created,
                 identifiers=ids, properties={"profile_id": pid, "properties": attrs.get("properties") or {}},
                 version=str(attrs.get("updated") or ""))


def _event(e: dict, inc: dict[tuple[str, str], dict]) -> Event:
    eid = require(e, "id", "klaviyo event")
    where = f"klaviyo event {eid}"
    attrs = e.get("attributes")
    if not isinstance(attrs, dict):
        raise ValueError(f"{where}: missing required field 'attributes'")
    if attrs.get("datetime"):
        t = parse_time(attrs["datetime"], "attributes.datetime", where)
    elif attrs.get("timestamp") is not None:
        t = parse_time(attrs["timestamp"], "attributes.timestamp", where)
    else:
        raise ValueError(f"{where}: missing required field 'attributes.datetime'")
    rel = e.get("relationships") or {}
    metric = e.get("metric") or attrs.get("metric")
    if not metric and rel.get("metric"):
        ref = (rel["metric"] or {}).get("data") or {}
        metric = inc.get(("metric", str(ref.get("id"))))
    profile = e.get("profile") or attrs.get("profile")
    if not profile and rel.get("profile"):
        ref = (rel["profile"] or {}).get("data") or {}
        profile = inc.get(("profile", str(ref.get("id")))) or {"id": ref.get("id")}
    if not isinstance(metric, dict):
        raise ValueError(f"{where}: missing required field 'metric' (name of the metric)")
    name = metric.get("name") or (metric.get("attributes") or {}).get("name")
    if not name:
        raise ValueError(f"{where}: missing required field 'metric.name'")
    if not isinstance(profile, dict) or not (profile.get("id") or profile.get("email")):
        raise ValueError(f"{where}: missing required field 'profile' (id or email)")
    ids = _profile_ids(profile)
    props = {"metric": name, **{k: v for k, v in (attrs.get("event_properties") or {}).items()}}
    return Event(event_id=f"klaviyo:event:{eid}", source=SOURCE, type=METRICS.get(name.strip().lower(), "other"),
                 time=t, identifiers=ids, properties=props)


def parse_export(rows: Iterable[Any], topic: str | None = None) -> ExportResult:
    """Many events or profiles; bad records are rejected with the field at fault."""
    return parse_rows(parse, rows, topic)
