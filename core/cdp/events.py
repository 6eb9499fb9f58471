"""The canonical customer event: what every source adapter (Shopify, Klaviyo, GA4, Gorgias, ReCharge) emits.

An :class:`Event` is one thing a person did or one state a tool reported (an order, an email open, a page view, a
support ticket, a subscription change), with the identifiers the tool knew at that moment. Events are flattened to a
table with one column per identifier (:data:`EVENT_COLUMNS`) so that storage, identity resolution and profiles work
on plain DataFrames.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Event",
    "IDENTIFIER_FIELDS",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "events_to_frame",
    "empty_events",
    "parse_time",
    "require",
]

# identifiers a source may know about the person behind an event
IDENTIFIER_FIELDS: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "address",
    "city",
    "postcode",
    "source_customer_id",  # namespaced "<source>:<native id>", e.g. "shopify:7012345678901"
    "anonymous_id",  # a device/browser id, e.g. GA4 client id, namespaced "ga4:<user_pseudo_id>"
)

_ID_SET = frozenset(IDENTIFIER_FIELDS)

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "source",
    "type",
    "time",
    *IDENTIFIER_FIELDS,
    "properties",
    "amount",
    "version",
)

# event types every adapter maps its native names to (profiles rely on these)
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "order",  # a completed purchase (amount = order total)
        "customer_updated",  # a customer/profile record created or changed
        "email_received",
        "email_opened",
        "email_clicked",
        "email_unsubscribed",
        "review_submitted",
        "friend_referred",
        "page_view",
        "product_viewed",
        "added_to_cart",
        "checkout_started",
        "web_purchase",  # analytics-side purchase (not counted in revenue: the order is)
        "login",
        "web_event",  # any other analytics event
        "ticket_created",
        "ticket_message",
        "subscription_created",
        "subscription_updated",
        "subscription_cancelled",
        "charge_paid",
        "charge_failed",
        "other",  # a source event with no canonical meaning (kept for the timeline)
    }
)


@dataclass(frozen=True)
class Event:
    """One canonical event. ``time`` is a timezone-aware UTC datetime; ``identifiers`` maps names of
    :data:`IDENTIFIER_FIELDS` to strings; ``version`` orders revisions of the same event (e.g. an order's
    ``updated_at``) so that the newest revision wins whatever the delivery order."""

    event_id: str
    source: str
    type: str
    time: datetime
    identifiers: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    amount: float | None = None
    version: str = ""

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"event {self.event_id}: unknown event type {self.type!r}")
        if not self.identifiers.keys() <= _ID_SET:
            unknown = set(self.identifiers) - _ID_SET
            raise ValueError(f"event {self.event_id}: unknown identifier field(s) {sorted(unknown)}")


def require(obj: Any, path: str, where: str) -> Any:
    """Return ``obj[a][b]...`` for ``path`` "a.b"; a clear ``ValueError`` naming the missing field otherwise."""
    cur = obj
    walked = []
    for part in path.split("."):
        walked.append(part)
        if not isinstance(cur, dict) or cur.get(part) in (None, ""):
            raise ValueError(f"{where}: missing required field '{'.'.join(walked)}'")
        cur = cur[part]
    return cur


def parse_time(value: Any, field_name: str, where: str) -> datetime:
    """Parse an ISO-8601 string, epoch seconds or epoch microseconds (values > 1e14) to a UTC datetime."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            secs = float(value) / 1e6 if float(value) > 1e14 else float(value)
            return datetime.fromtimestamp(secs, tz=UTC)
        if isinstance(value, str) and value.strip():
            s = value.strip()
            if s.isdigit():
                return parse_time(int(s), field_name, where)
            try:  # fast path: ISO 8601 (Python 3.11 reads "Z" and offsets)
                dt = datetime.fromisoformat(s)
                return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
            except ValueError:
                pass
            ts = pd.Timestamp(s.replace("Z", "+00:00"))
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            return ts.to_pydatetime()
    except (ValueError, OverflowError, OSError) as e:
        raise ValueError(f"{where}: field '{field_name}' is not a valid time: {value!r}") from e
    raise ValueError(f"{where}: field '{field_name}' is not a valid time: {value!r}")


def empty_events() -> pd.DataFrame:
    """An empty events table with the canonical columns and dtypes."""
    df = pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})
    df["time"] = pd.Series(dtype="datetime64[us, UTC]")
    df["amount"] = pd.Series(dtype="float64")
    return df


def events_to_frame(events: list[Event]) -> pd.DataFrame:
    """Flatten events to the canonical table (one identifier per column, properties as JSON text)."""
    if not events:
        return empty_events()
    cols: dict[str, list[Any]] = {c: [] for c in EVENT_COLUMNS}
    for e in events:
        cols["event_id"].append(e.event_id)
        cols["source"].append(e.source)
        cols["type"].append(e.type)
        cols["time"].append(e.time)
        for f in IDENTIFIER_FIELDS:
            v = e.identifiers.get(f)
            cols[f].append(str(v) if v not in (None, "") else None)
        cols["properties"].append(json.dumps(e.properties, separators=(",", ":"), sort_keys=True, default=str))
        cols["amount"].append(np.nan if e.amount is None else float(e.amount))
        cols["version"].append(e.version or "")
    df = pd.DataFrame(cols)
    df["time"] = pd.to_datetime(df["time"], utc=True).astype("datetime64[us, UTC]")
    df["amount"] = df["amount"].astype("float64")
    return df


def stable_id(*parts: Any) -> str:
    """A short deterministic hash of the parts (used for ids that sources do not provide)."""
    h = hashlib.sha1("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()
    return h[:16]
