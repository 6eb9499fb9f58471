"""The customer-data refresh over the stored Parquet events with DuckDB, for bases of any size.

The pandas path (``core.cdp.records.build_records`` on one frame of every event) needs every event in memory at
once: about 19 GB as a DataFrame at a million customers. Here the event segments are scanned by DuckDB, which
aggregates and partitions them out of core (spilling to a temporary folder when memory is short):

- :func:`build_records` — the same person records as ``core.cdp.records.build_records`` (the same record ids, the
  latest non-empty value per identifier with ties broken by event id, one link record per extra email, phone or
  browser id), computed by a hash aggregation over the segments;
- :func:`split_by_person` — every event with its record and person id, written into one Parquet file per person
  partition, so that profiles and the person-event partitions are then built one partition at a time.

On S3 the segments are downloaded to a temporary folder first (the Lambda's ``/tmp`` or the job worker's disk).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.cdp.events import EVENT_COLUMNS
from core.cdp.records import RECORD_COLUMNS
from functions.storage import LocalStore, Store

__all__ = ["local_files", "connect", "build_records", "split_by_person"]

_VALUE_COLS = ("email", "phone", "first_name", "last_name", "address", "city", "postcode")
_EXTRA_COLS = ("email", "phone", "anonymous_id")


@contextmanager
def local_files(store: Store, keys: list[str]) -> Iterator[list[str]]:
    """Local paths of ``keys``: the files themselves in a :class:`LocalStore`, downloaded copies otherwise."""
    if isinstance(store, LocalStore):
        yield [str(store.root / k) for k in keys]
        return
    tmp = Path(tempfile.mkdtemp(prefix="gl-seg-"))
    try:
        paths = []
        for i, k in enumerate(keys):
            p = tmp / f"{i:06d}.parquet"
            p.write_bytes(store.read_bytes(k))
            paths.append(str(p))
        yield paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def connect(spill_dir: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection that spills to a temporary folder instead of failing when memory is short."""
    tmp = Path(tempfile.mkdtemp(prefix="gl-duck-", dir=spill_dir))
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET temp_directory = '{tmp.as_posix()}'")
        # DuckDB would take 80% of the machine by default while pandas holds the records beside it: cap it and
        # let it spill (GROWTHLENS_DUCKDB_MEMORY, e.g. "2GB" in a small Lambda)
        con.execute(f"SET memory_limit = '{os.environ.get('GROWTHLENS_DUCKDB_MEMORY', '4GB')}'")
        con.execute("SET preserve_insertion_order = false")
        yield con
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _events_view(con: duckdb.DuckDBPyConnection, paths: list[str]) -> None:
    """View ``ev``: the stored events (the greatest version per event id when a revision was stored), with the
    record id of each event (NULL without a customer or browser id), as ``core.cdp.records.record_keys``."""
    cols = ", ".join(EVENT_COLUMNS)
    con.execute(f"CREATE OR REPLACE VIEW raw AS SELECT {cols} FROM read_parquet({paths!r}, union_by_name = true)")
    dup = con.execute("SELECT count(*) - count(DISTINCT event_id) FROM raw").fetchall()[0][0]
    src = "raw"
    if dup:
        con.execute("CREATE OR REPLACE VIEW dedup AS SELECT * FROM raw "
                    "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY version DESC) = 1")
        src = "dedup"
    con.execute(f"""
        CREATE OR REPLACE VIEW ev AS SELECT *,
          CASE WHEN source_customer_id IS NULL AND anonymous_id IS NULL AND nullif(trim(email), '') IS NULL
               THEN NULL
               ELSE 'r_' || substr(sha1(source || chr(31) || CASE WHEN source_customer_id IS NOT NULL
                    THEN 'c' || chr(31) || source_customer_id WHEN anonymous_id IS NOT NULL
                    THEN 'a' || chr(31) || anonymous_id ELSE 'e' || chr(31) || lower(trim(email)) END), 1, 16)
          END AS record_id
        FROM {src}""")


def build_records(con: duckdb.DuckDBPyConnection, paths: list[str]) -> pd.DataFrame:
    """Person records of the events in ``paths`` (Parquet event segments), as ``core.cdp.records.build_records``:
    primary records sorted by id, then the link records. Also leaves the ``ev`` view on ``con``."""
    _events_view(con, paths)
    latest = ",\n".join(f"arg_max({c}, (time, event_id)) FILTER (WHERE {c} IS NOT NULL) AS {c}"
                        for c in ("source_customer_id", "anonymous_id", *_VALUE_COLS))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE prim AS
        SELECT record_id, arg_max(source, (time, event_id)) AS source, {latest}
        FROM ev WHERE record_id IS NOT NULL GROUP BY record_id""")
    cols = ", ".join(RECORD_COLUMNS)
    parts = [f"SELECT {cols}, -1 AS kind FROM prim"]
    for kind, col in enumerate(_EXTRA_COLS):
        values = ", ".join(f"e.{c}" if c == col else f"NULL AS {c}" for c in RECORD_COLUMNS[3:])
        parts.append(f"""
            SELECT DISTINCT 'r_' || substr(sha1(e.record_id || chr(31) || '{col}' || chr(31) || e.{col}), 1, 16)
                   AS record_id, e.source, e.source_customer_id, {values}, {kind} AS kind
            FROM ev e JOIN prim p ON e.record_id = p.record_id
            WHERE e.{col} IS NOT NULL AND e.source_customer_id IS NOT NULL AND e.{col} IS DISTINCT FROM p.{col}""")
    df = con.execute(f"SELECT {cols} FROM ({' UNION ALL '.join(parts)}) ORDER BY kind, record_id").df()
    df = df.astype(object)
    return df.where(df.notna(), None).reset_index(drop=True)


def split_by_person(con: duckdb.DuckDBPyConnection, clusters: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write every event that belongs to a person (view ``ev`` from :func:`build_records`) with its ``person_id``
    into ``out_dir/part=N/*.parquet`` by ``clusters.part``; returns the folders written, by partition number."""
    cl = clusters[["record_id", "person_id", "part"]].copy()
    cl["part"] = cl["part"].astype(np.int32)
    con.register("cl_df", cl)
    out = Path(out_dir)
    cols = ", ".join(f"ev.{c}" for c in EVENT_COLUMNS)
    con.execute(f"""COPY (SELECT {cols}, ev.record_id, cl_df.person_id, cl_df.part
                     FROM ev JOIN cl_df ON ev.record_id = cl_df.record_id)
                    TO '{out.as_posix()}' (FORMAT parquet, PARTITION_BY (part), OVERWRITE_OR_IGNORE)""")
    con.unregister("cl_df")
    return sorted((p for p in out.glob("part=*") if p.is_dir()), key=lambda p: int(p.name.split("=")[1]))
