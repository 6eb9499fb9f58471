"""Per-person behaviour tables that make segment previews fast: what each person did, by day, precomputed.

Three tables, built from person events (``core.cdp.events.EVENT_COLUMNS`` + ``record_id`` + ``person_id``) by
:func:`build_activity`:

- ``daily`` (the evaluation table ``activity``): ``person_id, event, source, day, n, amount`` — how many events of
  a type from a source a person had on a UTC day, and their money amount (orders refunded, voided or cancelled
  count as events but add no amount, as in the profiles' lifetime value).
- ``props`` (``activity_props``): ``person_id, event, day, prop, value, n`` — per person, event type, day and
  property value, how many events had that value. ``prop`` is ``product`` or ``campaign``; each event counts once
  per distinct value (an order with two lines of the same title counts once for it). Values are kept as written
  (empty ones dropped); comparisons are case-insensitive downstream.
- ``windows`` (``activity_windows``): ``person_id, event, n_7, n_30, n_60, n_90, n_180, n_365, n_all`` — events
  in the last K days (days d with ``as_of - K days <= d < as_of``) and ever, one row per person and event type
  they ever had, so a behaviour condition over a standard window needs no scan of the daily rows.

Property extraction (the same for every source, so a tool that writes these keys is understood whatever it is):

- product: the distinct ``properties.line_items[].title`` (Shopify orders), ``properties.items[]`` (GA4: item
  names as strings, or objects with ``item_name`` from the Measurement Protocol) and
  ``properties["Product Name"]`` (Klaviyo reviews);
- campaign: ``properties["Campaign Name"]`` (Klaviyo), else the Klaviyo ``Subject``, else ``utm_campaign`` or
  ``campaign`` (GA4 Measurement Protocol parameters, Shopify attributes), else the ``utm_campaign`` parameter of
  ``properties.page_location`` (GA4 page URLs).

The JSON is parsed by DuckDB, once per event for every path at once, vectorised over the frame (2 million events
in about 5 s on two cores, all three tables included, instead of ``json.loads`` per event in a Python loop).
Columns: strings as pandas ``str``, ``day`` as Arrow ``date32`` (DuckDB sees a ``DATE``, Parquet stores a
``date32``), counts ``int32``. Events without a person or a time are ignored; malformed ``properties`` count in
``daily`` and ``windows`` but add no property values.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "WINDOWS",
    "DAILY_COLUMNS",
    "PROPS_COLUMNS",
    "WINDOW_COLUMNS",
    "PROPS",
    "Activity",
    "build_activity",
]

WINDOWS: tuple[int, ...] = (7, 30, 60, 90, 180, 365)  # the precomputed "last K days" windows
PROPS: tuple[str, ...] = ("product", "campaign")
DAILY_COLUMNS: tuple[str, ...] = ("person_id", "event", "source", "day", "n", "amount")
PROPS_COLUMNS: tuple[str, ...] = ("person_id", "event", "day", "prop", "value", "n")
WINDOW_COLUMNS: tuple[str, ...] = ("person_id", "event", *(f"n_{k}" for k in WINDOWS), "n_all")

_STR = {"person_id", "event", "source", "prop", "value"}
_DATE = pd.ArrowDtype(pa.date32())


def _dtype(col: str) -> object:
    return str if col in _STR else _DATE if col == "day" else np.float64 if col == "amount" else np.int32


def _conform(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    """``df`` with exactly ``cols`` in the table's dtypes (whatever a reader or a concat produced)."""
    out = pd.DataFrame({c: df[c] if c in df else pd.Series(dtype=_dtype(c)) for c in cols})
    for c in cols:
        want = _dtype(c)
        if c == "day" and out[c].dtype != _DATE:
            out[c] = pd.array(pd.to_datetime(out[c]).dt.date if len(out) else [], dtype=_DATE)
        elif c != "day" and out[c].dtype != want:
            out[c] = out[c].astype(want)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class Activity:
    """The three behaviour tables of a set of persons (see the module docstring for their columns)."""

    daily: pd.DataFrame
    props: pd.DataFrame
    windows: pd.DataFrame

    @classmethod
    def empty(cls) -> Activity:
        """No persons: the three tables with their columns and dtypes and no rows."""
        return cls(*(_conform(pd.DataFrame(), cols) for cols in (DAILY_COLUMNS, PROPS_COLUMNS, WINDOW_COLUMNS)))

    @classmethod
    def concat(cls, parts: Iterable[Activity]) -> Activity:
        """The tables of disjoint sets of persons (e.g. person partitions) as one."""
        parts = list(parts)
        if not parts:
            return cls.empty()
        tables = []
        for name, cols in (("daily", DAILY_COLUMNS), ("props", PROPS_COLUMNS), ("windows", WINDOW_COLUMNS)):
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            tables.append(_conform(pd.concat(frames, ignore_index=True), cols) if frames
                          else getattr(cls.empty(), name))
        return cls(*tables)

    @classmethod
    def of(cls, daily: pd.DataFrame, props: pd.DataFrame, windows: pd.DataFrame) -> Activity:
        """The tables as stored or read back, conformed to the columns and dtypes."""
        return cls(_conform(daily, DAILY_COLUMNS), _conform(props, PROPS_COLUMNS), _conform(windows, WINDOW_COLUMNS))

    def select(self, persons: Iterable[str]) -> Activity:
        """Only the rows of ``persons``."""
        keep = set(persons)
        return Activity(*(t[t["person_id"].isin(keep)].reset_index(drop=True)
                          for t in (self.daily, self.props, self.windows)))


