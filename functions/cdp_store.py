"""Customer data in the store: events (idempotent), the sync log, person records, clusters, profiles and the
customer search index.

Layout under ``workspaces/{ws}/cdp/``:

- ``events/part-XX.parquet``: canonical events in 16 partitions by a hash of ``event_id``. Writing an event that is
  already stored keeps one row per ``event_id``: the revision with the greatest ``version`` (e.g. an order's
  ``updated_at``) wins, ties keep the stored one, so replays and out-of-order deliveries give the same table.
- ``sync_log.json``: per source, records received, events accepted, duplicates, rejected (with the latest reasons)
  and the last sync time.
- ``records.parquet``, ``clusters.parquet`` (record_id → person_id), ``merges.parquet`` (why records were merged).
- ``profiles.parquet``: one row per person; ``person_events/part-XX.parquet``: events with their person id,
  partitioned by person so that a profile page reads one partition.
- ``search.parquet``: sorted search keys (normalised email, names, phone digits, ids) → person id.

Every file is written atomically by the store. After events arrive, :func:`refresh` re-resolves identities when
new records appeared (passing the previous clusters so person ids stay stable) and recomputes only the profiles of
the persons touched.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.cdp.events import EVENT_COLUMNS, Event, empty_events, events_to_frame
from core.cdp.profiles import compute_profiles, timeline, touched_persons, update_profiles
from core.cdp.records import RECORD_COLUMNS, build_records, record_keys
from core.cdp.sources import SOURCES, adapter, iter_row_chunks, parse_rows, read_rows
from functions.cdp_bulk import build_records as bulk_records
from functions.cdp_bulk import connect, local_files, split_by_person
from functions.storage import KeyNotFound, Store, ws_key

__all__ = [
    "N_PARTS",
    "ingest_events",
    "ingest_batch",
    "ingest_file",
    "refresh",
    "refresh_job",
    "load_events",
    "sync_status",
    "load_profiles",
    "search_customers",
    "customer_detail",
    "build_search_index",
    "Resolver",
]

N_PARTS = 16  # event partitions (by event id)
N_PERSON_PARTS = 256  # person-event partitions (by person id): a profile page reads one
N_IDENTITY_PARTS = 32  # per-person records and merges, for the profile page
PROFILE_BATCH_EVENTS = 2_000_000  # a full refresh computes profiles over this many events at a time
MAX_REASONS = 50
Resolver = Callable[..., Any]


def _k(ws: str, *parts: str) -> str:
    return ws_key(ws, "cdp", *parts)


def _part(values: pd.Series, n: int = N_PARTS) -> np.ndarray:
    """Partition number of each value (stable across processes: a hash, not Python's ``hash``)."""
    uniq, inv = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    parts = np.array([int(hashlib.md5(u.encode()).hexdigest()[:8], 16) % n for u in uniq], dtype=int)
    return parts[inv]


def _read(store: Store, key: str) -> pd.DataFrame | None:
    try:
        return store.read_table(key)
    except KeyNotFound:
        return None


# --------------------------------------------------------------------------------------------------- events
# An event partition is a list of immutable segments (``events/part-XX/seg-<time>-<rand>.parquet``), oldest first;
# a write appends one segment with the events that are new or newer revisions, so writing costs what is written,
# not what is stored. Each segment carries ``h``, a 64-bit hash of the event id; the sorted hashes of each segment
# are cached per process, so telling new events from stored ones does not read the stored events. Reading a
# partition keeps, per event id, the greatest version. After each write the newest segments are merged the way a
# binary counter carries (see _compact), so an event is rewritten O(log n) times, not once per write.
MAX_SEGMENTS = 32


def _fingerprint(df: pd.DataFrame) -> pd.Series:
    cols = [c for c in EVENT_COLUMNS if c not in ("event_id",)]
    return pd.util.hash_pandas_object(df[cols].astype(str), index=False).astype(str)
_SEG_H: dict[tuple[int, str], np.ndarray] = {}


def event_hash(ids: Iterable[str]) -> np.ndarray:
    """Stable 64-bit hash of each event id (blake2b; the same in every process and version)."""
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    return np.fromiter((int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little")
                        for i in ids), dtype=np.uint64, count=len(ids))


def _seg_key(ws: str, p: int) -> str:
    return _k(ws, "events", f"part-{p:02d}", f"seg-{time.time_ns():020d}-{secrets.token_hex(3)}.parquet")


def _segments(store: Store, ws: str) -> dict[int, list[str]]:
    """Segment keys of every event partition, oldest first (migrating a pre-segment store on first sight)."""
    keys = store.list(_k(ws, "events") + "/")
    legacy = [k for k in keys if re.fullmatch(r".*/events/part-\d\d\.parquet", k)]
    if legacy:
        _migrate_legacy(store, ws, legacy)
        keys = store.list(_k(ws, "events") + "/")
    out: dict[int, list[str]] = {}
    for k in keys:
        m = re.search(r"/events/part-(\d+)/seg-[^/]+\.parquet$", k)
        if m:
            out.setdefault(int(m.group(1)), []).append(k)
    return {p: sorted(v) for p, v in sorted(out.items())}


def _migrate_legacy(store: Store, ws: str, legacy: list[str]) -> None:
    """Stores written before segments had one file per partition, partitioned by an md5 of the event id: move
    their events into segments (written before the old files are removed, so a crash loses nothing)."""
    frames = [store.read_table(k) for k in legacy]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else None
    if df is not None:
        _write_segments(store, ws, df[list(EVENT_COLUMNS)])
    for k in legacy:
        store.delete(k)


def _write_segments(store: Store, ws: str, df: pd.DataFrame, h: np.ndarray | None = None) -> None:
    h = event_hash(df["event_id"]) if h is None else h
    parts = (h % np.uint64(N_PARTS)).astype(int)
    for p in np.unique(parts):
        sel = parts == p
        _write_segment(store, _seg_key(ws, int(p)), df[sel], h[sel])


def _write_segment(store: Store, key: str, df: pd.DataFrame, h: np.ndarray) -> None:
    order = np.argsort(df["event_id"].to_numpy(dtype=object), kind="stable")
    out = df.iloc[order][list(EVENT_COLUMNS)].reset_index(drop=True)
    out["h"] = h[order]
    store.write_table(key, out)
    _SEG_H[(id(store), key)] = np.sort(h)


def _seg_hashes(store: Store, key: str) -> np.ndarray:
    ck = (id(store), key)
    hit = _SEG_H.get(ck)
    if hit is None:
        t = store.read_table(key, columns=["h"]) if key else None
        hit = np.sort(t["h"].to_numpy(dtype=np.uint64)) if t is not None and "h" in t else np.empty(0, np.uint64)
        _SEG_H[ck] = hit
    return hit


def _in_sorted(values: np.ndarray, sorted_arr: np.ndarray) -> np.ndarray:
    if not len(sorted_arr) or not len(values):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_arr, values)
    pos[pos == len(sorted_arr)] = 0
    return sorted_arr[pos] == values


