"""Identity resolution inside the store: person records → clusters, the stored normalised records and model for
neighbourhood re-resolution, and the per-person copies (``identities/``, ``person_merges/``) a profile page reads.
Written only by the refresh writer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from core.cdp.events import empty_events
from core.cdp.records import RECORD_COLUMNS
from core.cdp.search import SEARCH_FIELDS, build_search_index, splice_index
from functions.cdp.common import N_IDENTITY_PARTS, cdp_key, nulls_as_none, part_of, read_table
from functions.storage import KeyNotFound, Store

Resolver = Any


def default_resolver() -> Resolver:
    """The identity resolution engine (imported on first use: it loads matching models)."""
    from core.cdp.identity import resolve

    return resolve


def records_equal(a: pd.DataFrame | None, b: pd.DataFrame) -> bool:
    if a is None or len(a) != len(b):
        return False
    cols = list(RECORD_COLUMNS)
    x = a[cols].sort_values("record_id").fillna("").astype(str).reset_index(drop=True)
    y = b[cols].sort_values("record_id").fillna("").astype(str).reset_index(drop=True)
    return x.equals(y)


def resolve_all(store: Store, ws: str, records: pd.DataFrame, prev_clusters: pd.DataFrame | None,
             resolver: Resolver | None) -> pd.DataFrame:
    """Resolve every record; store records, clusters, merges and, for later neighbourhood resolutions, the
    normalised records and the fitted model."""
    resolve = resolver or default_resolver()
    res = resolve(records, previous=prev_clusters if prev_clusters is not None and not prev_clusters.empty
                  else None)
    clusters = res.clusters[["record_id", "person_id"]].astype(str).astype(object)
    prepared = getattr(res, "prepared", None)
    model = getattr(res, "model", None)
    if prepared is not None and model and model.get("comparisons") and len(prepared) == len(records):
        store.write_table(cdp_key(ws, "prepared.parquet"), prepared)
        store.write_json(cdp_key(ws, "identity_model.json"), model)
    else:  # a custom resolver, or a base too small to fit a model: no neighbourhood resolution later
        store.delete(cdp_key(ws, "prepared.parquet"))
    write_resolution(store, ws, records, clusters, getattr(res, "merges", None))
    return clusters


def write_resolution(store: Store, ws: str, records: pd.DataFrame, clusters: pd.DataFrame,
                      merges: pd.DataFrame | None, persons: set[str] | None = None) -> None:
    if merges is not None:
        merges = merges.astype({c: str for c in merges.columns if merges[c].dtype == object})
        store.write_table(cdp_key(ws, "merges.parquet"), merges)
    store.write_table(cdp_key(ws, "records.parquet"), records)
    store.write_table(cdp_key(ws, "clusters.parquet"), clusters)
    write_identities(store, ws, records, clusters, merges, persons)


def write_identities(store: Store, ws: str, records: pd.DataFrame, clusters: pd.DataFrame,
                      merges: pd.DataFrame | None, persons: set[str] | None = None) -> None:
    """Per-person copies of the records and merges, in N_IDENTITY_PARTS partitions by person, so that a profile
    page reads a small file instead of every record of the base; only the partitions of ``persons`` (None: all)."""
    cl = clusters[["record_id", "person_id"]]
    upid = pd.unique(cl["person_id"])
    ppart = pd.Series(part_of(pd.Series(upid, dtype=object), N_IDENTITY_PARTS), index=upid)
    rec = records.merge(cl, on="record_id", how="inner")
    rec_p = rec["person_id"].map(ppart).to_numpy()
    if merges is None:
        merges = read_table(store, cdp_key(ws, "merges.parquet"))
    mg = merges if merges is not None else pd.DataFrame(columns=["record_a", "record_b"])
    mg = mg.assign(person_id=mg["record_a"].map(cl.set_index("record_id")["person_id"]))
    mg_p = mg["person_id"].map(ppart).to_numpy()
    wanted = set(range(N_IDENTITY_PARTS)) if persons is None else set(
        part_of(pd.Series(sorted(persons), dtype=object), N_IDENTITY_PARTS)) if persons else set()
    for p in sorted(wanted):
        store.write_table(cdp_key(ws, "identities", f"part-{p:02d}.parquet"), rec[rec_p == p].reset_index(drop=True))
        store.write_table(cdp_key(ws, "person_merges", f"part-{p:02d}.parquet"), mg[mg_p == p].reset_index(drop=True))


def resolve_neighbourhood_stored(store: Store, ws: str, records: pd.DataFrame, is_old: pd.Series,
                           new_rows: pd.DataFrame, old_rows: pd.DataFrame,
                           prev_clusters: pd.DataFrame) -> pd.DataFrame | None:
    """Re-resolve only around the records that changed (see ``core.cdp.identity.resolve_neighbourhood``), with the
    stored normalised records and model; None when those are not stored (then a full resolution runs)."""
    from core.cdp.identity import prepare_records, resolve_neighbourhood

    prepared = read_table(store, cdp_key(ws, "prepared.parquet"))
    try:
        model = store.read_json(cdp_key(ws, "identity_model.json"))
    except KeyNotFound:
        return None
    if prepared is None or len(prepared) != len(records) or not (
            prepared["rid"].to_numpy(dtype=object) == records["record_id"].astype(str).to_numpy(dtype=object)).all():
        return None
    keep = ~is_old.to_numpy()
    prepared = nulls_as_none(prepared)
    all_records = nulls_as_none(pd.concat([records[keep], new_rows], ignore_index=True))
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
    merges = read_table(store, cdp_key(ws, "merges.parquet"))
    if merges is not None:
        touched = near_ids | gone
        merges = pd.concat([merges[~(merges["record_a"].isin(touched) | merges["record_b"].isin(touched))],
                            res.merges], ignore_index=True)
    store.write_table(cdp_key(ws, "prepared.parquet"), all_prepared)
    persons = set(res.clusters["person_id"]) | set(
        prev_clusters.loc[prev_clusters["record_id"].isin(near_ids | gone), "person_id"])
    write_resolution(store, ws, all_records, clusters, merges, persons)
    return clusters



def read_identity_parts(store: Store, ws: str, persons: set[str]) -> pd.DataFrame:
    """The stored records (with ``person_id``) of the identities partitions holding ``persons``."""
    parts = sorted(set(part_of(pd.Series(sorted(persons), dtype=object), N_IDENTITY_PARTS))) if persons else []
    frames = [f for f in (read_table(store, cdp_key(ws, "identities", f"part-{p:02d}.parquet")) for p in parts)
              if f is not None and len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*RECORD_COLUMNS, "person_id")})
    return nulls_as_none(pd.concat(frames, ignore_index=True))


def search_fields_changed(before: pd.DataFrame, after: pd.DataFrame, persons: set[str]) -> bool:
    """Whether any searchable profile field of ``persons`` changed (else their search keys stay as they are)."""
    a = before.loc[before["person_id"].isin(persons), SEARCH_FIELDS]
    b = after.loc[after["person_id"].isin(persons), SEARCH_FIELDS]
    return not _canon_frame(a).equals(_canon_frame(b))


def _canon_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype(object).where(df.notna(), "").astype(str).sort_values("person_id").reset_index(drop=True)


def read_person_parts(store: Store, ws: str, parts: Iterable[int]) -> pd.DataFrame:
    keys = [cdp_key(ws, "person_events", f"part-{p:03d}.parquet") for p in sorted(parts)]
    frames = [f for f in (read_table(store, k) for k in keys) if f is not None and len(f)]
    if not frames:
        out = empty_events()
        return out.assign(record_id=pd.Series(dtype=object), person_id=pd.Series(dtype=object))
    return pd.concat(frames, ignore_index=True)


def update_search_index(store: Store, ws: str, profiles: pd.DataFrame, records: pd.DataFrame,
                         clusters: pd.DataFrame, persons: set[str]) -> None:
    """Replace the search keys of ``persons`` only: their old rows out, their new rows spliced in (sorted)."""
    idx = read_table(store, cdp_key(ws, "search.parquet"))
    sub_c = clusters[clusters["person_id"].isin(persons)]
    fresh = build_search_index(profiles[profiles["person_id"].isin(persons)],
                               records[records["record_id"].isin(set(sub_c["record_id"]))], sub_c)
    store.write_table(cdp_key(ws, "search.parquet"), fresh if idx is None else splice_index(idx, fresh, persons))