def _strings(col: pd.Series) -> pa.Array:
    """A string column as Arrow: zero-copy when pandas already holds it in Arrow (the ``str`` dtype)."""
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        return pa.array(col)
    return pa.Array.from_pandas(col.astype(object), type=pa.string())


def _arrow_events(events: pd.DataFrame) -> pa.Table:
    """The columns the tables need, with the UTC day of each event (computed here, not by the SQL session's
    time zone)."""
    t = pd.to_datetime(events["time"], utc=True)
    day = t.dt.tz_localize(None).to_numpy(dtype="datetime64[us]").astype("datetime64[D]")
    return pa.table({"person_id": _strings(events["person_id"]), "event": _strings(events["type"]),
                     "source": _strings(events["source"]),
                     "day": pa.array(day, type=pa.date32(), mask=np.asarray(t.isna())),
                     "p": _strings(events["properties"]),
                     "amount": pa.array(pd.to_numeric(events["amount"], errors="coerce").to_numpy(dtype=float)
                                        if "amount" in events else np.full(len(events), np.nan),
                                        from_pandas=True)})


# every path read from ``properties`` in one parse: x[1] .. x[8]
_PATHS = ["$.line_items", "$.items", '$."Product Name"', '$."Campaign Name"', "$.Subject", "$.utm_campaign",
          "$.campaign", "$.page_location"]


def _nz(expr: str) -> str:
    return f"nullif({expr}, '')"


_PRODUCTS = f"""list_distinct(list_filter(list_concat(
    coalesce(json_extract_string(x[1], '$[*].title'), []),
    coalesce(list_transform(json_extract(x[2], '$[*]'), lambda i: CASE json_type(i) WHEN 'VARCHAR' THEN i ->> '$'
                                                               WHEN 'OBJECT' THEN i ->> 'item_name' END), []),
    CASE WHEN json_type(x[3]) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE') THEN [x[3] ->> '$'] ELSE [] END
), lambda v: {_nz('v')} IS NOT NULL))"""

_CAMPAIGN = f"""coalesce({_nz("x[4] ->> '$'")}, CASE WHEN source = 'klaviyo' THEN {_nz("x[5] ->> '$'")} END,
    {_nz("x[6] ->> '$'")}, {_nz("x[7] ->> '$'")},
    {_nz("url_decode(replace(regexp_extract(x[8] ->> '$', '[?&]utm_campaign=([^&#]*)', 1), '+', ' '))")})"""


# an order that does not count as revenue (the profiles' rule): refunded, voided or cancelled
_VOID = """(event = 'order' AND (coalesce(TRY(p ->> '$.financial_status'), '') IN ('refunded', 'voided')
           OR TRY(p ->> '$.cancelled_at') IS NOT NULL))"""

_SMALL = 200_000  # below this many events a cursor of the shared database, above it a database of its own
_DB: dict[str, object] = {}
_DB_LOCK = threading.Lock()