def read_partition(store: Store, keys: list[str], columns: list[str] | None = None,
                   with_hash: bool = False) -> pd.DataFrame:
    """One event partition from its segments: per event id, the greatest version (ties: the earliest write).
    ``with_hash`` keeps the stored id hashes (column ``h``) for rewriting segments without hashing again."""
    cols = None if columns is None else list(dict.fromkeys(["event_id", "version", *columns]))
    frames = [f for f in (store.read_table(k, columns=cols) for k in keys) if len(f)]
    if not frames:
        out = empty_events()
        return out if columns is None else out[cols]
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(frames) > 1 and df["event_id"].duplicated().any():
        df = df.iloc[np.lexsort((-np.arange(len(df)), df["version"].astype(str).to_numpy(),
                                 df["event_id"].astype(str).to_numpy()))]
        df = df.drop_duplicates("event_id", keep="last").reset_index(drop=True)
    if not with_hash:
        df = df.drop(columns=[c for c in ("h",) if c in df])
    return df if columns is None else df[[c for c in cols if c in df]]


def _compact(store: Store, ws: str, p: int, keys: list[str]) -> list[str]:
    """Log-structured merging: the newest segment absorbs the ones before it while they are no larger in order
    of magnitude (log2 of rows), like carries in a binary counter, all in one rewrite. Each event is thus rewritten
    O(log n) times and a partition holds O(log n) segments (MAX_SEGMENTS at most: beyond that, everything)."""
    if len(keys) < 2:
        return keys
    sizes = [max(len(_seg_hashes(store, k)), 1) for k in keys]
    acc, start = sizes[-1], len(keys) - 1
    while start >= 1 and int(np.log2(acc)) >= int(np.log2(sizes[start - 1])):
        acc += sizes[start - 1]
        start -= 1
    if len(keys) > MAX_SEGMENTS:
        start = 0
    if start == len(keys) - 1:
        return keys
    run = keys[start:]
    merged = read_partition(store, run, with_hash=True)
    stored_h = merged.pop("h") if "h" in merged else None
    h = stored_h.to_numpy(np.uint64) if stored_h is not None and stored_h.notna().all() else event_hash(
        merged["event_id"])
    # named after the run's oldest segment, so it sorts where the run was ("-m" sorts before ".parquet"), with a
    # token of its own: two writers compacting at once each keep their rows (duplicates are dropped on read)
    new_key = re.sub(r"(/seg-\d+-[0-9a-f]+)(-m[0-9a-f]*)?\.parquet$", rf"\1-m{secrets.token_hex(3)}.parquet", run[0])
    _write_segment(store, new_key, merged, h)
    for k in run:
        store.delete(k)
        _SEG_H.pop((id(store), k), None)
    return [*keys[:start], new_key]


def ingest_events(store: Store, ws: str, events: list[Event] | pd.DataFrame) -> dict[str, Any]:
    """Store events idempotently; returns counts and the ids of events that are new or newer revisions
    (``changed`` holds those events as a table, for an incremental refresh)."""
    df = events if isinstance(events, pd.DataFrame) else events_to_frame(list(events))
    if df.empty:
        return {"accepted": 0, "duplicates": 0, "changed_ids": [], "changed": empty_events()}
    df = df.copy()
    df["_fp"] = ""
    dups = df["event_id"].duplicated(keep=False)
    if dups.any():  # within the batch: one row per event id, newest version (ties: by content, deterministic)
        df.loc[dups, "_fp"] = _fingerprint(df[dups]).to_numpy()
        df = df.sort_values(["event_id", "version", "_fp"], kind="stable").drop_duplicates("event_id", keep="last")
    df = df.drop(columns="_fp").reset_index(drop=True)
    h = df.pop("h").to_numpy(np.uint64) if "h" in df else event_hash(df["event_id"])
    parts = (h % np.uint64(N_PARTS)).astype(int)
    segs = _segments(store, ws)
    taken: list[pd.DataFrame] = []
    dup = 0
    for p in np.unique(parts):
        sel = parts == p
        new, hn = df[sel].reset_index(drop=True), h[sel]
        keys = segs.get(int(p), [])
        hit = np.zeros(len(new), dtype=bool)
        for k in keys:
            hit |= _in_sorted(hn, _seg_hashes(store, k))
        take = ~hit
        if hit.any():  # stored before (or a hash collision): only a strictly newer version is taken
            stored = read_partition(store, keys, columns=["event_id", "version"])
            prev = new.loc[hit, "event_id"].map(stored.set_index("event_id")["version"])
            take[hit] = (prev.isna() | (new.loc[hit, "version"].astype(str) > prev.fillna("").astype(str))).to_numpy()
        dup += int((~take).sum())
        if not take.any():
            continue
        key = _seg_key(ws, int(p))
        _write_segment(store, key, new[take], hn[take])
        taken.append(new[take])
        _compact(store, ws, int(p), [*keys, key])
    changed = pd.concat(taken, ignore_index=True) if taken else empty_events()
    return {"accepted": int(len(changed)), "duplicates": dup, "changed_ids": changed["event_id"].tolist(),
            "changed": changed}


def event_segments(store: Store, ws: str) -> list[str]:
    """Keys of every stored event segment (for engines that scan Parquet files, e.g. DuckDB)."""
    return [k for keys in _segments(store, ws).values() for k in keys]


