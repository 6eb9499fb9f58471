"""Pure parts of the append-only event log: stable event-id hashes, membership in sorted hash arrays, the
log-structured compaction plan and the rule that picks one revision per event."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["event_hash", "in_sorted", "compaction_groups", "latest_revisions", "MAX_SEGMENTS"]

#: a partition never holds more segments than this: beyond it, a compaction merges them all
MAX_SEGMENTS = 32


def event_hash(ids: Iterable[str]) -> np.ndarray:
    """Stable 64-bit hash of each event id (blake2b; the same in every process and version)."""
    import hashlib

    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    return np.fromiter((int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(), "little")
                        for i in ids), dtype=np.uint64, count=len(ids))


def in_sorted(values: np.ndarray, sorted_arr: np.ndarray) -> np.ndarray:
    """Whether each of ``values`` occurs in the sorted array ``sorted_arr``."""
    if not len(sorted_arr) or not len(values):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_arr, values)
    pos[pos == len(sorted_arr)] = 0
    return sorted_arr[pos] == values


def compaction_groups(sizes: list[int], max_segments: int = MAX_SEGMENTS) -> list[tuple[int, int]]:
    """Runs ``(start, stop)`` of consecutive segments (oldest first, ``sizes`` rows each) to merge into one.

    As if the segments had been appended one at a time, each new one absorbing the ones before it while they are
    no larger in order of magnitude (log2 of rows), like carries in a binary counter: each event is rewritten
    O(log n) times and a partition holds O(log n) segments. More than ``max_segments`` left: all are merged."""
    stack: list[list[int]] = []  # [start, stop, rows]
    for i, n in enumerate(sizes):
        stack.append([i, i + 1, max(int(n), 1)])
        while len(stack) >= 2 and int(np.log2(stack[-1][2])) >= int(np.log2(stack[-2][2])):
            top = stack.pop()
            stack[-1][1], stack[-1][2] = top[1], stack[-1][2] + top[2]
    if len(stack) > max_segments:
        return [(0, len(sizes))]
    return [(a, b) for a, b, _ in stack if b - a > 1]


def latest_revisions(df: pd.DataFrame) -> pd.DataFrame:
    """One row per ``event_id``: the greatest ``version``; ties keep the earliest row (rows in write order)."""
    if not df["event_id"].duplicated().any():
        return df
    df = df.iloc[np.lexsort((-np.arange(len(df)), df["version"].astype(str).to_numpy(),
                             df["event_id"].astype(str).to_numpy()))]
    return df.drop_duplicates("event_id", keep="last").reset_index(drop=True)
