"""Rebuilding derived customer state from the event log: full (DuckDB over every segment, for bases of any size)
or incremental (only the records and persons of the events folded in). Called only by the refresh writer
(:mod:`functions.cdp.refresh`), which holds the workspace's lock and the watermark."""

from __future__ import annotations

import hashlib
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from core.cdp.events import EVENT_COLUMNS
from core.cdp.profiles import compute_profiles, touched_persons, update_profiles
from core.cdp.records import build_records, record_keys
from core.cdp.search import build_search_index
from functions.cdp.activity_store import (
    activity_tokens,
    delete_stale,
    heal_activity,
    parts_to_heal,
    write_activity_parts,
)
from functions.cdp.common import PROFILE_BATCH_EVENTS, cdp_key, person_part, read_state, read_table
from functions.cdp.identities import (
    Resolver,
    read_identity_parts,
    read_person_parts,
    records_equal,
    resolve_all,
    resolve_neighbourhood_stored,
    search_fields_changed,
    update_search_index,
    write_identities,
)
from functions.cdp_bulk import build_records as bulk_records
from functions.cdp_bulk import connect, local_files, split_by_person
from functions.storage import Store

__all__ = ["refresh_full", "refresh_incremental", "write_state", "as_of_day", "person_events_table"]


def as_of_day(t: pd.Timestamp) -> pd.Timestamp:
    """"Now" for recency figures: the end of the day of the newest event (moves once a day, not per event)."""
    return pd.Timestamp(t).tz_convert("UTC").floor("D") + pd.Timedelta(days=1)


