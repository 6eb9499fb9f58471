"""The append-only event log of a workspace: ``cdp/events/part-XX/seg-<time>-<rand>.parquet``.

An event partition (16, by a 64-bit hash of the event id) is a list of immutable segments, oldest first. Any
process may append a segment (a webhook, a batch, an export chunk); only the refresh writer
(:mod:`functions.cdp.refresh`) compacts, after it has folded the segments in, so a segment never disappears under
a writer that has not seen it. Each segment carries ``h``, the id hashes, and the sorted hashes of each segment are
cached per process, so telling new events from stored ones reads no events. Reading a partition keeps, per event
id, the greatest version (ties: the earliest write).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from core.cdp.eventlog import MAX_SEGMENTS, compaction_groups, event_hash, in_sorted, latest_revisions
from core.cdp.events import EVENT_COLUMNS, empty_events
from functions.cdp.common import N_PARTS, cdp_key
from functions.storage import KeyNotFound, Store

__all__ = ["segments", "append_segment", "read_partition", "compact", "event_segments", "iter_event_partitions",
           "load_events", "seg_hashes", "SegmentMoved", "MAX_SEGMENTS", "event_hash"]

_SEG_H: dict[tuple[int, str], np.ndarray] = {}


class SegmentMoved(LookupError):
    """A listed segment was compacted away before it was read: list again."""


def _seg_key(ws: str, p: int) -> str:
    return cdp_key(ws, "events", f"part-{p:02d}", f"seg-{time.time_ns():020d}-{secrets.token_hex(3)}.parquet")


def segments(store: Store, ws: str) -> dict[int, list[str]]:
    """Segment keys of every event partition, oldest first (migrating a pre-segment store on first sight)."""
    keys = store.list(cdp_key(ws, "events") + "/")
    legacy = [k for k in keys if re.fullmatch(r".*/events/part-\d\d\.parquet", k)]
    if legacy:
        _migrate_legacy(store, ws, legacy)
        keys = store.list(cdp_key(ws, "events") + "/")
    out: dict[int, list[str]] = {}
    for k in keys:
        m = re.search(r"/events/part-(\d+)/seg-[^/]+\.parquet$", k)
        if m:
            out.setdefault(int(m.group(1)), []).append(k)
    return {p: sorted(v) for p, v in sorted(out.items())}


def _migrate_legacy(store: Store, ws: str, legacy: list[str]) -> None:
    """Stores written before segments had one file per partition: move their events into segments (written
    before the old files are removed, so a crash loses nothing)."""
    frames = [f for f in (store.read_table(k) for k in legacy) if len(f)]
    if frames:
        df = pd.concat(frames, ignore_index=True)[list(EVENT_COLUMNS)]
        h = event_hash(df["event_id"])
        parts = (h % np.uint64(N_PARTS)).astype(int)
        for p in np.unique(parts):
            sel = parts == p
            append_segment(store, ws, int(p), df[sel], h[sel])
    for k in legacy:
        store.delete(k)


def append_segment(store: Store, ws: str, p: int, df: pd.DataFrame, h: np.ndarray, key: str | None = None) -> str:
    """Write ``df`` (events of partition ``p``, id hashes ``h``) as a new immutable segment; returns its key."""
    key = key or _seg_key(ws, p)
    order = np.argsort(df["event_id"].to_numpy(dtype=object), kind="stable")
    out = df.iloc[order][list(EVENT_COLUMNS)].reset_index(drop=True)
    out["h"] = h[order]
    store.write_table(key, out)
    _SEG_H[(id(store), key)] = np.sort(h)
    return key


def seg_hashes(store: Store, key: str) -> np.ndarray:
    """Sorted id hashes of a segment (cached per process: segments are immutable)."""
    ck = (id(store), key)
    hit = _SEG_H.get(ck)
    if hit is None:
        try:
            t = store.read_table(key, columns=["h"])
        except KeyNotFound as e:
            raise SegmentMoved(key) from e
        hit = np.sort(t["h"].to_numpy(dtype=np.uint64)) if "h" in t else np.empty(0, np.uint64)
        _SEG_H[ck] = hit
    return hit


def contains(store: Store, keys: list[str], h: np.ndarray) -> np.ndarray:
    """Whether each hash of ``h`` is in any of the segments ``keys``."""
    hit = np.zeros(len(h), dtype=bool)
    for k in keys:
        hit |= in_sorted(h, seg_hashes(store, k))
    return hit


def read_partition(store: Store, keys: list[str], columns: list[str] | None = None,
                   with_hash: bool = False) -> pd.DataFrame:
    """One event partition from its segments: per event id, the greatest version (ties: the earliest write).
    ``with_hash`` keeps the stored id hashes (column ``h``). Raises :class:`SegmentMoved` when a segment was
    compacted away meanwhile."""
    cols = None if columns is None else list(dict.fromkeys(["event_id", "version", *columns]))
    frames = []
    for k in keys:
        try:
            f = store.read_table(k, columns=cols)
        except KeyNotFound as e:
            raise SegmentMoved(k) from e
        if len(f):
            frames.append(f)
    if not frames:
        out = empty_events()
        return out if columns is None else out[cols]
    df = frames[0] if len(frames) == 1 else latest_revisions(pd.concat(frames, ignore_index=True))
    if not with_hash:
        df = df.drop(columns=[c for c in ("h",) if c in df])
    return df if columns is None else df[[c for c in cols if c in df]]


def compact(store: Store, ws: str, keys: list[str]) -> list[str]:
    """Merge one partition's segments as :func:`core.cdp.eventlog.compaction_groups` plans; returns the keys
    afterwards. Only the refresh writer calls this, on segments it has folded in; each merged file is written
    before the ones it replaces are deleted, so a crash leaves duplicates (dropped on read), never a loss."""
    groups = compaction_groups([len(seg_hashes(store, k)) for k in keys], MAX_SEGMENTS)
    if not groups:
        return keys
    out: list[str] = []
    done = 0
    for a, b in groups:
        out.extend(keys[done:a])
        out.append(_merge(store, ws, keys[a:b]))
        done = b
    return [*out, *keys[done:]]


def _merge(store: Store, ws: str, run: list[str]) -> str:
    merged = read_partition(store, run, with_hash=True)
    stored_h = merged.pop("h") if "h" in merged else None
    h = stored_h.to_numpy(np.uint64) if stored_h is not None and stored_h.notna().all() else event_hash(
        merged["event_id"])
    # named after the run's oldest segment, so it sorts where the run was ("-m" sorts before ".parquet")
    new_key = re.sub(r"(/seg-\d+-[0-9a-f]+)(-m[0-9a-f]*)?\.parquet$", rf"\1-m{secrets.token_hex(3)}.parquet", run[0])
    append_segment(store, ws, 0, merged, h, key=new_key)
    for k in run:
        store.delete(k)
        _SEG_H.pop((id(store), k), None)
    return new_key


def event_segments(store: Store, ws: str) -> list[str]:
    """Keys of every stored event segment (for engines that scan Parquet files, e.g. DuckDB)."""
    return [k for keys in segments(store, ws).values() for k in keys]


def iter_event_partitions(store: Store, ws: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Stored events one partition at a time (bounded memory)."""
    for keys in segments(store, ws).values():
        df = read_partition(store, keys, columns)
        if len(df):
            yield df


def load_events(store: Store, ws: str) -> pd.DataFrame:
    """Every stored event as one table; for small bases and tests (large ones: :func:`iter_event_partitions`)."""
    frames = list(iter_event_partitions(store, ws))
    return pd.concat(frames, ignore_index=True) if frames else empty_events()
