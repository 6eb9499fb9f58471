"""Segment membership: a snapshot of who is in each segment, and a log of who entered and who exited, when.

Written only by the workspace's refresh writer (under its lock), after each refresh and after a segment's rule
changes. Per segment ``cdp/segments/{id}/``:

- ``members.parquet`` — sorted person ids of the latest computation;
- ``changes/{seq:08d}.parquet`` — who entered and exited at computation ``seq`` (``at``, ``person_id``,
  ``change``); the first computation of a segment is its baseline and logs no change;
- ``status.json`` — ``seq``, the inputs it was computed from (data version, rule and referenced rules), its
  count and time, and a bounded history of ``{at, count, entered, exited}``.

A segment is recomputed only when its inputs changed. The order of writes makes a crash harmless: the change file is
named by the next ``seq`` and written first, then the snapshot, then the status; a computation interrupted before
the status is written runs again with the same ``seq`` and overwrites the same change file, so no change is logged
twice and none is lost.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from functions.cdp.common import cdp_key, read_state
from functions.cdp.segment_defs import SegmentDef, list_definitions
from functions.storage import KeyNotFound, Store

__all__ = ["recompute_segments", "read_status", "read_members", "read_changes", "changes_of", "segments_of",
           "MAX_HISTORY", "drop_segment_files"]

MAX_HISTORY = 400
_MEMBERS_CACHE: dict[tuple[int, str], tuple[str, np.ndarray]] = {}


def _seg_key(ws: str, sid: str, *parts: str) -> str:
    return cdp_key(ws, "segments", sid, *parts)


def read_status(store: Store, ws: str, sid: str) -> dict[str, Any] | None:
    """The segment's last computation (None before its first)."""
    try:
        return store.read_json(_seg_key(ws, sid, "status.json"))
    except KeyNotFound:
        return None


def read_members(store: Store, ws: str, sid: str, status: dict[str, Any] | None = None) -> np.ndarray:
    """Sorted person ids in the segment's latest snapshot (cached per process by its computation number)."""
    status = read_status(store, ws, sid) if status is None else status
    if status is None:
        return np.array([], dtype=object)
    token = f"{status.get('seq')}|{status.get('inputs')}"
    key = (id(store), f"{ws}/{sid}")
    hit = _MEMBERS_CACHE.get(key)
    if hit is not None and hit[0] == token:
        return hit[1]
    try:
        ids = store.read_table(_seg_key(ws, sid, "members.parquet"))["person_id"].to_numpy(dtype=object)
    except KeyNotFound:
        ids = np.array([], dtype=object)
    _MEMBERS_CACHE[key] = (token, ids)
    return ids


def read_changes(store: Store, ws: str, sid: str, limit: int = 100, change: str | None = None) -> list[dict]:
    """The newest ``limit`` membership changes (``change``: only "entered" or "exited")."""
    out: list[dict] = []
    for key in reversed(store.list(_seg_key(ws, sid, "changes") + "/")):
        df = store.read_table(key)
        if change:
            df = df[df["change"] == change]
        for r in df.sort_values(["change", "person_id"]).to_dict("records"):
            out.append({"at": r["at"], "person_id": r["person_id"], "change": r["change"]})
            if len(out) >= limit:
                return out
    return out


def changes_of(store: Store, ws: str, person_id: str) -> list[dict]:
    """Every entered/exited change that names ``person_id``, in any segment, newest first."""
    out: list[dict] = []
    for d in list_definitions(store, ws).values():
        for key in store.list(_seg_key(ws, d.id, "changes") + "/"):
            df = store.read_table(key)
            for r in df[df["person_id"] == person_id].to_dict("records"):
                out.append({"segment_id": d.id, "segment": d.name, "change": r["change"],
                            "at": pd.Timestamp(r["at"]).isoformat()})
    return sorted(out, key=lambda r: r["at"], reverse=True)


def segments_of(store: Store, ws: str, person_id: str) -> list[SegmentDef]:
    """The segments the person is in, by their latest snapshots."""
    out = []
    for d in list_definitions(store, ws).values():
        ids = read_members(store, ws, d.id)
        i = np.searchsorted(ids, person_id) if len(ids) else 0
        if len(ids) and i < len(ids) and ids[i] == person_id:
            out.append(d)
    return out


