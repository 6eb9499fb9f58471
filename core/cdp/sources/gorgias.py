"""Gorgias: support tickets and their messages (ticket webhooks ``{"ticket": {...}}`` or ticket exports).

A ticket becomes a ``ticket_created`` event plus one ``ticket_message`` event per message, so repeated replies
and refund requests show on the customer's timeline. Identifiers: the ticket customer's email, name and Gorgias
id (``gorgias:<id>``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from core.cdp.events import Event, parse_time, require
from core.cdp.sources import ExportResult, header, parse_rows

SOURCE = "gorgias"
SIGNATURE_SCHEME = ("hex HMAC-SHA256 of the raw body with the integration's secret, header X-Gorgias-Signature "
                    "(optionally prefixed 'sha256='); Gorgias HTTP integrations send it through a signing relay")


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """``X-Gorgias-Signature`` = hex HMAC-SHA256(secret, body), optionally prefixed ``sha256=``."""
    got = header(headers, "X-Gorgias-Signature")
    if not got or not secret:
        return False
    got = got.strip().lower().removeprefix("sha256=")
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(got, want)


def _s(v: Any) -> str | None:
    return None if v in (None, "") else str(v)


def parse(payload: dict, topic: str | None = None) -> list[Event]:
    """One ticket (bare or wrapped in ``ticket``)."""
    if not isinstance(payload, dict):
        raise ValueError("gorgias payload must be a JSON object")
    t = payload.get("ticket", payload)
    if not isinstance(t, dict):
        raise ValueError("gorgias payload: field 'ticket' must be an object")
    tid = require(t, "id", "gorgias ticket")
    where = f"gorgias ticket {tid}"
    created = parse_time(require(t, "created_datetime", where), "created_datetime", where)
    cust = t.get("customer")
    if not isinstance(cust, dict) or not (cust.get("email") or cust.get("id")):
        raise ValueError(f"{where}: missing required field 'customer.email'")
    first, last = _s(cust.get("firstname")), _s(cust.get("lastname"))
    if not (first or last) and cust.get("name"):
        parts = str(cust["name"]).split()
        first, last = parts[0], " ".join(parts[1:]) or None
    ids = {"email": _s(cust.get("email")), "first_name": first, "last_name": last,
           "source_customer_id": f"gorgias:{cust['id']}" if cust.get("id") else None}
    ids = {k: v for k, v in ids.items() if v}
    tags = [g.get("name") if isinstance(g, dict) else str(g) for g in t.get("tags") or []]
    msgs = t.get("messages") or []
    if not isinstance(msgs, list):
        raise ValueError(f"{where}: field 'messages' must be a list")
    out = [Event(event_id=f"gorgias:ticket:{tid}", source=SOURCE, type="ticket_created", time=created,
                 identifiers=ids,
                 properties={"ticket_id": tid, "subject": t.get("subject"), "status": t.get("status"),
                             "channel": t.get("channel"), "tags": tags, "messages": len(msgs)},
                 version=str(t.get("updated_datetime") or ""))]
    for k, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise ValueError(f"{where}: field 'messages[{k}]' must be an object")
        mid = require(m, "id", f"{where} messages[{k}]")
        mt = parse_time(require(m, "created_datetime", f"{where} messages[{k}]"),
                        f"messages[{k}].created_datetime", where)
        out.append(Event(event_id=f"gorgias:message:{mid}", source=SOURCE, type="ticket_message", time=mt,
                         identifiers=ids,
                         properties={"ticket_id": tid, "from_agent": bool(m.get("from_agent")),
                                     "text": (m.get("body_text") or "")[:500]}))
    return out


def parse_export(rows: Iterable[Any], topic: str | None = None) -> ExportResult:
    """Many tickets; bad ones are rejected with the field at fault."""
    return parse_rows(parse, rows, topic)
