"""The single writer of a workspace's derived customer state, and its durable watermark.

Every refresh holds the workspace's lock (:meth:`functions.storage.Store.lock`: an ``flock`` locally, a lease
object with heartbeat on S3; deployed, the ``cdp_refresh`` jobs of a workspace also share one SQS FIFO message
group), so records, clusters, profiles, person-event partitions, search keys, ``state.json`` and the sync-log
summary are only ever written by one process at a time.

The watermark ``cdp/refresh/watermark.json`` lists the event segments whose events are reflected in that state.
A refresh folds in the segments not listed (incrementally, or fully when many arrived), then compacts the folded
partitions and records the resulting keys. Before it writes derived state it marks the watermark ``dirty``; only a
completed refresh clears it. So after a crash, a ``kill -9`` or a failed write at any point, the next refresh —
triggered by any delivery, even a replay that adds nothing, or by a periodic job — sees either unfolded segments
or a dirty mark, and rebuilds what is missing (a dirty mark: everything, from the events).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from core.cdp.events import empty_events
from functions.cdp import eventlog as seglog
from functions.cdp import synclog
from functions.cdp.common import cdp_key, read_state
from functions.cdp.identities import Resolver
from functions.cdp.rebuild import refresh_full, refresh_incremental
from functions.storage import KeyNotFound, LockTimeout, Store

__all__ = ["Watermark", "catch_up", "refresh", "refresh_job", "read_watermark"]

log = logging.getLogger(__name__)

#: above this many pending events (and a fifth of the base) a full rebuild is cheaper than an incremental one
FULL_ABOVE_EVENTS = 50_000


@dataclass
class Watermark:
    """Segments folded into the derived state, and whether a refresh was interrupted while writing it."""

    folded: list[str] = field(default_factory=list)
    dirty: bool = False


def _wm_key(ws: str) -> str:
    return cdp_key(ws, "refresh", "watermark.json")


def read_watermark(store: Store, ws: str) -> Watermark | None:
    """The stored watermark (None before the first refresh of this layout)."""
    try:
        doc = store.read_json(_wm_key(ws))
    except KeyNotFound:
        return None
    return Watermark(folded=list(doc.get("folded", [])), dirty=bool(doc.get("dirty")))


def _write_watermark(store: Store, ws: str, wm: Watermark) -> None:
    store.write_json(_wm_key(ws), asdict(wm))


def catch_up(store: Store, ws: str, resolver: Resolver | None = None, full: bool = False,
             wait: float | None = None) -> dict[str, Any]:
    """Fold every stored event not yet reflected into the derived state (the workspace's single writer).

    Waits up to ``wait`` seconds (``GROWTHLENS_REFRESH_WAIT``, default 120) for another refresh of the workspace;
    if it is still running then, answers ``{"mode": "pending"}``: that refresh or the next one folds these events.
    """
    wait = float(os.environ.get("GROWTHLENS_REFRESH_WAIT", "120")) if wait is None else wait
    try:
        with store.lock(cdp_key(ws, "refresh"), timeout=wait, ttl=120.0):
            return _catch_up_locked(store, ws, resolver, full)
    except LockTimeout:
        return {"mode": "pending", "persons": None, "recomputed": 0,
                "reason": "another refresh of this workspace is running; it or the next one folds these events"}


def _flat(segs: dict[int, list[str]]) -> list[str]:
    return [k for keys in segs.values() for k in keys]


def _catch_up_locked(store: Store, ws: str, resolver: Resolver | None, full: bool) -> dict[str, Any]:
    wm = read_watermark(store, ws)
    segs = seglog.segments(store, ws)
    state = read_state(store, ws)
    folded = set(wm.folded) if wm else set()
    pending = {p: [k for k in keys if k not in folded] for p, keys in segs.items()}
    pending = {p: keys for p, keys in pending.items() if keys}
    n_pending = sum(len(seglog.seg_hashes(store, k)) for keys in pending.values() for k in keys)
    out: dict[str, Any] | None = None
    if not full and wm is not None and not wm.dirty and state is not None:
        if not pending:
            out = {"mode": "none", "persons": int(state.get("persons", 0)), "recomputed": 0, "recomputed_ids": [],
                   "resolved": False, "timings": {}}
        elif n_pending <= max(FULL_ABOVE_EVENTS, int(state.get("events", 0)) // 5):
            changed, new_by_source = _pending_events(store, segs, pending, folded)
            _write_watermark(store, ws, Watermark(sorted(folded), dirty=True))
            out = refresh_incremental(store, ws, changed, new_by_source, resolver)
    if out is None:  # first refresh, an interrupted one, many new events, the day moved, or asked for
        _write_watermark(store, ws, Watermark(sorted(folded), dirty=True))
        out = refresh_full(store, ws, _flat(segs), resolver, full=full)
        pending = segs
    if pending or wm is None or wm.dirty or out["mode"] != "none":
        for p in pending:  # every listed segment of these partitions is folded now: merge the newest
            segs[p] = seglog.compact(store, ws, segs[p])
        _write_watermark(store, ws, Watermark(sorted(_flat(segs)), dirty=False))
    out["folded_events"] = int(n_pending)
    out["log_entries"] = synclog.fold(store, ws)
    out["predictions"] = _update_predictions(store, ws)
    out["segments"] = _recompute_segments(store, ws)
    return out


def _update_predictions(store: Store, ws: str) -> dict[str, Any]:
    """Churn risk, lifetime value and next best action of the persons whose data changed (a failure leaves the
    previous predictions in place; the next refresh tries again)."""
    from functions.cdp.predictions import update_predictions

    try:
        return update_predictions(store, ws)
    except Exception as e:  # noqa: BLE001 - the refresh itself is complete; predictions catch up next time
        log.exception("prediction update failed for %s", ws)
        return {"error": f"{type(e).__name__}: {e}"}


def _recompute_segments(store: Store, ws: str) -> dict[str, Any]:
    """Segments whose inputs changed, recomputed by the writer (a failure here leaves them for the next refresh:
    their inputs still differ from what they were computed on)."""
    from functions.cdp.segment_service import recompute_locked

    try:
        return recompute_locked(store, ws)
    except Exception as e:  # noqa: BLE001 - the refresh itself is complete; segments catch up next time
        log.exception("segment recomputation failed for %s", ws)
        return {"error": f"{type(e).__name__}: {e}"}


def _pending_events(store: Store, segs: dict[int, list[str]], pending: dict[int, list[str]],
                    folded: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The events of the unfolded segments that change the derived state (new events, or revisions newer than
    the folded ones), and how many are new per source."""
    frames: list[pd.DataFrame] = []
    new_by_source: Counter[str] = Counter()
    for p, keys in pending.items():
        fresh = seglog.read_partition(store, keys)
        old = [k for k in segs[p] if k in folded]
        hit = seglog.contains(store, old, seglog.event_hash(fresh["event_id"]))
        keep = ~hit
        is_new = ~hit
        if hit.any():
            stored = seglog.read_partition(store, old, columns=["event_id", "version"])
            prev = fresh.loc[hit, "event_id"].map(stored.set_index("event_id")["version"])
            keep[hit] = (prev.isna() | (fresh.loc[hit, "version"].astype(str) > prev.fillna("").astype(str))
                         ).to_numpy()
            is_new[hit] = prev.isna().to_numpy()  # a hash collision, not a stored event
        frames.append(fresh[keep])
        new_by_source.update(fresh.loc[is_new, "source"].astype(str).tolist())
    changed = pd.concat(frames, ignore_index=True) if frames else empty_events()
    return changed, dict(new_by_source)


def refresh(store: Store, ws: str, changed_ids: Any = None, resolver: Resolver | None = None,
            full: bool = False, changed: pd.DataFrame | None = None) -> dict[str, Any]:
    """Bring the derived state up to date with the stored events (see :func:`catch_up`; ``full`` rebuilds and
    re-resolves everything). ``changed_ids``/``changed`` are accepted for older callers and ignored: the
    watermark knows what is new."""
    return catch_up(store, ws, resolver=resolver, full=full)


def refresh_job(store: Store, ws: str, params: dict[str, Any], progress: Callable[[float, str], None]) -> dict:
    """Job form of :func:`catch_up` (``params``: optional ``full``), run by the job worker off the request path."""
    progress(0.05, "folding new events into identities and profiles")
    out = catch_up(store, ws, full=bool(params.get("full")))
    if out["mode"] == "pending":
        raise RuntimeError(out["reason"])  # retried: a job must not end with events left unfolded
    progress(1.0, f"{out['persons']:,} profiles, {out['recomputed']:,} recomputed")
    return out