def iter_event_partitions(store: Store, ws: str, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Stored events one partition at a time (bounded memory)."""
    for keys in _segments(store, ws).values():
        df = read_partition(store, keys, columns)
        if len(df):
            yield df


def load_events(store: Store, ws: str) -> pd.DataFrame:
    """Every stored event (all partitions) as one table; for small bases and tests: large ones go partition by
    partition (:func:`iter_event_partitions`)."""
    frames = list(iter_event_partitions(store, ws))
    if not frames:
        return empty_events()
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------------- sync log
def _log_key(ws: str) -> str:
    return _k(ws, "sync_log.json")


def _update_log(store: Store, ws: str, source: str, received: int, accepted: int, duplicates: int,
                rejected: list[tuple[int, str]], mode: str, n_rejected: int | None = None) -> dict[str, Any]:
    try:
        log = store.read_json(_log_key(ws))
    except KeyNotFound:
        log = {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    s = log.setdefault(source, {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "reasons": [],
                                "last_sync": None, "last_mode": None, "syncs": 0})
    s["received"] += received
    s["accepted"] += accepted
    s["duplicates"] += duplicates
    s["rejected"] += len(rejected) if n_rejected is None else n_rejected
    s["reasons"] = ([{"time": now, "reason": r} for _, r in rejected[:MAX_REASONS]] + s["reasons"])[:MAX_REASONS]
    s["last_sync"] = now
    s["last_mode"] = mode
    s["syncs"] += 1
    store.write_json(_log_key(ws), log)
    return s


def sync_status(store: Store, ws: str) -> dict[str, Any]:
    """Per-source sync log plus the size of the unified customer base."""
    try:
        log = store.read_json(_log_key(ws))
    except KeyNotFound:
        log = {}
    try:
        state = store.read_json(_k(ws, "state.json"))
    except KeyNotFound:
        state = None
    sources = []
    for name in SOURCES:
        s = log.get(name)
        sources.append({"source": name, "connected": s is not None, **(s or {"received": 0, "accepted": 0,
                        "duplicates": 0, "rejected": 0, "reasons": [], "last_sync": None})})
    return {"sources": sources, "profiles": state}


# ------------------------------------------------------------------------------------------------ ingestion
def ingest_batch(store: Store, ws: str, source: str, body: bytes | str | list[Any], content_type: str | None = None,
                 topic: str | None = None, mode: str = "batch", rebuild: bool = True,
                 resolver: Resolver | None = None) -> dict[str, Any]:
    """Parse an export (JSON array, wrapped JSON, NDJSON or CSV) or a webhook payload of ``source``, store its
    events idempotently, log the sync and (``rebuild``) refresh identities and profiles.

    Raises ``ValueError`` when nothing in the body could be read; individual bad records are rejected and logged
    while the others load.
    """
    mod = adapter(source)
    if isinstance(body, list):
        rows = body
    elif mode == "webhook":  # one delivery = one payload, never unwrapped (GA4's "events" belong to it)
        rows = _webhook_rows(body)
    else:
        rows = read_rows(body, content_type)
    result = mod.parse_export(rows, topic)
    if result.received and not result.events and result.rejected:
        _update_log(store, ws, mod.SOURCE, result.received, 0, 0, result.rejected, mode)
        raise ValueError(f"no {mod.SOURCE} record could be read; first problem: {result.rejected[0][1]}")
    stored = ingest_events(store, ws, result.events)
    log = _update_log(store, ws, mod.SOURCE, result.received, stored["accepted"], stored["duplicates"],
                      result.rejected, mode)
    out: dict[str, Any] = {
        "source": mod.SOURCE, "received": result.received, "events": len(result.events),
        "accepted": stored["accepted"], "duplicates": stored["duplicates"],
        "rejected": [{"record": i, "reason": r} for i, r in result.rejected[:MAX_REASONS]],
        "rejected_count": len(result.rejected), "last_sync": log["last_sync"],
    }
    if rebuild and stored["accepted"]:
        if resolver is None and os.environ.get("GROWTHLENS_CDP_REFRESH", "inline").strip().lower() == "job":
            # answer at once; the job worker refreshes the touched customers (deployments with a request timeout)
            from functions.jobs import submit

            job = submit(store, ws, "cdp_refresh", {"changed_ids": stored["changed_ids"]})
            out["refresh"] = {"mode": "queued", "job": job["id"]}
        else:
            out["refresh"] = refresh(store, ws, stored["changed_ids"], resolver=resolver, changed=stored["changed"])
    return out


def _parse_chunk(args: tuple[str, str | None, int, list[Any]]) -> tuple[pd.DataFrame, int, list[tuple[int, str]]]:
    """Parse one chunk of export rows to the canonical events table (runs in a worker process for big files)."""
    source, topic, start, rows = args
    res = parse_rows(adapter(source).parse, rows, topic, start=start)
    frame = events_to_frame(res.events)
    frame["h"] = event_hash(frame["event_id"])  # here, in the worker, not in the process that stores
    return frame, res.received, res.rejected


def ingest_file(store: Store, ws: str, source: str, path: str | Path, topic: str | None = None,
                chunk_rows: int = 100_000, workers: int = 1) -> dict[str, Any]:
    """Load an export *file* of ``source`` in chunks of ``chunk_rows`` records, so memory stays bounded whatever
    its size: each chunk is parsed and stored idempotently as it is read (a malformed record or NDJSON line is
    rejected with its number, the others load); the sync log is written once at the end. With ``workers`` > 1,
    chunks are decoded and parsed in that many processes while this one stores them (in file order, so the
    result is the same). Does not refresh profiles: call :func:`refresh` after the last file.

    Raises ``ValueError`` when nothing in the file could be read.
    """
    mod = adapter(source)
    received = accepted = dups = n_events = n_rejected = 0
    rejected: list[tuple[int, str]] = []

    def tasks() -> Iterator[tuple[str, str | None, int, list[Any]]]:
        start = 0
        for rows in iter_row_chunks(path, None, chunk_rows, raw_lines=True):
            yield mod.SOURCE, topic, start, rows
            start += len(rows)

    def store_chunk(frame: pd.DataFrame, n_rows: int, rej: list[tuple[int, str]]) -> None:
        nonlocal received, accepted, dups, n_events, n_rejected
        received += n_rows
        n_events += len(frame)
        n_rejected += len(rej)
        rejected.extend(rej[: MAX_REASONS - len(rejected)])
        if len(frame):
            stored = ingest_events(store, ws, frame)
            accepted += stored["accepted"]
            dups += stored["duplicates"]

    it = tasks()
    first = next(it, None)
    second = next(it, None) if first is not None else None
    if workers > 1 and second is not None:  # more than one chunk: worth starting worker processes
        import collections
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:  # spawn: no fork of a threaded server
            # at most two chunks per worker in flight (Pool.imap would read the whole file ahead into memory)
            pending: collections.deque = collections.deque()
            for task in itertools.chain([first, second], it):
                pending.append(pool.apply_async(_parse_chunk, (task,)))
                if len(pending) >= 2 * workers:
                    store_chunk(*pending.popleft().get())
            while pending:
                store_chunk(*pending.popleft().get())
    else:
        for task in itertools.chain((t for t in (first, second) if t is not None), it):
            store_chunk(*_parse_chunk(task))
    if received and not n_events and n_rejected:
        _update_log(store, ws, mod.SOURCE, received, 0, 0, rejected, "batch", n_rejected)
        raise ValueError(f"no {mod.SOURCE} record in {Path(path).name} could be read; first problem: "
                         f"{rejected[0][1]}")
    log = _update_log(store, ws, mod.SOURCE, received, accepted, dups, rejected, "batch", n_rejected)
    return {"source": mod.SOURCE, "file": str(path), "received": received, "events": n_events,
            "accepted": accepted, "duplicates": dups,
            "rejected": [{"record": i, "reason": r} for i, r in rejected], "rejected_count": n_rejected,
            "last_sync": log["last_sync"]}


def _webhook_rows(body: bytes | str) -> list[Any]:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the webhook body is not valid JSON: {e}") from e
    return payload if isinstance(payload, list) else [payload]


def _default_resolver() -> Resolver:
    from core.cdp.identity import resolve  # the identity resolution engine

    return resolve


def refresh(store: Store, ws: str, changed_ids: Iterable[str] | None = None, resolver: Resolver | None = None,
            full: bool = False, changed: pd.DataFrame | None = None) -> dict[str, Any]:
    """Bring records, identities, profiles, person-event partitions and the search index up to date with the
    stored events.

    Incremental when it can be (``changed``: the events stored since the last refresh, as ``ingest_events``
    returns them; or ``changed_ids``): only the records of those events are rebuilt, from the person-event
    partitions of their persons, identities are re-resolved only when a record is new or changed, and only the
    touched persons' profiles and partitions are rewritten. Otherwise (first refresh, ``full``, or the day of
    the newest event moved, which moves every recency figure) everything is rebuilt with DuckDB over the stored
    event segments, one person partition at a time. Returns timings and how many persons were recomputed.
    """
    if not full and (changed is not None or changed_ids is not None):
        if changed is None:
            changed = _events_by_id(store, ws, list(changed_ids or []))
        out = _refresh_incremental(store, ws, changed, resolver)
        if out is not None:
            return out
    return _refresh_full(store, ws, resolver, full)


def _events_by_id(store: Store, ws: str, ids: list[str]) -> pd.DataFrame:
    """The stored events with these ids, reading only the partitions their hashes point to."""
    if not ids:
        return empty_events()
    parts = set((event_hash(ids) % np.uint64(N_PARTS)).astype(int).tolist())
    want = set(ids)
    segs = _segments(store, ws)
    frames = [df[df["event_id"].isin(want)] for p in sorted(parts) if p in segs
              for df in [read_partition(store, segs[p])]]
    return pd.concat(frames, ignore_index=True) if frames else empty_events()


def _person_part(person_ids: Iterable[str]) -> np.ndarray:
    """Person-event partition of each person id (md5: stable across processes)."""
    return _part(pd.Series(list(person_ids), dtype=object), N_PERSON_PARTS)


def _as_of(t: pd.Timestamp) -> pd.Timestamp:
    """"Now" for recency figures: the end of the day of the newest event (moves once a day, not per event)."""
    return pd.Timestamp(t).tz_convert("UTC").floor("D") + pd.Timedelta(days=1)


def _records_equal(a: pd.DataFrame | None, b: pd.DataFrame) -> bool:
    if a is None or len(a) != len(b):
        return False
    cols = list(RECORD_COLUMNS)
    x = a[cols].sort_values("record_id").fillna("").astype(str).reset_index(drop=True)
    y = b[cols].sort_values("record_id").fillna("").astype(str).reset_index(drop=True)
    return x.equals(y)


def _resolve(store: Store, ws: str, records: pd.DataFrame, prev_clusters: pd.DataFrame | None,
             resolver: Resolver | None) -> pd.DataFrame:
    """Resolve every record; store records, clusters, merges and, for later neighbourhood resolutions, the
    normalised records and the fitted model."""
    resolve = resolver or _default_resolver()
    res = resolve(records, previous=prev_clusters if prev_clusters is not None and not prev_clusters.empty
                  else None)
    clusters = res.clusters[["record_id", "person_id"]].astype(str).astype(object)
    prepared = getattr(res, "prepared", None)
    model = getattr(res, "model", None)
    if prepared is not None and model and len(prepared) == len(records):
        store.write_table(_k(ws, "prepared.parquet"), prepared)
        store.write_json(_k(ws, "identity_model.json"), model)
    else:  # a custom resolver: no neighbourhood resolution later
        store.delete(_k(ws, "prepared.parquet"))
    _write_resolution(store, ws, records, clusters, getattr(res, "merges", None))
    return clusters


def _nulls_as_none(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns with ``None`` for missing values (as built), whatever Parquet read back (NaN, str dtype)."""
    df = df.astype(object)
    return df.where(df.notna(), None)


