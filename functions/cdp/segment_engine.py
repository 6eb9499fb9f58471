"""Evaluating segment rules on a workspace's customers: one DuckDB database per process and workspace, holding the
profiles and the precomputed activity tables as the refresh writer last published them.

The tables are loaded once and then kept current by partition: ``state.json`` lists a token per person partition
of the activity tables, and only partitions whose token changed are replaced (in one transaction, so a query sees
either the old or the new rows). Profiles are reloaded whole when the data version changes (one columnar read).
Queries run on their own cursors, so requests in parallel threads do not wait for each other.

Inside the database a person is keyed by a 64-bit hash of the person id (``person_id``; the id itself is
``person_key``), so the joins between behaviour tables and profiles compare integers, not strings: at a million
customers that is most of a behavioural preview's cost. Two ids sharing a hash (odds about 1 in 10^7 at 10^6
customers) would share their behaviour counts.

A rule is compiled to one parameterised statement (:mod:`core.cdp.segment_sql`); values never enter the SQL text.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core.cdp.activity import Activity
from core.cdp.fields import catalogue
from core.cdp.segment_sql import compile_predicate
from core.cdp.segments import parse_rule
from functions.cdp.activity_store import TABLES, activity_tokens, listed_parts
from functions.cdp.common import cdp_key, read_state
from functions.cdp_bulk import local_files
from functions.storage import Store

__all__ = ["SegmentEngine", "engine_for", "Preview"]

_SORT = {"activity": "event, day", "activity_props": "prop, event, value, day", "activity_windows": "event"}
SAMPLE_COLUMNS = ("person_id", "first_name", "last_name", "email", "lifetime_value", "total_orders",
                  "last_order_date", "subscription_status")
_ENGINES: dict[tuple[int, str], SegmentEngine] = {}
_ENGINES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Preview:
    """What a rule selects right now: size, share, value, and a sample of customers."""

    count: int
    base: int
    avg_ltv: float | None
    avg_orders: float | None
    revenue_12m: float | None
    avg_churn_risk: float | None
    sample: list[dict[str, Any]]
    elapsed_ms: float
    as_of: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (with the share of the base)."""
        return {"count": self.count, "base": self.base, "share": (self.count / self.base) if self.base else 0.0,
                "avg_ltv": self.avg_ltv, "avg_orders": self.avg_orders, "revenue_12m": self.revenue_12m,
                "avg_churn_risk": self.avg_churn_risk, "sample": self.sample, "elapsed_ms": self.elapsed_ms,
                "as_of": self.as_of}


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 2)


