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

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.cdp.activity import Activity
from core.cdp.fields import catalogue
from core.cdp.segment_sql import compile_predicate
from core.cdp.segments import parse_rule
from functions.cdp.activity_store import TABLES, activity_key, activity_tokens
from functions.cdp.common import cdp_key, read_state
from functions.storage import KeyNotFound, Store

__all__ = ["SegmentEngine", "engine_for", "Preview"]

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
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET threads TO 2")
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
        try:
            raw = self.store.read_bytes(cdp_key(self.ws, "profiles.parquet"))
        except KeyNotFound as e:
            raise LookupError("no customer profiles yet: run a refresh") from e
        profiles = pq.read_table(io.BytesIO(raw))
        tokens = activity_tokens(state)
        first = not self.tokens
        changed = sorted(tokens) if first else sorted(p for p, t in tokens.items() if self.tokens.get(p) != t)
        drop = [] if first else sorted(set(changed) | (set(self.tokens) - set(tokens)))
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.register("_profiles", profiles)
            con.execute("CREATE OR REPLACE TABLE profiles AS SELECT hash(person_id) AS person_id, "
                        "person_id AS person_key, * EXCLUDE (person_id) FROM _profiles")
            con.unregister("_profiles")
            for name, folder in TABLES:
                part = self._read_parts(folder, changed, name)
                con.register("_part", part)
                rows = "SELECT hash(person_id) AS person_id, * EXCLUDE (person_id) FROM _part"
                if first:
                    con.execute(f"CREATE OR REPLACE TABLE {folder} AS {rows}")
                else:
                    if drop:
                        con.execute(f"DELETE FROM {folder} WHERE part IN (SELECT unnest(?::INTEGER[]))", [drop])
                    con.execute(f"INSERT INTO {folder} {rows}")
                con.unregister("_part")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            self.tokens, self.version = {}, None
            raise
        self.tokens = dict(tokens)
        self.columns = [c for c in profiles.schema.names if c != "person_id"]  # the id is a key, not a trait
        self.base = profiles.num_rows
        self.as_of = pd.Timestamp(state["as_of"]) if state.get("as_of") else None
        self.version = state["version"]

    def _read_parts(self, folder: str, parts: list[int], name: str) -> pa.Table:
        """Partitions ``parts`` of one activity table as one Arrow table with a ``part`` column (missing
        partitions are empty: a base written before activity existed heals at its next refresh)."""
        tables = []
        for p in parts:
            try:
                t = pq.read_table(io.BytesIO(self.store.read_bytes(activity_key(self.ws, folder, p))))
            except KeyNotFound:
                continue
            if t.num_rows:
                tables.append(t.append_column("part", pa.array(np.full(t.num_rows, p, dtype=np.int16))))
        if not tables:
            empty = pa.Table.from_pandas(getattr(Activity.empty(), name), preserve_index=False)
            return empty.append_column("part", pa.array([], type=pa.int16()))
        return pa.concat_tables(tables, promote_options="permissive")

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
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _m AS SELECT p.person_id, p.lifetime_value, p.total_orders, "
                    f"{churn.replace('avg(', '(')} AS churn_risk FROM profiles AS p WHERE {where}", params)
        n, ltv, orders, risk = cur.execute(
            "SELECT count(*), avg(lifetime_value), avg(total_orders), avg(churn_risk) FROM _m").fetchone()
        revenue = None
        if self.as_of is not None:
            since = (self.as_of - pd.Timedelta(days=365)).date()
            revenue = cur.execute(
                "SELECT coalesce(sum(a.amount), 0) FROM activity AS a JOIN _m USING (person_id) "
                "WHERE a.event = 'order' AND a.day >= ?", [since]).fetchone()[0]
        cols = ", ".join("p.person_key AS person_id" if c == "person_id" else f"p.{c}" for c in SAMPLE_COLUMNS)
        rows = cur.execute(f"SELECT {cols} FROM profiles AS p JOIN _m USING (person_id) "
                           f"ORDER BY p.lifetime_value DESC NULLS LAST, p.person_key LIMIT ?", [int(sample)]
                           ).fetchdf()
        cur.execute("DROP TABLE IF EXISTS _m")
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