def refresh_full(store: Store, ws: str, segs: list[str], resolver: Resolver | None = None,
                 full: bool = False) -> dict[str, Any]:
    """Rebuild every derived table from the event segments ``segs`` with DuckDB, one person partition at a time
    (records re-resolved when they changed or ``full``)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if not segs:
        return {"persons": 0, "recomputed": 0, "timings": timings}
    with connect() as con, local_files(store, segs) as paths:
        timings["load_events"] = time.perf_counter() - t0
        t = time.perf_counter()
        records = bulk_records(con, paths)
        n_events, newest = con.execute("SELECT count(*), max(time) FROM ev").fetchall()[0]
        by_source = dict(con.execute("SELECT source, count(*) FROM ev GROUP BY source").fetchall())
        as_of = as_of_day(pd.Timestamp(newest))
        timings["records"] = time.perf_counter() - t
        t = time.perf_counter()
        prev_clusters = read_table(store, cdp_key(ws, "clusters.parquet"))
        prev_records = read_table(store, cdp_key(ws, "records.parquet"))
        resolved = full or prev_clusters is None or not records_equal(prev_records, records)
        clusters = resolve_all(store, ws, records, prev_clusters, resolver) if resolved else prev_clusters
        if not resolved and not store.list(cdp_key(ws, "identities") + "/"):  # a store from before identities/
            write_identities(store, ws, records, clusters, None)
        timings["resolve"] = time.perf_counter() - t
        t = time.perf_counter()
        cl = clusters.assign(part=person_part(clusters["person_id"]))
        frames: list[pd.DataFrame] = []
        written: set[str] = set()
        tokens: dict[int, str] = {}
        with tempfile.TemporaryDirectory(prefix="gl-persons-") as tmp:
            dirs = split_by_person(con, cl, tmp)
            timings["split"] = time.perf_counter() - t
            t = time.perf_counter()
            t_write = t_activity = 0.0
            group: list[tuple[int, pd.DataFrame]] = []
            for i, d in enumerate(dirs):  # partitions in groups of about PROFILE_BATCH_EVENTS events
                ev = pd.concat([pd.read_parquet(f) for f in sorted(d.glob("*.parquet"))], ignore_index=True)
                group.append((int(d.name.split("=")[1]), ev.drop(columns=[c for c in ("part",) if c in ev])))
                if sum(len(g) for _, g in group) < PROFILE_BATCH_EVENTS and i < len(dirs) - 1:
                    continue
                batch = pd.concat([g for _, g in group], ignore_index=True)
                frames.append(compute_profiles(batch, as_of=as_of))
                tw = time.perf_counter()
                for p, g in group:
                    key = cdp_key(ws, "person_events", f"part-{p:03d}.parquet")
                    store.write_table(key, person_events_table(g))
                    written.add(key)
                ta = time.perf_counter()
                t_write += ta - tw
                tokens.update(write_activity_parts(store, ws, batch, [p for p, _ in group], as_of, con))
                t_activity += time.perf_counter() - ta
                group, batch = [], None
        timings["profiles"] = time.perf_counter() - t - t_write - t_activity
        timings["activity"] = t_activity
    t = time.perf_counter()
    for key in store.list(cdp_key(ws, "person_events") + "/"):
        if key not in written:  # partitions left over from an earlier layout or with no person now
            store.delete(key)
    delete_stale(store, ws, set(tokens))
    profiles = pd.concat(frames, ignore_index=True).sort_values("person_id", kind="stable").reset_index(drop=True)
    store.write_table(cdp_key(ws, "profiles.parquet"), profiles)
    store.write_table(cdp_key(ws, "search.parquet"), build_search_index(profiles, records, clusters))
    write_state(store, ws, len(profiles), len(records), by_source, as_of, tokens)
    timings["write"] = time.perf_counter() - t + t_write
    return {"persons": int(len(profiles)), "recomputed": int(len(profiles)),
            "recomputed_ids": profiles["person_id"].head(100).tolist(), "resolved": resolved, "mode": "full",
            "timings": {k: round(v, 3) for k, v in timings.items()}}


def person_events_table(ev: pd.DataFrame) -> pd.DataFrame:
    """Events with their record and person, sorted by person and time (a person-event partition)."""
    cols = [*EVENT_COLUMNS, "record_id", "person_id"]
    return ev[cols].sort_values(["person_id", "time", "event_id"], kind="stable").reset_index(drop=True)


def write_state(store: Store, ws: str, persons: int, records: int, by_source: dict[str, int],
                as_of: pd.Timestamp, activity_parts: dict[int, str] | None = None) -> None:
    """``state.json``: the base's size, events per source (the sync log's ``accepted``), "now" of the recency
    figures, a fresh version (query caches reload on it) and the token of each person partition's activity
    tables (``activity_parts``: a reader reloads only the partitions whose token changed)."""
    events = int(sum(by_source.values()))
    state = {"version": hashlib.sha1(f"{events}|{time.time()}".encode()).hexdigest()[:12],
             "persons": int(persons), "records": int(records), "events": events,
             "sources": {str(k): int(v) for k, v in sorted(by_source.items())},
             "as_of": as_of.isoformat(), "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if activity_parts is not None:
        state["activity_parts"] = {str(p): str(t) for p, t in sorted(activity_parts.items())}
    store.write_json(cdp_key(ws, "state.json"), state)



def refresh_incremental(store: Store, ws: str, changed: pd.DataFrame, new_by_source: dict[str, int],
                        resolver: Resolver | None = None) -> dict[str, Any] | None:
    """Refresh after ``changed`` events, touching only their records and persons; None when a full refresh is
    needed instead (nothing built yet, or the newest event moved "now" to a later day)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    state = read_state(store, ws)
    profiles = read_table(store, cdp_key(ws, "profiles.parquet"))
    clusters = read_table(store, cdp_key(ws, "clusters.parquet"))
    if state is None or profiles is None or clusters is None or "as_of" not in state or not store.exists(
            cdp_key(ws, "records.parquet")) or not store.list(cdp_key(ws, "identities") + "/"):
        return None
    as_of = pd.Timestamp(state["as_of"])
    if changed.empty:
        healed = _heal(store, ws, activity_tokens(state), set(), as_of)
        if healed is not None:  # nothing new, but activity missing: written, and its tokens published
            write_state(store, ws, int(state.get("persons", 0)), int(state.get("records", 0)),
                        dict(state.get("sources") or {}), as_of, healed)
        return {"persons": int(len(profiles)), "recomputed": 0, "recomputed_ids": [], "resolved": False,
                "mode": "incremental", "timings": {}}
    if as_of_day(changed["time"].max()) > as_of:
        return None
    changed = changed[list(EVENT_COLUMNS)].copy()
    changed["record_id"] = record_keys(changed).to_numpy()
    touched_recs = set(changed["record_id"].dropna())
    pmap = clusters.set_index("record_id")["person_id"]
    old_persons = {pmap[r] for r in touched_recs if r in pmap.index}
    # the touched records' stored events live in the partitions of their persons
    parts = set(person_part(sorted(old_persons))) if old_persons else set()
    stored = read_person_parts(store, ws, parts)
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
    known = read_identity_parts(store, ws, old_persons)
    old_rows = known[old_mask(known)].drop(columns="person_id")
    records_changed = not records_equal(old_rows, new_rows)
    records = None
    if records_changed:
        records = read_table(store, cdp_key(ws, "records.parquet"))
        is_old = old_mask(records)
        old_rows = records[is_old]
    timings["records"] = time.perf_counter() - t

    t = time.perf_counter()
    prev_clusters = clusters
    neighbourhood = False
    if records_changed:
        out = None if resolver is not None else resolve_neighbourhood_stored(store, ws, records, is_old, new_rows,
                                                                       old_rows, prev_clusters)
        records = pd.concat([records[~is_old], new_rows], ignore_index=True)
        if out is None:
            clusters = resolve_all(store, ws, records, prev_clusters, resolver)
        else:
            clusters, neighbourhood = out, True
    timings["resolve"] = time.perf_counter() - t

    t = time.perf_counter()
    touched = touched_persons(prev_clusters, clusters, touched_recs) if records_changed else \
        {pmap[r] for r in touched_recs if r in pmap.index}
    if records_changed:  # persons whose records moved: their events may sit in other partitions
        moved = prev_clusters.merge(clusters, on="record_id", how="outer", suffixes=("_old", "_new"))
        moved = moved[moved["person_id_old"] != moved["person_id_new"]]
        more = set(person_part(sorted(set(moved["person_id_old"].dropna()) | touched)))
        if more - parts:
            stored = pd.concat([stored, read_person_parts(store, ws, more - parts)], ignore_index=True)
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
    ev_parts = person_part(ev["person_id"])
    rewritten = sorted(parts | set(person_part(sorted(touched))))
    for p in rewritten:
        store.write_table(cdp_key(ws, "person_events", f"part-{p:03d}.parquet"), person_events_table(ev[ev_parts == p]))
    ta = time.perf_counter()
    tokens = activity_tokens(state)
    tokens.update(write_activity_parts(store, ws, ev[np.isin(ev_parts, rewritten)], rewritten, as_of))
    tokens = _heal(store, ws, tokens, set(rewritten), as_of) or tokens
    timings["activity"] = time.perf_counter() - ta
    store.write_table(cdp_key(ws, "profiles.parquet"), profiles)
    if records_changed or search_fields_changed(before, profiles, touched | old_persons):
        if records is None:
            records = read_table(store, cdp_key(ws, "records.parquet"))
        update_search_index(store, ws, profiles, records, clusters, touched | old_persons)
    n_records = len(records) if records is not None else int(state.get("records", 0))
    by_source = dict(state.get("sources") or {})
    for src, n in new_by_source.items():
        by_source[src] = int(by_source.get(src, 0)) + int(n)
    write_state(store, ws, len(profiles), n_records, by_source, as_of, tokens)
    timings["write"] = time.perf_counter() - t - timings["activity"]
    return {"persons": int(len(profiles)), "recomputed": len(recomputed), "recomputed_ids": sorted(recomputed)[:100],
            "resolved": records_changed, "resolution": "neighbourhood" if neighbourhood else "full" if
            records_changed else "none", "mode": "incremental",
            "timings": {k: round(v, 3) for k, v in timings.items()}}


def _heal(store: Store, ws: str, tokens: dict[int, str], written: set[int],
          as_of: pd.Timestamp) -> dict[int, str] | None:
    """Write the activity of person partitions that lack it (a store from before activity existed), from their
    stored person events; the updated tokens, or None when nothing was missing."""
    missing = parts_to_heal(store, ws, tokens) - written
    if not missing:
        return None
    return {**tokens, **heal_activity(store, ws, missing, as_of)}