def _cursor() -> duckdb.DuckDBPyConnection:
    """A connection of its own to this process's in-memory DuckDB (opening a database costs about 20 ms, a
    cursor well under one: a webhook's refresh builds one small partition)."""
    with _DB_LOCK:
        if _DB.get("pid") != os.getpid():  # none yet, or inherited from the parent of a fork
            _DB.update(pid=os.getpid(), db=duckdb.connect(":memory:"))
        return _DB["db"].cursor()  # type: ignore[union-attr]


def build_activity(events: pd.DataFrame, as_of: pd.Timestamp,
                   con: duckdb.DuckDBPyConnection | None = None) -> Activity:
    """The behaviour tables of the persons in ``events`` (person events, ``properties`` as JSON text), windows
    relative to ``as_of`` (a UTC midnight: the end of the newest event's day). ``con``: a DuckDB connection to
    run on (e.g. the refresh's, with its memory limit and spill folder); by default a cursor of a per-process
    in-memory database for small inputs, and a database of its own (freed after) for large ones."""
    if events is None or events.empty:
        return Activity.empty()
    as_of = pd.Timestamp(as_of)
    as_of = (as_of.tz_convert("UTC") if as_of.tzinfo else as_of.tz_localize("UTC")).tz_localize(None)
    own = con is None
    con = (_cursor() if len(events) < _SMALL else duckdb.connect(":memory:")) if own else con
    raw = f"_act_raw_{id(events):x}"
    daily_t = f"{raw}_daily"
    ev = f"(SELECT * FROM {raw} WHERE person_id IS NOT NULL AND event IS NOT NULL AND day IS NOT NULL)"
    try:
        con.register(raw, _arrow_events(events))
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {daily_t} AS
                        SELECT person_id, event, coalesce(source, '') AS source, day, count(*)::INTEGER AS n,
                               coalesce(sum(amount) FILTER (WHERE NOT {_VOID}), 0)::DOUBLE AS amount
                        FROM {ev} AS e GROUP BY ALL""")
        daily = _frame(con.sql(f"SELECT * FROM {daily_t} ORDER BY person_id, event, source, day"), DAILY_COLUMNS)
        props = _frame(con.sql(f"""
            WITH j AS (SELECT person_id, event, source, day, TRY(json_extract(p, {_PATHS!r})) AS x
                       FROM {ev} AS e WHERE p IS NOT NULL AND p <> '{{}}'),
                 v AS (SELECT person_id, event, day, {_PRODUCTS} AS products, {_CAMPAIGN} AS campaign
                       FROM j WHERE x IS NOT NULL),
                 pv AS (SELECT person_id, event, day, 'product' AS prop, unnest(products) AS value
                        FROM v WHERE len(products) > 0
                        UNION ALL
                        SELECT person_id, event, day, 'campaign' AS prop, campaign AS value
                        FROM v WHERE campaign IS NOT NULL)
            SELECT person_id, event, day, prop, value, count(*)::INTEGER AS n
            FROM pv GROUP BY ALL ORDER BY person_id, event, day, prop, value"""), PROPS_COLUMNS)
        sums = ", ".join(f"coalesce(sum(n) FILTER (WHERE day::TIMESTAMP >= ? AND day::TIMESTAMP < ?), 0)::INTEGER "
                         f"AS n_{k}" for k in WINDOWS)
        params = [v for k in WINDOWS for v in ((as_of - pd.Timedelta(days=k)).to_pydatetime(), as_of.to_pydatetime())]
        windows = _frame(con.sql(f"""SELECT person_id, event, {sums}, sum(n)::INTEGER AS n_all
                                     FROM {daily_t} GROUP BY person_id, event ORDER BY person_id, event""",
                                 params=params), WINDOW_COLUMNS)
    finally:
        if own:  # its temporary objects go with it
            con.close()
        else:
            con.execute(f"DROP TABLE IF EXISTS {daily_t}")
            con.unregister(raw)
    return Activity(daily, props, windows)


def _frame(rel: duckdb.DuckDBPyRelation, cols: tuple[str, ...]) -> pd.DataFrame:
    df = rel.to_arrow_table().to_pandas(types_mapper=lambda t: _DATE if t == pa.date32() else None)
    return _conform(df, cols)