def _write_resolution(store: Store, ws: str, records: pd.DataFrame, clusters: pd.DataFrame,
                      merges: pd.DataFrame | None, persons: set[str] | None = None) -> None:
    if merges is not None:
        merges = merges.astype({c: str for c in merges.columns if merges[c].dtype == object})
        store.write_table(_k(ws, "merges.parquet"), merges)
    store.write_table(_k(ws, "records.parquet"), records)
    store.write_table(_k(ws, "clusters.parquet"), clusters)
    _write_identities(store, ws, records, clusters, merges, persons)


def _write_identities(store: Store, ws: str, records: pd.DataFrame, clusters: pd.DataFrame,
                      merges: pd.DataFrame | None, persons: set[str] | None = None) -> None:
    """Per-person copies of the records and merges, in N_IDENTITY_PARTS partitions by person, so that a profile
    page reads a small file instead of every record of the base; only the partitions of ``persons`` (None: all)."""
    cl = clusters[["record_id", "person_id"]]
    upid = pd.unique(cl["person_id"])
    ppart = pd.Series(_part(pd.Series(upid, dtype=object), N_IDENTITY_PARTS), index=upid)
    rec = records.merge(cl, on="record_id", how="inner")
    rec_p = rec["person_id"].map(ppart).to_numpy()
    if merges is None:
        merges = _read(store, _k(ws, "merges.parquet"))
    mg = merges if merges is not None else pd.DataFrame(columns=["record_a", "record_b"])
    mg = mg.assign(person_id=mg["record_a"].map(cl.set_index("record_id")["person_id"]))
    mg_p = mg["person_id"].map(ppart).to_numpy()
    wanted = set(range(N_IDENTITY_PARTS)) if persons is None else set(
        _part(pd.Series(sorted(persons), dtype=object), N_IDENTITY_PARTS)) if persons else set()
    for p in sorted(wanted):
        store.write_table(_k(ws, "identities", f"part-{p:02d}.parquet"), rec[rec_p == p].reset_index(drop=True))
        store.write_table(_k(ws, "person_merges", f"part-{p:02d}.parquet"), mg[mg_p == p].reset_index(drop=True))


