"""Reading the customer base: search (prefix lookups on the sorted key index) and the customer page (profile,
timeline, merged identities). Reads only what the refresh writer published; cached per process by the version in
``state.json``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.cdp.events import empty_events
from core.cdp.next_action import ACTIONS
from core.cdp.profiles import timeline
from core.cdp.search import lookup, norm
from functions.cdp.common import N_IDENTITY_PARTS, cdp_key, part_of, person_part, read_state, read_table
from functions.storage import Store

__all__ = ["load_profiles", "exact_matches", "search_customers", "customer_detail", "profile_json", "SORTS"]

_CACHE: dict[tuple[int, str], Any] = {}


def _cached(store: Store, ws: str, what: str) -> Any:
    state = read_state(store, ws)
    ver = state["version"] if state else "none"
    key = (id(store), ws)
    hit = _CACHE.get(key)
    if hit is None or hit["version"] != ver:
        prof = read_table(store, cdp_key(ws, "profiles.parquet"))
        idx = read_table(store, cdp_key(ws, "search.parquet"))
        if prof is None:
            raise LookupError("no customer data yet: sync a source (POST /api/sync/{source}/batch or "
                              "growthlens sync DIR)")
        pred = read_table(store, cdp_key(ws, "predictions.parquet"))
        if pred is not None and len(pred):  # churn risk, predicted value, health, next action beside each profile
            pred = pred.drop(columns=["part"], errors="ignore").drop_duplicates("person_id")
            prof = prof.merge(pred, on="person_id", how="left")
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
         "name", "subscription_mrr", "support_tickets", "avg_order_value", "churn_risk", "predicted_ltv",
         "next_order_date"}


def exact_matches(store: Store, ws: str, value: str) -> list[str]:
    """The persons with a search key (any email, name, phone or id from any source) equal to ``value``."""
    qn = norm(value)
    if not qn:
        return []
    pos, rank = lookup(_cached(store, ws, "keys"), _cached(store, ws, "kpos"), qn)
    return [str(p) for p in load_profiles(store, ws).index[pos[rank == 0]]]


def search_customers(store: Store, ws: str, q: str = "", sort: str | None = None, page: int = 1,
                     page_size: int = 25, members: np.ndarray | None = None) -> dict[str, Any]:
    """Customers whose email, name, phone or id starts with ``q`` (all customers when empty), paginated.

    ``sort``: a column of :data:`SORTS`, prefixed ``-`` for descending (default: best prefix match first, then
    lifetime value descending). ``members``: only these person ids (a segment's members).
    """
    if page < 1:
        raise ValueError(f"page must be 1 or more (got {page})")
    if not 1 <= page_size <= 500:
        raise ValueError(f"page_size must be between 1 and 500 (got {page_size})")
    prof = load_profiles(store, ws)
    qn = norm(q)
    if qn:
        pos, rank = lookup(_cached(store, ws, "keys"), _cached(store, ws, "kpos"), qn)
    else:
        pos, rank = np.arange(len(prof)), np.zeros(len(prof), dtype=np.int8)
    keep = None
    if members is not None:
        keep = np.zeros(len(prof), dtype=bool)
        at = prof.index.get_indexer(pd.Index(members, dtype=object))
        keep[at[at >= 0]] = True  # a member merged away since the snapshot is simply not shown
        sel = keep[pos]
        pos, rank = pos[sel], rank[sel]
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
    elif col and col not in prof.columns:
        raise ValueError(f"cannot sort by {col}: there are no predictions yet (the next refresh computes them)")
    elif col:
        vals = pd.Series(prof[col].to_numpy()[pos], index=pos)
        order = vals.sort_values(ascending=not desc, kind="stable", na_position="last").index.to_numpy()
    elif not qn and keep is None:
        order = _cached(store, ws, "by_ltv")  # the whole base by lifetime value, computed once per data version
    elif not qn:
        by_ltv = _cached(store, ws, "by_ltv")
        order = by_ltv[keep[by_ltv]]
    else:
        order = pos[np.lexsort((-_cached(store, ws, "ltv")[pos], rank))]  # exact matches first, then value
    total = len(order)
    page_pos = order[(page - 1) * page_size: page * page_size]
    items = [profile_json(r) for r in prof.iloc[page_pos].to_dict("records")]
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


def profile_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: _jsonable(v) for k, v in row.items()}
    out["id"] = out["person_id"]
    out["name"] = " ".join(x for x in (out.get("first_name"), out.get("last_name")) if x) or None
    out["sources"] = [s for s in (out.get("sources") or "").split(",") if s]
    if out.get("next_action"):
        out["next_action_label"] = ACTIONS.get(out["next_action"], out["next_action"])
    return out


def customer_detail(store: Store, ws: str, person_id: str, limit: int | None = 500) -> dict[str, Any]:
    """Profile, timeline (newest first, every source) and the identities merged into the person."""
    prof = load_profiles(store, ws)
    if person_id not in prof.index:
        raise KeyError(person_id)
    profile = profile_json(prof.loc[person_id].to_dict())
    p = int(person_part([person_id])[0])
    ev = read_table(store, cdp_key(ws, "person_events", f"part-{p:03d}.parquet"))
    ev = ev[ev["person_id"] == person_id] if ev is not None else empty_events()
    ip = int(part_of(pd.Series([person_id], dtype=object), N_IDENTITY_PARTS)[0])
    records = read_table(store, cdp_key(ws, "identities", f"part-{ip:02d}.parquet"))
    identities = []
    if records is not None:
        counts = ev.groupby("record_id").size() if len(ev) else pd.Series(dtype=int)
        for r in records[records["person_id"] == person_id].drop(columns="person_id").to_dict("records"):
            r = {k: _jsonable(v) for k, v in r.items()}
            r["events"] = int(counts.get(r["record_id"], 0))
            identities.append(r)
        identities.sort(key=lambda r: (-r["events"], r["source"] or "", r["record_id"]))
    merges_out = []
    merges = read_table(store, cdp_key(ws, "person_merges", f"part-{ip:02d}.parquet"))
    if merges is not None and len(merges):
        m = merges[merges["person_id"] == person_id].drop(columns="person_id")
        merges_out = [{k: _jsonable(v) for k, v in r.items()} for r in m.head(200).to_dict("records")]
    sources = sorted(set(ev["source"])) if len(ev) else []
    return {"profile": profile, "timeline": timeline(ev, limit=limit), "timeline_total": int(len(ev)),
            "identities": identities, "merges": merges_out, "sources": sources}
