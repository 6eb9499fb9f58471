"""Ingestion: deliveries and exports → events appended to the log, a sync-log entry, then a refresh request.

Any number of processes may ingest at once: they only append segments and write entries of their own. Derived
state (records, clusters, profiles, search) is the refresh writer's (:mod:`functions.cdp.refresh`): after storing,
:func:`ingest_batch` asks for a catch-up, inline under the workspace's lock or as a queued ``cdp_refresh`` job
(``GROWTHLENS_CDP_REFRESH=job``). A delivery that only repeats stored events still asks, so a refresh that
crashed earlier is caught up by the next delivery or replay.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.cdp.events import EVENT_COLUMNS, Event, empty_events, events_to_frame
from core.cdp.limits import check_json
from core.cdp.sources import adapter, iter_row_chunks, parse_rows, read_rows
from functions.cdp import eventlog as seglog
from functions.cdp.common import MAX_REASONS, N_PARTS
from functions.cdp.synclog import Delivery, record_delivery
from functions.storage import Store

__all__ = ["ingest_events", "ingest_batch", "ingest_file", "request_refresh"]


def _fingerprint(df: pd.DataFrame) -> pd.Series:
    cols = [c for c in EVENT_COLUMNS if c != "event_id"]
    return pd.util.hash_pandas_object(df[cols].astype(str), index=False).astype(str)


def ingest_events(store: Store, ws: str, events: list[Event] | pd.DataFrame) -> dict[str, Any]:
    """Append the events that are new or newer revisions, one segment per partition; returns the counts and the
    events taken (``changed``). Safe to run in many processes at once: a segment compacted away while it was
    being checked makes the check start over on a fresh listing."""
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
    h = df.pop("h").to_numpy(np.uint64) if "h" in df else seglog.event_hash(df["event_id"])
    parts = (h % np.uint64(N_PARTS)).astype(int)
    taken: list[pd.DataFrame] = []
    dup = 0
    for p in np.unique(parts):
        sel = parts == p
        new, hn = df[sel].reset_index(drop=True), h[sel]
        for _attempt in range(20):
            try:
                take = _new_or_newer(store, seglog.segments(store, ws).get(int(p), []), new, hn)
                break
            except seglog.SegmentMoved:
                continue
        else:
            raise RuntimeError(f"event partition {p} kept changing while events were checked against it")
        dup += int((~take).sum())
        if take.any():
            seglog.append_segment(store, ws, int(p), new[take], hn[take])
            taken.append(new[take])
    changed = pd.concat(taken, ignore_index=True) if taken else empty_events()
    return {"accepted": int(len(changed)), "duplicates": dup, "changed_ids": changed["event_id"].tolist(),
            "changed": changed}


def _new_or_newer(store: Store, keys: list[str], new: pd.DataFrame, hn: np.ndarray) -> np.ndarray:
    hit = seglog.contains(store, keys, hn)
    take = ~hit
    if hit.any():  # stored before (or a hash collision): only a strictly newer version is taken
        stored = seglog.read_partition(store, keys, columns=["event_id", "version"])
        prev = new.loc[hit, "event_id"].map(stored.set_index("event_id")["version"])
        take[hit] = (prev.isna() | (new.loc[hit, "version"].astype(str) > prev.fillna("").astype(str))).to_numpy()
    return take


def request_refresh(store: Store, ws: str, resolver: Any = None) -> dict[str, Any]:
    """Ask the workspace's writer to fold in what is not reflected yet: inline (under the workspace lock) or,
    with ``GROWTHLENS_CDP_REFRESH=job``, as a queued ``cdp_refresh`` job (one queued per workspace at a time)."""
    if resolver is None and os.environ.get("GROWTHLENS_CDP_REFRESH", "inline").strip().lower() == "job":
        from functions.jobs import submit

        job = submit(store, ws, "cdp_refresh", {})
        return {"mode": "queued", "job": job["id"]}
    from functions.cdp.refresh import catch_up

    return catch_up(store, ws, resolver=resolver)


def ingest_batch(store: Store, ws: str, source: str, body: bytes | str | list[Any], content_type: str | None = None,
                 topic: str | None = None, mode: str = "batch", rebuild: bool = True,
                 resolver: Any = None) -> dict[str, Any]:
    """Parse an export (JSON array, wrapped JSON, NDJSON or CSV) or a webhook payload of ``source``, append its
    events, log the delivery and (``rebuild``) have the writer catch up.

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
        record_delivery(store, ws, Delivery(mod.SOURCE, result.received, 0, 0, len(result.rejected), mode),
                        result.rejected)
        raise ValueError(f"no {mod.SOURCE} record could be read; first problem: {result.rejected[0][1]}")
    stored = ingest_events(store, ws, result.events)
    entry = record_delivery(store, ws, Delivery(mod.SOURCE, result.received, len(result.events),
                                                stored["accepted"], len(result.rejected), mode), result.rejected)
    out: dict[str, Any] = {
        "source": mod.SOURCE, "received": result.received, "events": len(result.events),
        "accepted": stored["accepted"], "duplicates": stored["duplicates"],
        "rejected": [{"record": i, "reason": r} for i, r in result.rejected[:MAX_REASONS]],
        "rejected_count": len(result.rejected), "last_sync": entry.time,
    }
    if rebuild:
        out["refresh"] = request_refresh(store, ws, resolver)
    return out


def _parse_chunk(args: tuple[str, str | None, int, list[Any]]) -> tuple[pd.DataFrame, int, list[tuple[int, str]]]:
    """Parse one chunk of export rows to the canonical events table (runs in a worker process for big files)."""
    source, topic, start, rows = args
    res = parse_rows(adapter(source).parse, rows, topic, start=start)
    frame = events_to_frame(res.events)
    frame["h"] = seglog.event_hash(frame["event_id"])  # here, in the worker, not in the process that stores
    return frame, res.received, res.rejected


def _file_id(path: str | Path) -> str:
    """Content hash of an export file: a rerun of the same file is the same delivery in the sync log."""
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest_file(store: Store, ws: str, source: str, path: str | Path, topic: str | None = None,
                chunk_rows: int = 100_000, workers: int = 1) -> dict[str, Any]:
    """Load an export *file* of ``source`` in chunks of ``chunk_rows`` records, so memory stays bounded whatever
    its size: each chunk is parsed and appended as it is read (a malformed record or NDJSON line is rejected with
    its number, the others load); the sync-log entry (named by the file's content hash) is written at the end.
    With ``workers`` > 1, chunks are parsed in that many processes while this one stores them (in file order).
    Does not refresh profiles: call :func:`functions.cdp.refresh.catch_up` after the last file.

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
    entry = Delivery(mod.SOURCE, received, n_events, accepted, n_rejected, "batch", file_id=_file_id(path))
    record_delivery(store, ws, entry, rejected)
    if received and not n_events and n_rejected:
        raise ValueError(f"no {mod.SOURCE} record in {Path(path).name} could be read; first problem: "
                         f"{rejected[0][1]}")
    return {"source": mod.SOURCE, "file": str(path), "received": received, "events": n_events,
            "accepted": accepted, "duplicates": dups,
            "rejected": [{"record": i, "reason": r} for i, r in rejected], "rejected_count": n_rejected,
            "last_sync": entry.time}


def _webhook_rows(body: bytes | str) -> list[Any]:
    check_json(body, "the webhook body")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"the webhook body is not valid JSON: {e}") from e
    return payload if isinstance(payload, list) else [payload]
