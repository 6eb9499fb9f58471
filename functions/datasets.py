"""Versioned datasets in the store.

A workspace's marketing dataset is a set of canonical tables (see :mod:`core.data.schemas`): ``marketing`` (long
format: date, channel, spend, ...), ``kpis`` (date, revenue, orders, new_customers), ``external_factors``,
``campaigns``, ``journeys`` and ``controls`` — any subset, ``marketing`` required.

Layout::

    workspaces/{ws}/datasets/{version}/{table}.parquet   immutable, one folder per data version
    workspaces/{ws}/datasets/current.json                the pointer: {"version", "tables", "imported_at", ...}

The version is a hash of the tables' content. Publishing writes the table files first and the pointer last, so a
reader sees either the old dataset or the new one, never a mix; a rejected import writes nothing.
Derived results (models, attribution tables) are stored under ``workspaces/{ws}/results/{version}/...`` so they are
computed once per data version, by any process.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from functions.storage import KeyNotFound, Store, ws_key

__all__ = ["Dataset", "NoDataset", "publish_dataset", "load_dataset", "current_version", "result_key"]


class NoDataset(LookupError):
    """The workspace has no dataset yet."""


@dataclass
class Dataset:
    """A loaded dataset: its version and its tables by name."""

    version: str
    tables: dict[str, pd.DataFrame]
    meta: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        """The named table, or a ``LookupError`` that says which tables exist."""
        if name not in self.tables:
            raise NoDataset(f"the dataset has no {name!r} table (it has: {', '.join(sorted(self.tables))})")
        return self.tables[name]

    def has(self, name: str) -> bool:
        """Whether the dataset holds the named table."""
        return name in self.tables


def _table_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def content_version(tables: dict[str, pd.DataFrame]) -> str:
    """A short hash of the tables' content (order of tables irrelevant)."""
    h = hashlib.sha256()
    for name in sorted(tables):
        h.update(name.encode())
        h.update(pd.util.hash_pandas_object(tables[name], index=False).values.tobytes())
        h.update(",".join(map(str, tables[name].columns)).encode())
    return h.hexdigest()[:16]


def publish_dataset(store: Store, workspace: str, tables: dict[str, pd.DataFrame], **meta: Any) -> str:
    """Store validated tables as a new data version and make it current; return the version."""
    if "marketing" not in tables:
        raise ValueError("a dataset needs a 'marketing' table")
    version = content_version(tables)
    for name, df in tables.items():
        store.write_bytes(ws_key(workspace, "datasets", version, f"{name}.parquet"), _table_bytes(df))
    pointer = {
        "version": version,
        "tables": sorted(tables),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **meta,
    }
    store.write_json(ws_key(workspace, "datasets", "current.json"), pointer)
    _CACHE.pop((id(store), workspace), None)
    return version


def current_version(store: Store, workspace: str) -> dict[str, Any]:
    """The current pointer document, or :class:`NoDataset`."""
    try:
        return store.read_json(ws_key(workspace, "datasets", "current.json"))
    except KeyNotFound as e:
        raise NoDataset(
            "no data yet: import a dataset (POST /api/data/import or `growthlens import`) or run the demo"
        ) from e


_CACHE: dict[tuple[int, str], Dataset] = {}
_LOCK = threading.Lock()


def load_dataset(store: Store, workspace: str) -> Dataset:
    """Load the current dataset, cached in memory per process and data version (warm Lambdas reuse it)."""
    pointer = current_version(store, workspace)
    version = pointer["version"]
    cache_key = (id(store), workspace)
    with _LOCK:
        hit = _CACHE.get(cache_key)
        if hit is not None and hit.version == version:
            return hit
    tables = {
        name: store.read_table(ws_key(workspace, "datasets", version, f"{name}.parquet"))
        for name in pointer["tables"]
    }
    for df in tables.values():
        for col in ("date", "start_date", "end_date"):
            if col in df.columns:
                df[col] = pd.to_datetime(df[col])
    ds = Dataset(version=version, tables=tables, meta=pointer)
    with _LOCK:
        _CACHE[cache_key] = ds
    return ds


def result_key(workspace: str, version: str, *parts: str) -> str:
    """Key for a result derived from a data version, e.g. ``result_key(ws, v, "mmm", "model.json")``."""
    return ws_key(workspace, "results", version, *parts)