def _resolve_neighbourhood(store: Store, ws: str, records: pd.DataFrame, is_old: pd.Series,
                           new_rows: pd.DataFrame, old_rows: pd.DataFrame,
                           prev_clusters: pd.DataFrame) -> pd.DataFrame | None:
    """Re-resolve only around the records that changed (see ``core.cdp.identity.resolve_neighbourhood``), with the
    stored normalised records and model; None when those are not stored (then a full resolution runs)."""
    from core.cdp.identity import prepare_records, resolve_neighbourhood

    prepared = _read(store, _k(ws, "prepared.parquet"))
    try:
        model = store.read_json(_k(ws, "identity_model.json"))
    except KeyNotFound:
        return None
    if prepared is None or len(prepared) != len(records) or not (
            prepared["rid"].to_numpy(dtype=object) == records["record_id"].astype(str).to_numpy(dtype=object)).all():
        return None
    keep = ~is_old.to_numpy()
    prepared = _nulls_as_none(prepared)
    all_records = _nulls_as_none(pd.concat([records[keep], new_rows], ignore_index=True))
    all_prepared = pd.concat([prepared[keep], prepare_records(new_rows)], ignore_index=True)
    changed = set(new_rows["record_id"]) | set(old_rows["record_id"])
    gone = set(old_rows["record_id"]) - set(new_rows["record_id"])
    if gone:  # a record that disappeared: its person's other records are re-resolved
        persons = set(prev_clusters.loc[prev_clusters["record_id"].isin(gone), "person_id"])
        changed |= set(prev_clusters.loc[prev_clusters["person_id"].isin(persons), "record_id"])
    res, near = resolve_neighbourhood(all_records, all_prepared, changed, prev_clusters, model)
    near_ids = set(all_records.loc[near, "record_id"])
    rest = prev_clusters[~prev_clusters["record_id"].isin(near_ids | gone)]
    clusters = pd.concat([rest, res.clusters[["record_id", "person_id"]].astype(str)],
                         ignore_index=True).astype(object)
    merges = _read(store, _k(ws, "merges.parquet"))
    if merges is not None:
        touched = near_ids | gone
        merges = pd.concat([merges[~(merges["record_a"].isin(touched) | merges["record_b"].isin(touched))],
                            res.merges], ignore_index=True)
    store.write_table(_k(ws, "prepared.parquet"), all_prepared)
    persons = set(res.clusters["person_id"]) | set(
        prev_clusters.loc[prev_clusters["record_id"].isin(near_ids | gone), "person_id"])
    _write_resolution(store, ws, all_records, clusters, merges, persons)
    return clusters


def _refresh_full(store: Store, ws: str, resolver: Resolver | None, full: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    segs = event_segments(store, ws)
    if not segs:
        return {"persons": 0, "recomputed": 0, "timings": timings}
    with connect() as con, local_files(store, segs) as paths:
        timings["load_events"] = time.perf_counter() - t0
        t = time.perf_counter()
        records = bulk_records(con, paths)
        n_events, newest = con.execute("SELECT count(*), max(time) FROM ev").fetchall()[0]
        as_of = _as_of(pd.Timestamp(newest))
        timings["records"] = time.perf_counter() - t
        t = time.perf_counter()
        prev_clusters = _read(store, _k(ws, "clusters.parquet"))
        prev_records = _read(store, _k(ws, "records.parquet"))
        resolved = full or prev_clusters is None or not _records_equal(prev_records, records)
        clusters = _resolve(store, ws, records, prev_clusters, resolver) if resolved else prev_clusters
        if not resolved and not store.list(_k(ws, "identities") + "/"):  # a store from before identities/
            _write_identities(store, ws, records, clusters, None)
        timings["resolve"] = time.perf_counter() - t
        t = time.perf_counter()
        cl = clusters.assign(part=_person_part(clusters["person_id"]))
        frames: list[pd.DataFrame] = []
        written: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="gl-persons-") as tmp:
            dirs = split_by_person(con, cl, tmp)
            timings["split"] = time.perf_counter() - t
            t = time.perf_counter()
            t_write = 0.0
            group: list[tuple[int, pd.DataFrame]] = []
            for i, d in enumerate(dirs):  # partitions in groups of about PROFILE_BATCH_EVENTS events
                ev = pd.concat([pd.read_parquet(f) for f in sorted(d.glob("*.parquet"))], ignore_index=True)
                group.append((int(d.name.split("=")[1]), ev.drop(columns=[c for c in ("part",) if c in ev])))
                if sum(len(g) for _, g in group) < PROFILE_BATCH_EVENTS and i < len(dirs) - 1:
                    continue
                frames.append(compute_profiles(pd.concat([g for _, g in group], ignore_index=True), as_of=as_of))
                tw = time.perf_counter()
                for p, g in group:
                    key = _k(ws, "person_events", f"part-{p:03d}.parquet")
                    store.write_table(key, _person_events_table(g))
                    written.add(key)
                group = []
                t_write += time.perf_counter() - tw
        timings["profiles"] = time.perf_counter() - t - t_write
    t = time.perf_counter()
    for key in store.list(_k(ws, "person_events") + "/"):
        if key not in written:  # partitions left over from an earlier layout or with no person now
            store.delete(key)
    profiles = pd.concat(frames, ignore_index=True).sort_values("person_id", kind="stable").reset_index(drop=True)
    store.write_table(_k(ws, "profiles.parquet"), profiles)
    store.write_table(_k(ws, "search.parquet"), build_search_index(profiles, records, clusters))
    _write_state(store, ws, len(profiles), len(records), int(n_events), as_of)
    timings["write"] = time.perf_counter() - t + t_write
    return {"persons": int(len(profiles)), "recomputed": int(len(profiles)),
            "recomputed_ids": profiles["person_id"].head(100).tolist(), "resolved": resolved, "mode": "full",
            "timings": {k: round(v, 3) for k, v in timings.items()}}


