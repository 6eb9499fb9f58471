"""The sync log: what each source delivered, derived from immutable per-delivery entries, never a shared counter.

Every webhook, batch or export file writes one entry of its own (``cdp/sync/{source}/{time}-{rand}.json``; an
export file is named by its content hash instead, so re-running a sync of the same file replaces its entry rather
than counting it twice). The refresh writer folds entries into ``cdp/sync_log.json`` under its lock (recording the
folded keys before deleting them, so a crash between the two folds nothing twice). ``accepted`` is the number of
distinct events of the source in the event store as counted by the last refresh (plus, until a refresh has folded
them, what the newer deliveries reported), and ``duplicates`` is what was delivered beyond that.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.cdp.sources import SOURCES
from functions.cdp.common import MAX_REASONS, cdp_key, read_state
from functions.storage import KeyNotFound, Store

__all__ = ["Delivery", "record_delivery", "fold", "sync_status"]


@dataclass
class Delivery:
    """One delivery's counts (a webhook, a batch or an export file)."""

    source: str
    received: int
    events: int
    accepted: int
    rejected: int
    mode: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    file_id: str | None = None


def _entries_prefix(ws: str) -> str:
    return cdp_key(ws, "sync") + "/"


def record_delivery(store: Store, ws: str, d: Delivery, rejected: list[tuple[int, str]]) -> Delivery:
    """Write the entry of one delivery (its own file: concurrent deliveries never overwrite each other)."""
    d.reasons = [{"time": d.time, "reason": r} for _, r in rejected[:MAX_REASONS]]
    name = f"file-{d.file_id}" if d.file_id else f"{time.time_ns():020d}-{secrets.token_hex(4)}"
    store.write_json(cdp_key(ws, "sync", d.source, f"{name}.json"), asdict(d))
    return d


def _read_summary(store: Store, ws: str) -> dict[str, Any]:
    try:
        doc = store.read_json(cdp_key(ws, "sync_log.json"))
    except KeyNotFound:
        doc = {}
    if doc.get("version") != 2:  # the earlier layout: per-source running totals
        doc = {"version": 2, "folded": [], "files": {}, "sources": {
            s: {"received": v.get("received", 0), "events": v.get("accepted", 0) + v.get("duplicates", 0),
                "rejected": v.get("rejected", 0), "reasons": v.get("reasons", []), "last_sync": v.get("last_sync"),
                "last_mode": v.get("last_mode"), "syncs": v.get("syncs", 0)}
            for s, v in doc.items() if isinstance(v, dict)}}
    return doc


def _add(total: dict[str, Any], e: dict[str, Any]) -> None:
    for k in ("received", "events", "rejected"):
        total[k] = total.get(k, 0) + int(e.get(k, 0))
    total["syncs"] = total.get("syncs", 0) + 1
    total["reasons"] = (list(e.get("reasons", [])) + list(total.get("reasons", [])))[:MAX_REASONS]
    if e.get("time") and (total.get("last_sync") or "") <= e["time"]:
        total["last_sync"], total["last_mode"] = e["time"], e.get("mode")


def _entries(store: Store, ws: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for k in store.list(_entries_prefix(ws)):
        if re.search(r"/sync/[a-z0-9]+/[^/]+\.json$", k):
            try:
                out.append((k, store.read_json(k)))
            except KeyNotFound:  # folded and deleted meanwhile
                continue
    return out


def _apply(doc: dict[str, Any], entries: list[tuple[str, dict[str, Any]]]) -> None:
    for _k, e in entries:
        if e.get("file_id"):
            doc["files"].setdefault(e["source"], {})[e["file_id"]] = e
        else:
            _add(doc["sources"].setdefault(e["source"], {}), e)


def fold(store: Store, ws: str) -> int:
    """Fold the pending entries into the summary (the refresh writer only); returns how many were folded."""
    doc = _read_summary(store, ws)
    entries = _entries(store, ws)
    folded = set(doc["folded"])
    new = [(k, e) for k, e in entries if k not in folded]
    if not new and not entries:
        return 0
    _apply(doc, new)
    doc["folded"] = [k for k, _ in entries]
    store.write_json(cdp_key(ws, "sync_log.json"), doc)
    for k, _ in entries:
        store.delete(k)
    return len(new)


def sync_status(store: Store, ws: str) -> dict[str, Any]:
    """Per-source sync log (summary plus deliveries not folded yet) and the size of the unified customer base."""
    doc = _read_summary(store, ws)
    pending = [(k, e) for k, e in _entries(store, ws) if k not in set(doc["folded"])]
    _apply(doc, pending)
    state = read_state(store, ws)
    stored = (state or {}).get("sources") or {}
    pending_accepted: dict[str, int] = {}
    for _k, e in pending:
        pending_accepted[e["source"]] = pending_accepted.get(e["source"], 0) + int(e.get("accepted", 0))
    sources = []
    for name in SOURCES:
        total: dict[str, Any] = dict(doc["sources"].get(name, {}))
        for e in doc["files"].get(name, {}).values():
            _add(total, e)
        connected = bool(total)
        accepted = int(stored.get(name, 0)) + pending_accepted.get(name, 0)
        events = int(total.get("events", 0))
        sources.append({"source": name, "connected": connected, "received": int(total.get("received", 0)),
                        "events": events, "accepted": accepted, "duplicates": max(0, events - accepted),
                        "rejected": int(total.get("rejected", 0)), "reasons": total.get("reasons", []),
                        "last_sync": total.get("last_sync"), "last_mode": total.get("last_mode"),
                        "syncs": int(total.get("syncs", 0)), "pending": pending_accepted.get(name, 0) > 0})
    return {"sources": sources, "profiles": state}
