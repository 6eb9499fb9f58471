"""Keys, partitioning and small helpers shared by the customer data store modules."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from functions.storage import KeyNotFound, Store, ws_key

N_PARTS = 16  # event partitions (by event id)
N_PERSON_PARTS = 256  # person-event partitions (by person id): a profile page reads one
N_IDENTITY_PARTS = 32  # per-person records and merges, for the profile page
PROFILE_BATCH_EVENTS = 2_000_000  # a full refresh computes profiles over this many events at a time
MAX_REASONS = 50


def cdp_key(ws: str, *parts: str) -> str:
    """Key of a customer-data file of workspace ``ws``: ``workspaces/{ws}/cdp/...``."""
    return ws_key(ws, "cdp", *parts)


def part_of(values: pd.Series, n: int = N_PARTS) -> np.ndarray:
    """Partition number of each value (stable across processes: a hash, not Python's ``hash``)."""
    uniq, inv = np.unique(values.astype(str).to_numpy(), return_inverse=True)
    parts = np.array([int(hashlib.md5(u.encode()).hexdigest()[:8], 16) % n for u in uniq], dtype=int)
    return parts[inv]


def person_part(person_ids: Iterable[str]) -> np.ndarray:
    """Person-event partition of each person id (md5: stable across processes)."""
    return part_of(pd.Series(list(person_ids), dtype=object), N_PERSON_PARTS)


def read_table(store: Store, key: str) -> pd.DataFrame | None:
    """The table at ``key``, or None when absent."""
    try:
        return store.read_table(key)
    except KeyNotFound:
        return None


def read_state(store: Store, ws: str) -> dict[str, Any] | None:
    """``state.json``: size and version of the derived customer base (None before the first refresh)."""
    try:
        return store.read_json(cdp_key(ws, "state.json"))
    except KeyNotFound:
        return None


def nulls_as_none(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns with ``None`` for missing values (as built), whatever Parquet read back (NaN, str dtype)."""
    df = df.astype(object)
    return df.where(df.notna(), None)