def _person_events_table(ev: pd.DataFrame) -> pd.DataFrame:
    cols = [*EVENT_COLUMNS, "record_id", "person_id"]
    return ev[cols].sort_values(["person_id", "time", "event_id"], kind="stable").reset_index(drop=True)


def _write_state(store: Store, ws: str, persons: int, records: int, events: int, as_of: pd.Timestamp) -> None:
    state = {"version": hashlib.sha1(f"{events}|{time.time()}".encode()).hexdigest()[:12],
             "persons": int(persons), "records": int(records), "events": int(events),
             "as_of": as_of.isoformat(), "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    store.write_json(_k(ws, "state.json"), state)
    _CACHE.clear()


def _refresh_incremental(store: Store, ws: str, changed: pd.DataFrame,
                         resolver: Resolver | None) -> dict[str, Any] | None:
    """Refresh after ``changed`` events, touching only their records and persons; None when a full refresh is
    needed instead (nothing built yet, or the newest event moved "now" to a later day)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    state = _read_state(store, ws)
    profiles = _read(store, _k(ws, "profiles.parquet"))
    clusters = _read(store, _k(ws, "clusters.parquet"))
    if state is None or profiles is None or clusters is None or "as_of" not in state or not store.exists(
            _k(ws, "records.parquet")) or not store.list(_k(ws, "identities") + "/"):
        return None
    as_of = pd.Timestamp(state["as_of"])
    if changed.empty:
        return {"persons": int(len(profiles)), "recomputed": 0, "recomputed_ids": [], "resolved": False,
                "mode": "incremental", "timings": {}}
    if _as_of(changed["time"].max()) > as_of:
        return None
    changed = changed[list(EVENT_COLUMNS)].copy()
    changed["record_id"] = record_keys(changed).to_numpy()
    touched_recs = set(changed["record_id"].dropna())
    pmap = clusters.set_index("record_id")["person_id"]
    old_persons = {pmap[r] for r in touched_recs if r in pmap.index}
    # the touched records' stored events live in the partitions of their persons
    parts = set(_person_part(sorted(old_persons))) if old_persons else set()
    stored = _read_person_parts(store, ws, parts)
    timings["load_events"] = time.perf_counter() - t0

    t = time.perf_counter()
    rec_events = pd.concat([stored[stored["record_id"].isin(touched_recs) & ~stored["event_id"].isin(
        changed["event_id"])].drop(columns=["person_id"]), changed[changed["record_id"].notna()]],
        ignore_index=True)
    new_rows, _ = build_records(rec_events)
    scid_keys = set(zip(new_rows["source"], new_rows["source_customer_id"].fillna(""), strict=True))

    def old_mask(rec: pd.DataFrame) -> pd.Series:
        """The stored rows of the touched records: primaries by id, link records by their customer id."""
        return rec["record_id"].isin(touched_recs) | pd.Series(
            list(zip(rec["source"], rec["source_customer_id"].fillna(""), strict=True)),
            index=rec.index).isin(scid_keys) & rec["source_customer_id"].notna()

    # a known record's rows are in its person's identities partition: no need to read every record
    known = _read_identity_parts(store, ws, old_persons)
    old_rows = known[old_mask(known)].drop(columns="person_id")
    records_changed = not _records_equal(old_rows, new_rows)
    records = None
    if records_changed:
        records = _read(store, _k(ws, "records.parquet"))
        is_old = old_mask(records)
        old_rows = records[is_old]
    timings["records"] = time.perf_counter() - t

    t = time.perf_counter()
    prev_clusters = clusters
    neighbourhood = False
    if records_changed:
        out = None if resolver is not None else _resolve_neighbourhood(store, ws, records, is_old, new_rows,
                                                                       old_rows, prev_clusters)
        records = pd.concat([records[~is_old], new_rows], ignore_index=True)
        if out is None:
            clusters = _resolve(store, ws, records, prev_clusters, resolver)
        else:
            clusters, neighbourhood = out, True
    timings["resolve"] = time.perf_counter() - t

    t = time.perf_counter()
    touched = touched_persons(prev_clusters, clusters, touched_recs) if records_changed else \
        {pmap[r] for r in touched_recs if r in pmap.index}
    if records_changed:  # persons whose records moved: their events may sit in other partitions
        moved = prev_clusters.merge(clusters, on="record_id", how="outer", suffixes=("_old", "_new"))
        moved = moved[moved["person_id_old"] != moved["person_id_new"]]
        more = set(_person_part(sorted(set(moved["person_id_old"].dropna()) | touched)))
        if more - parts:
            stored = pd.concat([stored, _read_person_parts(store, ws, more - parts)], ignore_index=True)
            parts |= more
    new_map = clusters.set_index("record_id")["person_id"]
    ev = pd.concat([stored[~stored["event_id"].isin(changed["event_id"])].drop(columns=["person_id"]),
                    changed], ignore_index=True)
    ev["person_id"] = ev["record_id"].map(new_map)
    ev = ev[ev["person_id"].notna()]
    before = profiles
    profiles, recomputed = update_profiles(profiles, ev, touched, as_of=as_of)
    if records_changed:  # persons merged away
        profiles = profiles[profiles["person_id"].isin(set(clusters["person_id"]))]
    timings["profiles"] = time.perf_counter() - t

    t = time.perf_counter()
    ev_parts = _person_part(ev["person_id"])
    for p in sorted(parts | set(_person_part(sorted(touched)))):
        store.write_table(_k(ws, "person_events", f"part-{p:03d}.parquet"), _person_events_table(ev[ev_parts == p]))
    store.write_table(_k(ws, "profiles.parquet"), profiles)
    if records_changed or _search_fields_changed(before, profiles, touched | old_persons):
        if records is None:
            records = _read(store, _k(ws, "records.parquet"))
        _update_search_index(store, ws, profiles, records, clusters, touched | old_persons)
    n_records = len(records) if records is not None else int(state.get("records", 0))
    _write_state(store, ws, len(profiles), n_records, int(state.get("events", 0)) + int(
        (~changed["event_id"].isin(stored["event_id"])).sum()), as_of)
    timings["write"] = time.perf_counter() - t
    return {"persons": int(len(profiles)), "recomputed": len(recomputed), "recomputed_ids": sorted(recomputed)[:100],
            "resolved": records_changed, "resolution": "neighbourhood" if neighbourhood else "full" if
            records_changed else "none", "mode": "incremental",
            "timings": {k: round(v, 3) for k, v in timings.items()}}


def _read_identity_parts(store: Store, ws: str, persons: set[str]) -> pd.DataFrame:
    """The stored records (with ``person_id``) of the identities partitions holding ``persons``."""
    parts = sorted(set(_part(pd.Series(sorted(persons), dtype=object), N_IDENTITY_PARTS))) if persons else []
    frames = [f for f in (_read(store, _k(ws, "identities", f"part-{p:02d}.parquet")) for p in parts)
              if f is not None and len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*RECORD_COLUMNS, "person_id")})
    return _nulls_as_none(pd.concat(frames, ignore_index=True))


_SEARCH_FIELDS = ["person_id", "first_name", "last_name", "email", "phone"]


def _search_fields_changed(before: pd.DataFrame, after: pd.DataFrame, persons: set[str]) -> bool:
    """Whether any searchable profile field of ``persons`` changed (else their search keys stay as they are)."""
    a = before.loc[before["person_id"].isin(persons), _SEARCH_FIELDS]
    b = after.loc[after["person_id"].isin(persons), _SEARCH_FIELDS]
    return not _canon_frame(a).equals(_canon_frame(b))


def _canon_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype(object).where(df.notna(), "").astype(str).sort_values("person_id").reset_index(drop=True)


def _read_person_parts(store: Store, ws: str, parts: Iterable[int]) -> pd.DataFrame:
    frames = [f for f in (_read(store, _k(ws, "person_events", f"part-{p:03d}.parquet")) for p in sorted(parts))
              if f is not None and len(f)]
    if not frames:
        out = empty_events()
        return out.assign(record_id=pd.Series(dtype=object), person_id=pd.Series(dtype=object))
    return pd.concat(frames, ignore_index=True)


def _update_search_index(store: Store, ws: str, profiles: pd.DataFrame, records: pd.DataFrame,
                         clusters: pd.DataFrame, persons: set[str]) -> None:
    """Replace the search keys of ``persons`` only: their old rows out, their new rows spliced in (sorted)."""
    idx = _read(store, _k(ws, "search.parquet"))
    sub_c = clusters[clusters["person_id"].isin(persons)]
    fresh = build_search_index(profiles[profiles["person_id"].isin(persons)],
                               records[records["record_id"].isin(set(sub_c["record_id"]))], sub_c)
    if idx is None:
        store.write_table(_k(ws, "search.parquet"), fresh)
        return
    keep = idx[~idx["person_id"].isin(persons)]
    keys = keep["key"].to_numpy(dtype=object)
    pos = np.searchsorted(keys, fresh["key"].to_numpy(dtype=object), side="right")
    out = pd.DataFrame({"key": np.insert(keys, pos, fresh["key"].to_numpy(dtype=object)),
                        "person_id": np.insert(keep["person_id"].to_numpy(dtype=object), pos,
                                               fresh["person_id"].to_numpy(dtype=object))})
    store.write_table(_k(ws, "search.parquet"), out)


def refresh_job(store: Store, ws: str, params: dict[str, Any], progress: Callable[[float, str], None]) -> dict:
    """Job form of :func:`refresh` (``params``: optional ``changed_ids``, ``full``), for running it off the
    request path, e.g. after webhooks that must be answered within seconds."""
    progress(0.05, "resolving identities and recomputing profiles")
    out = refresh(store, ws, params.get("changed_ids"), full=bool(params.get("full")))
    progress(1.0, f"{out['persons']:,} profiles, {out['recomputed']:,} recomputed")
    return out


def _read_state(store: Store, ws: str) -> dict[str, Any] | None:
    try:
        return store.read_json(_k(ws, "state.json"))
    except KeyNotFound:
        return None


# ----------------------------------------------------------------------------------------------------- search
def _norm(s: Any) -> str:
    if s is None or (isinstance(s, float) and np.isnan(s)):
        return ""
    s = unicodedata.normalize("NFKD", str(s))
    return "".join(c for c in s if not unicodedata.combining(c)).casefold().strip()


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def build_search_index(profiles: pd.DataFrame, records: pd.DataFrame | None = None,
                       clusters: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sorted (key, person_id) pairs: every email, first name, last name, full name and phone (digits, with and
    without the country code) known for the person in any source, and the person id. A prefix search is then a
    binary search, fast enough for millions of customers."""
    cols = ["person_id", "first_name", "last_name", "email", "phone"]
    frames = [profiles[cols].astype(object)]
    if records is not None and clusters is not None and len(records):
        r = records.merge(clusters, on="record_id", how="inner")
        frames.append(r[cols].astype(object))
    src = pd.concat(frames, ignore_index=True).drop_duplicates()
    if src.empty:
        return pd.DataFrame({"key": pd.Series(dtype=str), "person_id": pd.Series(dtype=str)})
    pid = src["person_id"].astype(str)
    first = src["first_name"].map(_norm)
    last = src["last_name"].map(_norm)
    email = src["email"].map(_norm)
    phone = src["phone"].map(lambda v: _digits(_norm(v)))
    keys = [email, first, last, (first + " " + last).str.strip(), (last + " " + first).str.strip(), phone,
            phone.str[-10:], pid.str.casefold()]
    df = pd.concat([pd.DataFrame({"key": k.to_numpy(dtype=object), "person_id": pid.to_numpy(dtype=object)})
                    for k in keys], ignore_index=True)
    df = df[df["key"].str.len() > 0].drop_duplicates()
    return df.sort_values("key", kind="stable").reset_index(drop=True)


_CACHE: dict[tuple[int, str], Any] = {}


def _cached(store: Store, ws: str, what: str) -> Any:
    state = _read_state(store, ws)
    ver = state["version"] if state else "none"
    key = (id(store), ws)
    hit = _CACHE.get(key)
    if hit is None or hit["version"] != ver:
        prof = _read(store, _k(ws, "profiles.parquet"))
        idx = _read(store, _k(ws, "search.parquet"))
        if prof is None:
            raise LookupError("no customer data yet: sync a source (POST /api/sync/{source}/batch or "
                              "growthlens sync DIR)")
        text = [c for c in prof.columns if pd.api.types.is_string_dtype(prof[c].dtype)]
        prof = prof.astype({c: object for c in text})  # numpy-backed: row takes stay fast on millions of rows
        prof = prof.set_index(pd.Index(prof["person_id"].to_numpy(dtype=object), dtype=object), drop=False)
        pos = pd.Series(np.arange(len(prof)), index=prof.index)
        kpos = (pos.reindex(pd.Index(idx["person_id"].to_numpy(dtype=object), dtype=object)).fillna(-1)
                .astype(np.int64).to_numpy() if idx is not None else np.array([], dtype=np.int64))
        ltv = prof["lifetime_value"].to_numpy(dtype=float)
        by_ltv = np.argsort(-ltv, kind="stable")
        hit = {"version": ver, "profiles": prof, "by_ltv": by_ltv, "ltv": ltv,
               "keys": idx["key"].to_numpy(dtype=object) if idx is not None else np.array([], dtype=object),
               "kpos": kpos}
        _CACHE[key] = hit
    return hit[what]


def load_profiles(store: Store, ws: str) -> pd.DataFrame:
    """The profiles table (cached per process until the data changes)."""
    return _cached(store, ws, "profiles")


SORTS = {"lifetime_value", "total_orders", "last_order_date", "days_since_last_order", "email_engagement_score",
         "name", "subscription_mrr", "support_tickets", "avg_order_value"}


def search_customers(store: Store, ws: str, q: str = "", sort: str | None = None, page: int = 1,
                     page_size: int = 25) -> dict[str, Any]:
    """Customers whose email, name, phone or id starts with ``q`` (all customers when empty), paginated.

    ``sort``: a column of :data:`SORTS`, prefixed ``-`` for descending (default: best prefix match first, then
    lifetime value descending).
    """
    if page < 1:
        raise ValueError(f"page must be 1 or more (got {page})")
    if not 1 <= page_size <= 500:
        raise ValueError(f"page_size must be between 1 and 500 (got {page_size})")
    prof = load_profiles(store, ws)
    qn = _norm(q)
    if qn:
        keys = _cached(store, ws, "keys")
        kpos = _cached(store, ws, "kpos")
        cands = [qn]
        dq = _digits(qn)
        if dq and len(dq) >= 3 and dq != qn:
            cands.append(dq)  # "(201) 555-01" → "20155501"
        found_p, found_r = [], []
        for c in cands:
            lo = np.searchsorted(keys, c, side="left")
            hi = np.searchsorted(keys, c + "\uffff", side="left")
            found_p.append(kpos[lo:hi])
            found_r.append((keys[lo:hi] != c).astype(np.int8))  # 0 = exact match, 1 = prefix
        pp, rr = np.concatenate(found_p), np.concatenate(found_r)
        keep = pp >= 0
        pp, rr = pp[keep], rr[keep]
        order = np.lexsort((rr, pp))  # by person, best rank first; keep one row per person
        pp, rr = pp[order], rr[order]
        first = np.r_[True, pp[1:] != pp[:-1]] if len(pp) else np.zeros(0, dtype=bool)
        pos, rank = pp[first], rr[first]
    else:
        pos, rank = np.arange(len(prof)), np.zeros(len(prof), dtype=np.int8)
    sort = sort or ""
    desc = sort.startswith("-")
    col = sort.lstrip("-")
    if col and col not in SORTS:
        raise ValueError(f"sort must be one of {', '.join(sorted(SORTS))} (optionally prefixed '-'), got {sort!r}")
    if col == "name":
        sub = prof.iloc[pos]
        frame = pd.DataFrame({"a": sub["last_name"].fillna("").str.casefold().to_numpy(),
                              "b": sub["first_name"].fillna("").str.casefold().to_numpy(), "p": pos})
        order = frame.sort_values(["a", "b"], ascending=not desc, kind="stable")["p"].to_numpy()
    elif col:
        vals = pd.Series(prof[col].to_numpy()[pos], index=pos)
        order = vals.sort_values(ascending=not desc, kind="stable", na_position="last").index.to_numpy()
    elif not qn:
        order = _cached(store, ws, "by_ltv")  # the whole base by lifetime value, computed once per data version
    else:
        order = pos[np.lexsort((-_cached(store, ws, "ltv")[pos], rank))]  # exact matches first, then value
    total = len(order)
    page_pos = order[(page - 1) * page_size: page * page_size]
    items = [_profile_json(r) for r in prof.iloc[page_pos].to_dict("records")]
    return {"items": items, "total": int(total), "page": page, "page_size": page_size,
            "pages": int((total + page_size - 1) // page_size), "q": q, "sort": sort or None}


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, str | bool | int):
        return v
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.date().isoformat()
    if isinstance(v, float) and np.isnan(v):
        return None
    if v is pd.NaT or (not isinstance(v, str | list | dict) and pd.isna(v)):
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _profile_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: _jsonable(v) for k, v in row.items()}
    out["id"] = out["person_id"]
    out["name"] = " ".join(x for x in (out.get("first_name"), out.get("last_name")) if x) or None
    out["sources"] = [s for s in (out.get("sources") or "").split(",") if s]
    return out


def customer_detail(store: Store, ws: str, person_id: str, limit: int | None = 500) -> dict[str, Any]:
    """Profile, timeline (newest first, every source) and the identities merged into the person."""
    prof = load_profiles(store, ws)
    if person_id not in prof.index:
        raise KeyError(person_id)
    profile = _profile_json(prof.loc[person_id].to_dict())
    p = int(_person_part([person_id])[0])
    ev = _read(store, _k(ws, "person_events", f"part-{p:03d}.parquet"))
    ev = ev[ev["person_id"] == person_id] if ev is not None else empty_events()
    ip = int(_part(pd.Series([person_id], dtype=object), N_IDENTITY_PARTS)[0])
    records = _read(store, _k(ws, "identities", f"part-{ip:02d}.parquet"))
    identities = []
    if records is not None:
        counts = ev.groupby("record_id").size() if len(ev) else pd.Series(dtype=int)
        for r in records[records["person_id"] == person_id].drop(columns="person_id").to_dict("records"):
            r = {k: _jsonable(v) for k, v in r.items()}
            r["events"] = int(counts.get(r["record_id"], 0))
            identities.append(r)
        identities.sort(key=lambda r: (-r["events"], r["source"] or "", r["record_id"]))
    merges_out = []
    merges = _read(store, _k(ws, "person_merges", f"part-{ip:02d}.parquet"))
    if merges is not None and len(merges):
        m = merges[merges["person_id"] == person_id].drop(columns="person_id")
        merges_out = [{k: _jsonable(v) for k, v in r.items()} for r in m.head(200).to_dict("records")]
    sources = sorted(set(ev["source"])) if len(ev) else []
    return {"profile": profile, "timeline": timeline(ev, limit=limit), "timeline_total": int(len(ev)),
            "identities": identities, "merges": merges_out, "sources": sources}
