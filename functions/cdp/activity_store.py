"""The stored behaviour tables (:mod:`core.cdp.activity`) of a workspace, by person partition.

Beside each person-event partition ``person_events/part-XXX.parquet`` the refresh writer keeps that partition's
``activity/part-XXX.parquet``, ``activity_props/part-XXX.parquet`` and ``activity_windows/part-XXX.parquet``
(written and deleted with it: a full refresh rewrites every partition and deletes stale ones, an incremental one
rewrites only the partitions it touches). ``state.json["activity_parts"]`` maps each partition to a short hash of
its three files (and "now"), so a reader that caches the tables reloads only the partitions whose token changed
(:func:`activity_tokens`, :func:`read_activity` with ``parts``). A store written before these tables existed is
healed by the next refresh (:func:`parts_to_heal`, :func:`heal_activity`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.cdp.activity import Activity, build_activity
from functions.cdp.common import PROFILE_BATCH_EVENTS, cdp_key, person_part
from functions.cdp.identities import read_person_parts
from functions.storage import KeyNotFound, Store

__all__ = ["TABLES", "activity_key", "activity_tokens", "listed_parts", "read_activity", "write_activity_parts",
           "stored_parts", "parts_to_heal", "heal_activity", "delete_stale"]

#: folder of each table, in the order of :class:`core.cdp.activity.Activity`'s fields
TABLES: tuple[tuple[str, str], ...] = (("daily", "activity"), ("props", "activity_props"),
                                       ("windows", "activity_windows"))


def activity_key(ws: str, folder: str, p: int) -> str:
    """Key of partition ``p`` of the table stored in ``folder`` (``activity``, ``activity_props``, ...)."""
    return cdp_key(ws, folder, f"part-{p:03d}.parquet")


def _part_of_key(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    if not (name.startswith("part-") and name.endswith(".parquet")):
        return None
    try:
        return int(name[5:-8])
    except ValueError:
        return None


def listed_parts(store: Store, ws: str, folder: str) -> dict[int, str]:
    out = {}
    for k in store.list(cdp_key(ws, folder) + "/"):
        p = _part_of_key(k)
        if p is not None:
            out[p] = k
    return out


def activity_tokens(state: dict[str, Any] | None) -> dict[int, str]:
    """Partition → token of its stored activity, from ``state.json`` (empty for a store without activity)."""
    return {int(p): str(t) for p, t in ((state or {}).get("activity_parts") or {}).items()}


def stored_parts(store: Store, ws: str) -> set[int]:
    """Partitions whose three activity files are all stored."""
    listed = [set(listed_parts(store, ws, folder)) for _, folder in TABLES]
    return set.intersection(*listed)


def read_activity(store: Store, ws: str, parts: Iterable[int] | None = None) -> Activity:
    """The stored activity of partitions ``parts`` (None: every stored partition) as one :class:`Activity`
    (read with Arrow and converted once: a few hundred small files in well under a second)."""
    wanted = sorted(stored_parts(store, ws) if parts is None else {int(p) for p in parts})
    empty = Activity.empty()
    tables = []
    for name, folder in TABLES:
        read = []
        for p in wanted:
            try:
                read.append(pq.read_table(io.BytesIO(store.read_bytes(activity_key(ws, folder, p)))))
            except KeyNotFound:
                continue
        read = [t for t in read if t.num_rows]
        if not read:
            tables.append(getattr(empty, name))
            continue
        tables.append(_to_pandas(pa.concat_tables(read, promote_options="permissive")))
    return Activity.of(*tables)


def _to_pandas(t: pa.Table) -> pd.DataFrame:
    return t.to_pandas(types_mapper=lambda typ: pd.ArrowDtype(pa.date32()) if typ == pa.date32() else None)


def _parquet(t: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf)
    return buf.getvalue()


def write_activity_parts(store: Store, ws: str, events: pd.DataFrame, parts: Iterable[int], as_of: pd.Timestamp,
                         con: duckdb.DuckDBPyConnection | None = None) -> dict[int, str]:
    """Build the activity of ``events`` (every person event of the person partitions ``parts``) and write it,
    one partition at a time; a partition with no events gets empty tables. Returns partition → token, a hash of
    the partition's three files and ``as_of`` (equal content, equal token)."""
    parts = sorted({int(p) for p in parts})
    if not parts:
        return {}
    act = build_activity(events, as_of, con)
    persons = pd.unique(act.windows["person_id"].to_numpy(dtype=object))
    pmap = pd.Series(person_part(persons), index=pd.Index(persons, dtype=object))
    empty = Activity.empty()
    slices: dict[str, dict[int, pa.Table]] = {}
    for name, _ in TABLES:
        df = getattr(act, name)
        table = pa.Table.from_pandas(df, preserve_index=False)
        key = pmap.reindex(pd.Index(df["person_id"].to_numpy(dtype=object), dtype=object)).to_numpy(dtype=np.int64) \
            if len(df) else np.zeros(0, dtype=np.int64)
        order = np.argsort(key, kind="stable")  # each partition's rows together, in their sorted order
        table, key = table.take(pa.array(order)), key[order]
        bounds = np.flatnonzero(np.diff(key)) + 1
        starts, ends = np.r_[0, bounds], np.r_[bounds, len(key)]
        slices[name] = {int(key[a]): table.slice(a, b - a) for a, b in zip(starts, ends, strict=True) if b > a}
        slices[name][-1] = pa.Table.from_pandas(getattr(empty, name), preserve_index=False)
    tokens = {}
    for p in parts:
        h = hashlib.sha1(pd.Timestamp(as_of).isoformat().encode())
        for name, folder in TABLES:
            data = _parquet(slices[name].get(p, slices[name][-1]))
            h.update(data)
            store.write_bytes(activity_key(ws, folder, p), data)
        tokens[p] = h.hexdigest()[:12]
    return tokens


def parts_to_heal(store: Store, ws: str, tokens: dict[int, str]) -> set[int]:
    """Person partitions whose activity is missing (a file, or its token): a store written before activity
    existed, or one whose activity files were removed. Lists the folders: a few requests, whatever the base."""
    events = set(listed_parts(store, ws, "person_events"))
    return (events - stored_parts(store, ws)) | (events - set(tokens))


def heal_activity(store: Store, ws: str, parts: Iterable[int], as_of: pd.Timestamp,
                  batch_events: int = PROFILE_BATCH_EVENTS) -> dict[int, str]:
    """Build and write the activity of ``parts`` from their stored person events, about ``batch_events`` events
    at a time (so healing a large base needs no more memory than a full refresh). Returns partition → token."""
    tokens: dict[int, str] = {}
    group: list[int] = []
    frames: list[pd.DataFrame] = []
    todo = sorted({int(p) for p in parts})
    for i, p in enumerate(todo):
        frames.append(read_person_parts(store, ws, [p]))
        group.append(p)
        if sum(len(f) for f in frames) < batch_events and i < len(todo) - 1:
            continue
        tokens.update(write_activity_parts(store, ws, pd.concat(frames, ignore_index=True), group, as_of))
        group, frames = [], []
    return tokens


def delete_stale(store: Store, ws: str, keep: set[int]) -> None:
    """Delete the activity files of partitions not in ``keep`` (a full refresh: persons gone, layout changed)."""
    for _, folder in TABLES:
        for p, key in listed_parts(store, ws, folder).items():
            if p not in keep:
                store.delete(key)
