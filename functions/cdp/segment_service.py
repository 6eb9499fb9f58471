"""Segments as a service: validate and save definitions, preview a rule, and keep every segment's membership
current. Routers and the refresh writer call this; it joins :mod:`functions.cdp.segment_defs` (definitions),
:mod:`functions.cdp.segment_engine` (evaluation) and :mod:`functions.cdp.membership` (snapshots and changes).

Membership is written only under the workspace's refresh lock: after every refresh (by the writer itself) and after
a definition changes (inline when the lock is free within a few seconds; otherwise the running refresh, or the next,
recomputes it — a segment whose rule changed is always recomputed because its inputs hash changed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from core.cdp.segments import parse_rule
from functions.cdp import membership
from functions.cdp.common import cdp_key
from functions.cdp.segment_defs import SegmentDef, list_definitions, refs
from functions.cdp.segment_engine import engine_for
from functions.storage import LockTimeout, Store

__all__ = ["validator", "lookup_for", "preview", "recompute", "recompute_locked", "segment_json"]

log = logging.getLogger(__name__)


def lookup_for(store: Store, ws: str) -> Callable[[str], Any]:
    """Rule of a saved segment by id (None when unknown), for segment references."""
    defs = list_definitions(store, ws)
    return lambda sid: defs[sid].rules if sid in defs else None


def validator(store: Store, ws: str) -> Callable[[Any, Callable[[str], Any]], Any]:
    """Checks a rule against the workspace's fields (``ValueError`` naming the path)."""
    eng = engine_for(store, ws)

    def check(rules: Any, lookup: Callable[[str], Any]) -> Any:
        try:
            eng.sync()
            columns = eng.columns
        except LookupError:
            columns = None  # no customer data yet: check against every known field
        return parse_rule(rules, columns=columns, lookup=lookup)

    return check


def preview(store: Store, ws: str, rules: Any, sample: int = 20) -> dict[str, Any]:
    """Size, value and a sample of the customers ``rules`` selects now."""
    return engine_for(store, ws).preview(rules, lookup_for(store, ws), sample=sample).to_json()


def recompute_locked(store: Store, ws: str, only: set[str] | None = None) -> dict[str, Any]:
    """Recompute changed segments; the caller holds the workspace's refresh lock."""
    eng = engine_for(store, ws)
    lookup = lookup_for(store, ws)
    try:
        eng.sync()
    except LookupError:
        return {"computed": [], "skipped": [], "failed": {}, "seconds": 0.0}
    return membership.recompute_segments(store, ws, lambda rules: eng.members(rules, lookup), refs, only=only)


def recompute(store: Store, ws: str, only: set[str] | None = None, wait: float = 5.0) -> dict[str, Any]:
    """Recompute changed segments under the workspace's lock, waiting at most ``wait`` seconds for it; when a
    refresh holds it, that refresh (or the next) recomputes them: ``{"pending": true}``."""
    try:
        with store.lock(cdp_key(ws, "refresh"), timeout=wait, ttl=120.0):
            return recompute_locked(store, ws, only)
    except LockTimeout:
        return {"pending": True, "computed": [], "skipped": [], "failed": {}, "seconds": 0.0}


def segment_json(store: Store, ws: str, d: SegmentDef, history: bool = False) -> dict[str, Any]:
    """A segment as the API shows it: definition, size, trend and the last computation's changes."""
    st = membership.read_status(store, ws, d.id) or {}
    hist = st.get("history", [])
    last = hist[-1] if hist else {}
    out = {**d.to_json(), "count": st.get("count"), "computed_at": st.get("computed_at"),
           "data_version": st.get("data_version"), "current": st.get("rule_hash") == d.rule_hash,
           "trend": [{"at": h["at"], "count": h["count"]} for h in hist[-30:]],
           "entered_last": last.get("entered"), "exited_last": last.get("exited")}
    if history:
        out["history"] = hist
    return out
