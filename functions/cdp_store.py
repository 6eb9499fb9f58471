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
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from core.cdp.events import EVENT_COLUMNS, Event, empty_events, events_to_frame
from core.cdp.profiles import compute_profiles, timeline, touched_persons, update_profiles
from core.cdp.records import build_records
from core.cdp.sources import SOURCES, adapter, read_rows
from functions.storage import KeyNotFound, Store, ws_key

__all__ = [
    "N_PARTS",
    "ingest_events",
    "ingest_batch",
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

N_PARTS = 16
MAX_REASONS = 50
Resolver = Callable[..., Any]


def _k(ws: str, *parts: str) -> str:
    return ws_key(ws, "cdp", *parts)


def _part(values: pd.Series) -> np.ndarray:
    """Partition number of each value (stable across processes: a hash, not Python's ``hash``)."""
    uniq, inv = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    parts = np.array([int(hashlib.md5(u.encode()).hexdigest()[:8], 16) % N_PARTS for u in uniq], dtype=int)
    return parts[inv]


def _read(store: Store, key: str) -> pd.DataFrame | None:
    try:
        return store.read_table(key)
    except KeyNotFound:
        return None


# --------------------------------------------------------------------------------------------------- events
def _fingerprint(df: pd.DataFrame) -> pd.Series:
    cols = [c for c in EVENT_COLUMNS if c not in ("event_id",)]
    return pd.util.hash_pandas_object(df[cols].astype(str), index=False).astype(str)


def ingest_events(store: Store, ws: str, events: list[Event] | pd.DataFrame) -> dict[str, Any]:
    """Store events idempotently; returns counts and the ids of events that are new or newer revisions."""
    df = events if isinstance(events, pd.DataFrame) else events_to_frame(list(events))
    if df.empty:
        return {"accepted": 0, "duplicates": 0, "changed_ids": []}
    df = df.copy()
    df["_fp"] = ""
    dups = df["event_id"].duplicated(keep=False)
    if dups.any():  # within the batch: one row per event id, newest version (ties: by content, deterministic)
        df.loc[dups, "_fp"] = _fingerprint(df[dups]).to_numpy()
        df = df.sort_values(["event_id", "version", "_fp"], kind="stable").drop_duplicates("event_id", keep="last")
    parts = _part(df["event_id"])
    changed: list[str] = []
    dup = 0
    for p in np.unique(parts):
        new = df[parts == p]
        key = _k(ws, "events", f"part-{p:02d}.parquet")
        old = _read(store, key)
        if old is None or old.empty:
            merged = new.drop(columns="_fp")
            changed.extend(new["event_id"])
        else:
            old_v = old.set_index("event_id")["version"]
            prev = new["event_id"].map(old_v)
            is_new = prev.isna()
            newer = prev.notna() & (new["version"].astype(str) > prev.fillna("").astype(str))
            take = new[is_new | newer]
            dup += int(len(new) - len(take))
            if take.empty:
                continue
            changed.extend(take["event_id"])
            merged = pd.concat([old[~old["event_id"].isin(take["event_id"])], take.drop(columns="_fp")],
                               ignore_index=True)
        merged = merged.sort_values("event_id", kind="stable").reset_index(drop=True)
        store.write_table(key, merged[list(EVENT_COLUMNS)])
    return {"accepted": len(changed), "duplicates": dup, "changed_ids": changed}


def load_events(store: Store, ws: str) -> pd.DataFrame:
    """Every stored event (all partitions)."""
    frames = []
    for key in store.list(_k(ws, "events") + "/"):
        if key.endswith(".parquet"):
            frames.append(store.read_table(key))
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_events()
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------------------- sync log
def _log_key(ws: str) -> str:
    return _k(ws, "sync_log.json")


def _update_log(store: Store, ws: str, source: str, received: int, accepted: int, duplicates: int,
                rejected: list[tuple[int, str]], mode: str) -> dict[str, Any]:
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
    s["rejected"] += len(rejected)
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
        out["refresh"] = refresh(store, ws, stored["changed_ids"], resolver=resolver)
    return out


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
            full: bool = False) -> dict[str, Any]:
    """Re-resolve identities (only when new records appeared) and recompute the profiles of touched persons.

    ``changed_ids``: event ids stored since the last refresh (None = treat all as changed). Returns timings and
    how many persons were recomputed.
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    events = load_events(store, ws)
    timings["load_events"] = time.perf_counter() - t0
    if events.empty:
        return {"persons": 0, "recomputed": 0, "timings": timings}
    t = time.perf_counter()
    records, ev_rec = build_records(events)
    events["record_id"] = ev_rec.to_numpy()
    timings["records"] = time.perf_counter() - t
    prev_clusters = _read(store, _k(ws, "clusters.parquet"))
    prev_records = _read(store, _k(ws, "records.parquet"))
    t = time.perf_counter()
    same_records = (prev_records is not None and prev_clusters is not None and not full
                    and set(prev_records["record_id"]) == set(records["record_id"])
                    and prev_records.set_index("record_id").sort_index().fillna("").astype(str).equals(
                        records.set_index("record_id").sort_index().fillna("").astype(str)))
    if same_records:
        clusters = prev_clusters
        resolved = False
    else:
        resolve = resolver or _default_resolver()
        res = resolve(records, previous=prev_clusters if prev_clusters is not None and not prev_clusters.empty
                      else None)
        clusters = res.clusters[["record_id", "person_id"]].astype(str)
        store.write_table(_k(ws, "records.parquet"), records)
        store.write_table(_k(ws, "clusters.parquet"), clusters)
        merges = getattr(res, "merges", None)
        if merges is not None:
            store.write_table(_k(ws, "merges.parquet"), merges.astype({c: str for c in merges.columns
                                                                       if merges[c].dtype == object}))
        resolved = True
    timings["resolve"] = time.perf_counter() - t
    pmap = clusters.set_index("record_id")["person_id"]
    events["person_id"] = events["record_id"].map(pmap)

    t = time.perf_counter()
    profiles = _read(store, _k(ws, "profiles.parquet"))
    # "now" for recency figures: the end of the day of the newest event (moves once a day, not per event)
    as_of = events["time"].max().floor("D") + pd.Timedelta(days=1)
    old_state = _read_state(store, ws)
    as_of_moved = old_state is not None and old_state.get("as_of") != as_of.isoformat()
    if profiles is None or full or changed_ids is None or as_of_moved:
        # days since last order and engagement decay are relative to the newest event: a newer "now" moves all
        profiles = compute_profiles(events, as_of=as_of)
        recomputed = set(profiles["person_id"])
    else:
        changed = set(changed_ids)
        changed_recs = set(events.loc[events["event_id"].isin(changed), "record_id"].dropna())
        touched = touched_persons(prev_clusters if resolved else clusters, clusters, changed_recs)
        profiles, recomputed = update_profiles(profiles, events, touched, as_of=as_of)
        profiles = profiles[profiles["person_id"].isin(set(clusters["person_id"]))]
    timings["profiles"] = time.perf_counter() - t
    t = time.perf_counter()
    store.write_table(_k(ws, "profiles.parquet"), profiles)
    store.write_table(_k(ws, "search.parquet"), build_search_index(profiles, records, clusters))
    _write_person_events(store, ws, events, None if len(recomputed) == len(profiles) else recomputed)
    timings["write"] = time.perf_counter() - t
    state = {"version": hashlib.sha1(f"{len(events)}|{time.time()}".encode()).hexdigest()[:12],
             "persons": int(len(profiles)), "records": int(len(records)), "events": int(len(events)),
             "as_of": as_of.isoformat(), "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
    store.write_json(_k(ws, "state.json"), state)
    _CACHE.clear()
    return {"persons": int(len(profiles)), "recomputed": len(recomputed), "recomputed_ids": sorted(recomputed)[:100],
            "resolved": resolved, "timings": {k: round(v, 3) for k, v in timings.items()}}


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


def _write_person_events(store: Store, ws: str, events: pd.DataFrame, persons: set[str] | None) -> None:
    ev = events[events["person_id"].notna()]
    parts = _part(ev["person_id"])
    wanted = set(range(N_PARTS)) if persons is None else set(_part(pd.Series(sorted(persons)))) if persons else set()
    for p in sorted(wanted):
        store.write_table(_k(ws, "person_events", f"part-{p:02d}.parquet"),
                          ev[parts == p].sort_values(["person_id", "time"]).reset_index(drop=True))


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
    p = int(_part(pd.Series([person_id]))[0])
    ev = _read(store, _k(ws, "person_events", f"part-{p:02d}.parquet"))
    ev = ev[ev["person_id"] == person_id] if ev is not None else empty_events()
    clusters = _read(store, _k(ws, "clusters.parquet"))
    records = _read(store, _k(ws, "records.parquet"))
    rids = set(clusters.loc[clusters["person_id"] == person_id, "record_id"]) if clusters is not None else set()
    identities = []
    if records is not None:
        counts = ev.groupby("record_id").size() if len(ev) else pd.Series(dtype=int)
        for r in records[records["record_id"].isin(rids)].to_dict("records"):
            r = {k: _jsonable(v) for k, v in r.items()}
            r["events"] = int(counts.get(r["record_id"], 0))
            identities.append(r)
        identities.sort(key=lambda r: (-r["events"], r["source"] or "", r["record_id"]))
    merges_out = []
    merges = _read(store, _k(ws, "merges.parquet"))
    if merges is not None and len(merges):
        m = merges[merges["record_a"].isin(rids) | merges["record_b"].isin(rids)]
        merges_out = [{k: _jsonable(v) for k, v in r.items()} for r in m.head(200).to_dict("records")]
    sources = sorted(set(ev["source"])) if len(ev) else []
    return {"profile": profile, "timeline": timeline(ev, limit=limit), "timeline_total": int(len(ev)),
            "identities": identities, "merges": merges_out, "sources": sources}
