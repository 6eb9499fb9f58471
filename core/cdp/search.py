"""The customer search index: sorted (key, person) pairs built from profiles and source records, and prefix
lookups on it by binary search (fast enough for millions of customers, no search engine needed)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["norm", "digits", "build_search_index", "lookup"]

SEARCH_FIELDS = ["person_id", "first_name", "last_name", "email", "phone"]


def norm(s: Any) -> str:
    """Search form of a value: accents folded, case-folded, trimmed ("" for missing)."""
    if s is None or (isinstance(s, float) and np.isnan(s)):
        return ""
    s = unicodedata.normalize("NFKD", str(s))
    return "".join(c for c in s if not unicodedata.combining(c)).casefold().strip()


def digits(s: str) -> str:
    """The digits of ``s`` (phone search)."""
    return re.sub(r"\D", "", s)


def build_search_index(profiles: pd.DataFrame, records: pd.DataFrame | None = None,
                       clusters: pd.DataFrame | None = None) -> pd.DataFrame:
    """Sorted (key, person_id) pairs: every email, first name, last name, full name and phone (digits, with and
    without the country code) known for the person in any source, and the person id. A prefix search is then a
    binary search, fast enough for millions of customers."""
    cols = SEARCH_FIELDS
    frames = [profiles[cols].astype(object)]
    if records is not None and clusters is not None and len(records):
        r = records.merge(clusters, on="record_id", how="inner")
        frames.append(r[cols].astype(object))
    src = pd.concat(frames, ignore_index=True).drop_duplicates()
    if src.empty:
        return pd.DataFrame({"key": pd.Series(dtype=str), "person_id": pd.Series(dtype=str)})
    pid = src["person_id"].astype(str)
    first = src["first_name"].map(norm)
    last = src["last_name"].map(norm)
    email = src["email"].map(norm)
    phone = src["phone"].map(lambda v: digits(norm(v)))
    keys = [email, first, last, (first + " " + last).str.strip(), (last + " " + first).str.strip(), phone,
            phone.str[-10:], pid.str.casefold()]
    df = pd.concat([pd.DataFrame({"key": k.to_numpy(dtype=object), "person_id": pid.to_numpy(dtype=object)})
                    for k in keys], ignore_index=True)
    df = df[df["key"].str.len() > 0].drop_duplicates()
    return df.sort_values("key", kind="stable").reset_index(drop=True)


def splice_index(index: pd.DataFrame, fresh: pd.DataFrame, persons: set[str]) -> pd.DataFrame:
    """``index`` with the keys of ``persons`` replaced by ``fresh`` (sorted insertion, no full re-sort)."""
    keep = index[~index["person_id"].isin(persons)]
    keys = keep["key"].to_numpy(dtype=object)
    pos = np.searchsorted(keys, fresh["key"].to_numpy(dtype=object), side="right")
    return pd.DataFrame({"key": np.insert(keys, pos, fresh["key"].to_numpy(dtype=object)),
                         "person_id": np.insert(keep["person_id"].to_numpy(dtype=object), pos,
                                                fresh["person_id"].to_numpy(dtype=object))})


def lookup(keys: np.ndarray, kpos: np.ndarray, q: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the persons whose keys start with ``q`` (already normalised), one per person, with a rank
    (0 exact match, 1 prefix). ``kpos``: the person position of each key (-1 for none)."""
    cands = [q]
    dq = digits(q)
    if dq and len(dq) >= 3 and dq != q:
        cands.append(dq)  # "(201) 555-01" → "20155501"
    found_p, found_r = [], []
    for c in cands:
        lo = np.searchsorted(keys, c, side="left")
        hi = np.searchsorted(keys, c + "\uffff", side="left")
        found_p.append(kpos[lo:hi])
        found_r.append((keys[lo:hi] != c).astype(np.int8))
    pp, rr = np.concatenate(found_p), np.concatenate(found_r)
    keep = pp >= 0
    pp, rr = pp[keep], rr[keep]
    order = np.lexsort((rr, pp))  # by person, best rank first; keep one row per person
    pp, rr = pp[order], rr[order]
    first = np.r_[True, pp[1:] != pp[:-1]] if len(pp) else np.zeros(0, dtype=bool)
    return pp[first], rr[first]