def _inputs(d: SegmentDef, defs: dict[str, SegmentDef], version: str, refs: Callable[[dict], set[str]]) -> str:
    """Hash of everything the membership depends on: the data version, the rule and every rule it refers to."""
    seen: set[str] = set()
    todo = [d.id]
    parts = [version]
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in defs:
            continue
        seen.add(sid)
        parts.append(f"{sid}:{defs[sid].rule_hash}")
        todo.extend(sorted(refs(defs[sid].rules)))
    return hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()[:16]


def _diff(new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Who entered (in ``new`` only) and who exited (in ``old`` only), by hashing (numpy's set operations on
    text compare element by element)."""
    a, b = pd.Index(new, dtype=object), pd.Index(old, dtype=object)
    return (np.asarray(a[~a.isin(b)], dtype=object), np.asarray(b[~b.isin(a)], dtype=object))


def drop_segment_files(store: Store, ws: str, sid: str) -> None:
    """Delete a deleted segment's snapshot, changes and status."""
    for key in store.list(_seg_key(ws, sid) + "/"):
        store.delete(key)


def recompute_segments(store: Store, ws: str, members_of: Callable[[dict[str, Any]], np.ndarray],
                       refs: Callable[[dict], set[str]], only: set[str] | None = None) -> dict[str, Any]:
    """Recompute every segment whose inputs changed (``only``: just these ids); the caller holds the writer's lock.

    ``members_of(rules)`` evaluates a rule on the current data (sorted person ids); ``refs(rules)`` lists the
    segments a rule refers to. Returns what was computed, skipped, and how long it took.
    """
    state = read_state(store, ws)
    if state is None:
        return {"computed": [], "skipped": [], "seconds": 0.0}
    t0 = time.perf_counter()
    defs = list_definitions(store, ws)
    computed, skipped, failed = [], [], {}
    for sid, d in defs.items():
        if only is not None and sid not in only:
            continue
        status = read_status(store, ws, sid)
        inputs = _inputs(d, defs, str(state["version"]), refs)
        if status is not None and status.get("inputs") == inputs:
            skipped.append(sid)
            continue
        try:
            new = np.asarray(members_of(d.rules), dtype=object)
            if len(new) > 1 and not (new[1:] > new[:-1]).all():
                new = np.sort(new)
        except ValueError as e:  # a rule that no longer fits the data (e.g. a field that disappeared)
            failed[sid] = str(e)
            continue
        old = read_members(store, ws, sid, status) if status is not None else None
        at = datetime.now(UTC).isoformat(timespec="seconds")
        seq = int(status.get("seq", 0)) + 1 if status else 1
        entered, exited = _diff(new, old) if old is not None else (np.array([], dtype=object),) * 2
        if len(entered) or len(exited):
            store.write_table(_seg_key(ws, sid, "changes", f"{seq:08d}.parquet"), pd.DataFrame({
                "at": at, "person_id": np.concatenate([entered, exited]).astype(object),
                "change": ["entered"] * len(entered) + ["exited"] * len(exited)}))
        store.write_table(_seg_key(ws, sid, "members.parquet"), pd.DataFrame({"person_id": new}))
        history = list((status or {}).get("history", []))
        history.append({"at": at, "count": int(len(new)), "entered": int(len(entered)), "exited": int(len(exited)),
                        **({"baseline": True} if old is None else {})})
        store.write_json(_seg_key(ws, sid, "status.json"), {
            "seq": seq, "inputs": inputs, "rule_hash": d.rule_hash, "data_version": state["version"],
            "as_of": state.get("as_of"), "count": int(len(new)), "computed_at": at,
            "history": history[-MAX_HISTORY:]})
        computed.append(sid)
    prefix = cdp_key(ws, "segments") + "/"
    for key in store.list(prefix):  # files of deleted segments
        sid, _, rest = key[len(prefix):].partition("/")
        if rest and sid not in defs:
            store.delete(key)
    return {"computed": computed, "skipped": skipped, "failed": failed,
            "seconds": round(time.perf_counter() - t0, 3)}