class SegmentEngine:
    """The evaluation database of one workspace (see the module docstring)."""

    def __init__(self, store: Store, ws: str) -> None:
        self.store, self.ws = store, ws
        # a database file in a private temporary folder: its tables are stored compressed and paged, so a base of
        # a million customers (about 90M behaviour rows) stays within the memory limit instead of ~15 GB in RAM
        self._dir = tempfile.TemporaryDirectory(prefix="gl-segments-")
        self.con = duckdb.connect(os.path.join(self._dir.name, "segments.duckdb"))
        self.con.execute("SET threads TO 2")
        self.con.execute("SET memory_limit = ?", [os.environ.get("GROWTHLENS_SEGMENT_MEMORY", "2GB")])
        self.con.execute("SET temp_directory = ?", [os.path.join(self._dir.name, "spill")])
        self.con.execute("SET preserve_insertion_order = false")
        self._lock = threading.Lock()
        self.version: str | None = None
        self.tokens: dict[int, str] = {}
        self.as_of: pd.Timestamp | None = None
        self.columns: list[str] = []
        self.base = 0
        self._known: tuple[str | None, dict[str, list[str]]] | None = None

    # -- loading ---------------------------------------------------------------------------------------------------
    def sync(self) -> dict[str, Any]:
        """Bring the tables up to the published state (cheap when nothing changed); raises ``LookupError`` before
        the first refresh."""
        state = read_state(self.store, self.ws)
        if state is None:
            raise LookupError("no customer data yet: sync a source (POST /api/sync/{source}/batch or "
                              "growthlens sync DIR)")
        if state["version"] == self.version:
            return state
        with self._lock:
            if state["version"] != self.version:
                self._load(state)
        return state

    def _load(self, state: dict[str, Any]) -> None:
        tokens = activity_tokens(state)
        first = not self.tokens
        changed = sorted(tokens) if first else sorted(p for p, t in tokens.items() if self.tokens.get(p) != t)
        drop = [] if first else sorted(set(changed) | (set(self.tokens) - set(tokens)))
        con = self.con
        prof_key = cdp_key(self.ws, "profiles.parquet")
        if not self.store.exists(prof_key):
            raise LookupError("no customer profiles yet: run a refresh")
        load = set(changed)
        wanted = {folder: [(key, p) for p, key in sorted(listed_parts(self.store, self.ws, folder).items())
                           if p in load] for _, folder in TABLES}
        pred_key = cdp_key(self.ws, "predictions.parquet")
        preds = [pred_key] if self.store.exists(pred_key) else []
        keys = [prof_key, *preds, *(k for files in wanted.values() for k, _ in files)]
        with local_files(self.store, keys) as paths:  # the files themselves locally, downloads from S3
            local = dict(zip(keys, paths, strict=True))
            con.execute("BEGIN TRANSACTION")
            try:
                if preds:  # churn risk, predicted value, health and next action are profile traits too
                    con.execute("CREATE OR REPLACE TABLE profiles AS SELECT hash(p.person_id) AS person_id, "
                                "p.person_id AS person_key, p.* EXCLUDE (person_id), q.* EXCLUDE (person_id, part) "
                                "FROM read_parquet(?) AS p LEFT JOIN read_parquet(?) AS q USING (person_id)",
                                [local[prof_key], local[pred_key]])
                else:
                    con.execute("CREATE OR REPLACE TABLE profiles AS SELECT hash(person_id) AS person_id, "
                                "person_id AS person_key, * EXCLUDE (person_id) FROM read_parquet(?)",
                                [local[prof_key]])
                for name, folder in TABLES:
                    rows, params = self._rows(name, [(local[k], p) for k, p in wanted[folder]])
                    if first:  # sorted so that zone maps skip row groups of other events and days
                        con.execute(f"CREATE OR REPLACE TABLE {folder} AS {rows} ORDER BY {_SORT[folder]}", params)
                    else:
                        if drop:
                            con.execute(f"DELETE FROM {folder} WHERE part IN (SELECT unnest(?::INTEGER[]))", [drop])
                        con.execute(f"INSERT INTO {folder} BY NAME {rows}", params)
                since = (pd.Timestamp(state["as_of"]) - pd.Timedelta(days=365)).date() if state.get("as_of") \
                    else None
                con.execute("CREATE OR REPLACE TABLE revenue_12m AS SELECT person_id, sum(amount) AS amount "
                            "FROM activity WHERE event = 'order' AND amount <> 0 "
                            "AND day >= coalesce(?, DATE '1900-01-01') GROUP BY person_id", [since])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                self.tokens, self.version = {}, None
                raise
        self.columns = [c for c, in con.execute("SELECT column_name FROM (DESCRIBE profiles)").fetchall()
                        if c not in ("person_id", "person_key")]  # the id is a key, not a trait
        self.base = int(con.execute("SELECT count(*) FROM profiles").fetchone()[0])
        self.tokens = dict(tokens)
        self.as_of = pd.Timestamp(state["as_of"]) if state.get("as_of") else None
        self.version = state["version"]

    def _rows(self, name: str, files: list[tuple[str, int]]) -> tuple[str, list[Any]]:
        """A SELECT of one activity table's partition ``files`` (local path, partition), persons hashed, with a
        ``part`` column, read by DuckDB straight from Parquet (streamed: no copy of the table in Python). Missing
        partitions are empty: a base written before activity existed heals at its next refresh."""
        self.con.execute("CREATE OR REPLACE TEMP TABLE _files (file VARCHAR, part SMALLINT)")
        if files:
            self.con.executemany("INSERT INTO _files VALUES (?, ?)", files)
            return ("SELECT hash(a.person_id) AS person_id, a.* EXCLUDE (person_id, filename), f.part "
                    "FROM read_parquet(?, filename = true, union_by_name = true) AS a "
                    "JOIN _files AS f ON a.filename = f.file", [[f for f, _ in files]])
        empty = pa.Table.from_pandas(getattr(Activity.empty(), name), preserve_index=False)
        self.con.register(f"_empty_{name}", empty)
        return (f"SELECT hash(person_id) AS person_id, * EXCLUDE (person_id), 0::SMALLINT AS part "
                f"FROM _empty_{name}", [])

    # -- queries ---------------------------------------------------------------------------------------------------
    def fields(self) -> list[Any]:
        """The field catalogue for this workspace's profile columns, with the values the data holds."""
        return catalogue(self.columns, self.known_values())

    def known_values(self, limit: int = 200) -> dict[str, list[str]]:
        """The most frequent values of free-text fields (location) and of event properties (products,
        campaigns, sources per event), for the builder's pickers; computed once per data version."""
        if self._known is not None and self._known[0] == self.version:
            return self._known[1]
        cur = self.con.cursor()
        out: dict[str, list[str]] = {}
        if "city" in self.columns:
            rows = cur.execute("SELECT city FROM profiles WHERE city IS NOT NULL AND city <> '' GROUP BY city "
                               "ORDER BY count(*) DESC, city LIMIT ?", [limit]).fetchall()
            out["location"] = [r[0] for r in rows]
        rows = cur.execute("""SELECT event, prop, value FROM (
                                SELECT event, prop, value, row_number() OVER (PARTITION BY event, prop
                                       ORDER BY sum(n) DESC, value) AS k
                                FROM activity_props GROUP BY event, prop, value) WHERE k <= ?
                              ORDER BY event, prop, k""", [limit]).fetchall()
        for event, prop, value in rows:
            out.setdefault(f"{event}.{prop}", []).append(value)
        rows = cur.execute("SELECT event, source FROM activity WHERE source <> '' GROUP BY event, source "
                           "ORDER BY event, source").fetchall()
        for event, source in rows:
            out.setdefault(f"{event}.source", []).append(source)
        self._known = (self.version, out)
        return out

    def _compile(self, rules: Any, lookup: Callable[[str], Any]) -> tuple[str, list[Any]]:
        rule = parse_rule(rules, columns=self.columns, lookup=lookup)
        q = compile_predicate(rule, as_of=self.as_of, lookup=lookup, columns=self.columns)
        return q.sql, list(q.params)

    def members(self, rules: Any, lookup: Callable[[str], Any]) -> np.ndarray:
        """Sorted person ids matching ``rules`` (``ValueError`` naming the rule path when invalid)."""
        self.sync()
        where, params = self._compile(rules, lookup)
        cur = self.con.cursor()
        rows = cur.execute(f"SELECT person_key FROM profiles AS p WHERE {where} ORDER BY person_key", params)
        return np.asarray(rows.fetchnumpy()["person_key"], dtype=object)

    def preview(self, rules: Any, lookup: Callable[[str], Any], sample: int = 20) -> Preview:
        """Count, averages, revenue of the last 12 months and the most valuable ``sample`` members."""
        t0 = time.perf_counter()
        state = self.sync()
        where, params = self._compile(rules, lookup)
        cur = self.con.cursor()
        churn = "avg(p.churn_risk)" if "churn_risk" in self.columns else "NULL"
        n, ltv, orders, risk, revenue = cur.execute(
            f"SELECT count(*), avg(p.lifetime_value), avg(p.total_orders), {churn}, coalesce(sum(r.amount), 0) "
            f"FROM profiles AS p LEFT JOIN revenue_12m AS r USING (person_id) WHERE {where}", params).fetchone()
        cols = ", ".join("p.person_key AS person_id" if c == "person_id" else f"p.{c}" for c in SAMPLE_COLUMNS)
        rows = cur.execute(f"SELECT {cols} FROM profiles AS p WHERE {where} "
                           f"ORDER BY p.lifetime_value DESC NULLS LAST, p.person_key LIMIT ?",
                           [*params, int(sample)]).fetchdf()
        return Preview(count=int(n), base=int(self.base), avg_ltv=_num(ltv), avg_orders=_num(orders),
                       revenue_12m=_num(revenue), avg_churn_risk=None if risk is None else round(float(risk), 4),
                       sample=[_sample_row(r) for r in rows.to_dict("records")],
                       elapsed_ms=round((time.perf_counter() - t0) * 1000, 1), as_of=state.get("as_of"))


def _sample_row(r: dict[str, Any]) -> dict[str, Any]:
    name = " ".join(x for x in (r.get("first_name"), r.get("last_name")) if isinstance(x, str) and x) or None
    last = r.get("last_order_date")
    return {"id": r["person_id"], "name": name, "email": r.get("email"), "lifetime_value": _num(r["lifetime_value"]),
            "total_orders": int(r["total_orders"]) if pd.notna(r["total_orders"]) else 0,
            "last_order_date": None if last is None or pd.isna(last) else pd.Timestamp(last).date().isoformat(),
            "subscription_status": r.get("subscription_status")}


def engine_for(store: Store, ws: str) -> SegmentEngine:
    """The process's engine for this store and workspace."""
    key = (id(store), ws)
    with _ENGINES_LOCK:
        eng = _ENGINES.get(key)
        if eng is None or eng.store is not store:
            eng = _ENGINES[key] = SegmentEngine(store, ws)
    return eng
