"""Events → person records, the input of identity resolution.

A *record* is what one tool knows about one of its customers: all events a source reports under the same
customer id (``source_customer_id``), or, for events without one, under the same anonymous browser id. Its
identifier values are the most recent non-empty ones. When a customer's events carry several distinct emails,
phones or browser ids, each extra value becomes a small *link record* with the same source customer id, so no
evidence is lost and resolution ties them back through the shared id. Record ids are a hash of the grouping key,
hence stable from one sync to the next.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

__all__ = ["RECORD_COLUMNS", "build_records", "record_keys"]

RECORD_COLUMNS: tuple[str, ...] = (
    "record_id", "source", "source_customer_id", "anonymous_id", "email", "phone", "first_name", "last_name",
    "address", "city", "postcode",
)
_VALUE_COLS = ("email", "phone", "first_name", "last_name", "address", "city", "postcode")
_EXTRA_COLS = ("email", "phone", "anonymous_id")


def _hash_ids(keys: pd.Series, prefix: str = "r_") -> pd.Series:
    codes, uniq = pd.factorize(keys.astype(str), sort=False)  # hash-based: linear in the number of events
    hashed = np.array([prefix + hashlib.sha1(str(k).encode()).hexdigest()[:16] for k in uniq], dtype=object)
    return pd.Series(hashed[codes], index=keys.index, dtype=object)


def record_keys(events: pd.DataFrame) -> pd.Series:
    """The record id of every event (aligned with ``events``): by the source's customer id, else its browser id,
    else (a guest checkout, a form fill) the email the event carries, so that identity resolution can attach it to
    its person; events with none of these get none."""
    scid = events["source_customer_id"]
    anon = events["anonymous_id"]
    email = events["email"].astype(object).where(events["email"].notna(), None) if "email" in events else \
        pd.Series(None, index=events.index, dtype=object)
    email = email.map(lambda e: e.strip(" ").lower() if isinstance(e, str) and e.strip(" ") else None)
    key = ("c\x1f" + scid).where(scid.notna(), ("a\x1f" + anon).where(anon.notna(), "e\x1f" + email.fillna("")))
    key = events["source"].astype(str) + "\x1f" + key.astype(str)
    ids = _hash_ids(key)
    ids[(scid.isna() & anon.isna() & email.isna()).to_numpy()] = None
    return ids


def build_records(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Build ``(records, event_record_id)`` from canonical events.

    ``records`` has :data:`RECORD_COLUMNS` (primary records first, then link records); ``event_record_id`` maps
    each event (same index as ``events``) to its primary record.
    """
    if events.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RECORD_COLUMNS}), pd.Series(dtype=object)
    rid = record_keys(events)
    cols = ["source", "source_customer_id", "anonymous_id", *_VALUE_COLS]
    df = events[["time", "event_id", *cols]].assign(record_id=rid.to_numpy()).dropna(subset=["record_id"])
    df = df.sort_values(["record_id", "time", "event_id"], kind="stable")  # ties: by event id, as everywhere
    # most recent non-empty value per record (groupby.last skips nulls)
    prim = df.groupby("record_id", sort=True)[cols].last().reset_index()
    # records keyed by a browser id keep it; customer-keyed records carry their latest browser id
    extras = []
    for col in _EXTRA_COLS:
        sub = df.loc[df[col].notna() & df["source_customer_id"].notna(), ["record_id", "source",
                                                                          "source_customer_id", col]]
        sub = sub.drop_duplicates(["record_id", col])
        sub = sub.merge(prim[["record_id", col]].rename(columns={col: "_chosen"}), on="record_id", how="left")
        sub = sub[sub[col] != sub["_chosen"]].drop(columns="_chosen")
        if len(sub):
            sub["record_id"] = _hash_ids(sub["record_id"] + "\x1f" + col + "\x1f" + sub[col].astype(str), "r_")
            extras.append(sub.sort_values("record_id", kind="stable"))
    records = pd.concat([prim, *extras], ignore_index=True) if extras else prim
    for c in RECORD_COLUMNS:
        if c not in records:
            records[c] = None
    records = records[list(RECORD_COLUMNS)].astype(object)
    records = records.where(records.notna(), None)
    return records.reset_index(drop=True), rid
