"""Behaviour tables from person events: exact daily, property and window counts on planted events (window edges,
multi-item orders, nulls, malformed properties, empty input), and the DuckDB extraction against a plain
``json.loads`` reference on generated data."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.cdp.activity import (
    DAILY_COLUMNS,
    PROPS_COLUMNS,
    WINDOW_COLUMNS,
    WINDOWS,
    Activity,
    build_activity,
)
from core.cdp.events import EVENT_COLUMNS, empty_events, events_to_frame
from core.cdp.profiles import compute_profiles
from core.cdp.records import build_records
from core.cdp.sources import adapter
from core.demo.glowbeauty import FILES, generate_glowbeauty

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def _events(rows: list[tuple]) -> pd.DataFrame:
    """Person events from (person, type, source, time, properties) rows; properties a dict (JSON-encoded) or
    the raw text as stored."""
    ev = empty_events().reindex(range(len(rows)))
    ev["event_id"] = [f"e{i}" for i in range(len(rows))]
    ev["person_id"] = [r[0] for r in rows]
    ev["type"] = [r[1] for r in rows]
    ev["source"] = [r[2] for r in rows]
    ev["time"] = pd.to_datetime([r[3] for r in rows], utc=True, format="ISO8601")
    ev["properties"] = [json.dumps(r[4]) if isinstance(r[4], dict | list) else r[4] for r in rows]
    ev["record_id"] = ev["person_id"]
    return ev[[*EVENT_COLUMNS, "record_id", "person_id"]]


def _rows(df: pd.DataFrame) -> list[tuple]:
    df = df.drop(columns=["amount"], errors="ignore")  # amounts have a test of their own
    return [tuple(str(v) if isinstance(v, date) else v for v in r) for r in df.itertuples(index=False)]


def _order(*titles: str | None) -> dict:
    return {"order_id": 1, "line_items": [{"title": t, "quantity": 1} for t in titles]}


def test_daily_props_and_windows_are_exact():
    ev = _events([
        ("a", "order", "shopify", "2024-05-31T23:59:59Z", _order("Serum", "Serum", "Toner")),  # one order, 2 lines
        ("a", "order", "shopify", "2024-05-31T08:00:00Z", _order("Serum")),
        ("a", "order", "shopify", "2024-05-25T00:00:00Z", _order("Mask")),  # first day of the last 7
        ("a", "order", "shopify", "2024-05-24T23:59:59Z", _order("Mask")),  # just outside it
        ("a", "product_viewed", "ga4", "2024-05-30T10:00:00Z", {"items": ["Serum", "Serum", ""]}),
        ("a", "added_to_cart", "ga4", "2024-05-30T10:01:00Z", {"items": [{"item_name": "Toner"}, {"x": 1}, None]}),
        ("a", "email_opened", "klaviyo", "2024-03-03T12:00:00Z", {"Campaign Name": "Spring", "Subject": "Hi"}),
        ("a", "email_opened", "klaviyo", "2024-03-03T13:00:00Z", {"Subject": "Hello"}),  # subject as campaign
        ("a", "review_submitted", "klaviyo", "2023-06-02T00:00:00Z", {"Product Name": "Serum", "Rating": 5}),
        ("a", "review_submitted", "klaviyo", "2023-06-01T23:00:00Z", {"Product Name": "Serum"}),  # day 366
        ("b", "page_view", "ga4", "2024-05-02T00:00:00Z",
         {"page_location": "https://x.example/?utm_source=nl&utm_campaign=June+Sale%21&a=1"}),
        ("b", "page_view", "ga4", "2024-05-02T09:00:00Z", {"utm_campaign": "Direct"}),
        ("b", "ticket_created", "gorgias", "2024-05-02T09:00:00Z", {"Subject": "Where is my order"}),  # no campaign
        ("b", "web_event", "ga4", "2024-05-03T09:00:00-05:00", {"campaign": "MP"}),  # 14:00 UTC
        ("b", "order", "shopify", "2024-06-01T00:30:00Z", _order("Late")),  # after as_of: ever only
    ])
    act = build_activity(ev, AS_OF)
    assert _rows(act.daily) == [
        ("a", "added_to_cart", "ga4", "2024-05-30", 1),
        ("a", "email_opened", "klaviyo", "2024-03-03", 2),
        ("a", "order", "shopify", "2024-05-24", 1),
        ("a", "order", "shopify", "2024-05-25", 1),
        ("a", "order", "shopify", "2024-05-31", 2),
        ("a", "product_viewed", "ga4", "2024-05-30", 1),
        ("a", "review_submitted", "klaviyo", "2023-06-01", 1),
        ("a", "review_submitted", "klaviyo", "2023-06-02", 1),
        ("b", "order", "shopify", "2024-06-01", 1),
        ("b", "page_view", "ga4", "2024-05-02", 2),
        ("b", "ticket_created", "gorgias", "2024-05-02", 1),
        ("b", "web_event", "ga4", "2024-05-03", 1),
    ]
    assert _rows(act.props) == [
        ("a", "added_to_cart", "2024-05-30", "product", "Toner", 1),
        ("a", "email_opened", "2024-03-03", "campaign", "Hello", 1),
        ("a", "email_opened", "2024-03-03", "campaign", "Spring", 1),
        ("a", "order", "2024-05-24", "product", "Mask", 1),
        ("a", "order", "2024-05-25", "product", "Mask", 1),
        ("a", "order", "2024-05-31", "product", "Serum", 2),  # once per order, whatever its lines
        ("a", "order", "2024-05-31", "product", "Toner", 1),
        ("a", "product_viewed", "2024-05-30", "product", "Serum", 1),
        ("a", "review_submitted", "2023-06-01", "product", "Serum", 1),
        ("a", "review_submitted", "2023-06-02", "product", "Serum", 1),
        ("b", "order", "2024-06-01", "product", "Late", 1),
        ("b", "page_view", "2024-05-02", "campaign", "Direct", 1),
        ("b", "page_view", "2024-05-02", "campaign", "June Sale!", 1),
        ("b", "web_event", "2024-05-03", "campaign", "MP", 1),
    ]
    w = act.windows.set_index(["person_id", "event"])
    assert list(act.windows.columns) == list(WINDOW_COLUMNS)
    assert w.loc[("a", "order")].tolist() == [3, 4, 4, 4, 4, 4, 4]  # 05-25..05-31 in 7 days; 05-24 in 30
    assert w.loc[("a", "review_submitted")].tolist() == [0, 0, 0, 0, 0, 1, 2]  # 06-02 is day 365, 06-01 is 366
    assert w.loc[("a", "email_opened")].tolist() == [0, 0, 0, 2, 2, 2, 2]  # 90 days back: 03-03
    assert w.loc[("b", "page_view")].tolist() == [0, 2, 2, 2, 2, 2, 2]  # 05-02 is the first of the last 30
    assert w.loc[("b", "order")].tolist() == [0, 0, 0, 0, 0, 0, 1]  # on as_of itself: ever only
    assert len(act.windows) == 9


def test_window_edges_for_every_k():
    """An event on the first day of each window counts in it and not in the one just shorter; a day before
    counts only in the next wider one."""
    rows = []
    for k in WINDOWS:
        first = (AS_OF - pd.Timedelta(days=k)).isoformat()
        rows.append((f"p{k}", "login", "ga4", first, "{}"))
        rows.append((f"q{k}", "login", "ga4", (AS_OF - pd.Timedelta(days=k, seconds=1)).isoformat(), "{}"))
    w = build_activity(_events(rows), AS_OF).windows.set_index("person_id")
    for i, k in enumerate(WINDOWS):
        assert (w.loc[f"p{k}", [f"n_{j}" for j in WINDOWS]].to_numpy() == [int(j >= k) for j in WINDOWS]).all()
        assert (w.loc[f"q{k}", [f"n_{j}" for j in WINDOWS]].to_numpy() == [int(j > k) for j in WINDOWS]).all(), i
        assert w.loc[f"p{k}", "n_all"] == w.loc[f"q{k}", "n_all"] == 1


def test_nulls_and_malformed_properties_add_no_values():
    ev = _events([
        ("a", "order", "shopify", "2024-05-01T00:00:00Z", None),
        ("a", "order", "shopify", "2024-05-01T01:00:00Z", "{nope"),
        ("a", "order", "shopify", "2024-05-01T02:00:00Z", "null"),
        ("a", "order", "shopify", "2024-05-01T03:00:00Z", "[1, 2]"),
        ("a", "order", "shopify", "2024-05-01T04:00:00Z", ""),
        ("a", "order", "shopify", "2024-05-01T05:00:00Z", {"line_items": None, "items": "x", "Campaign Name": ""}),
        ("a", "order", "shopify", "2024-05-01T06:00:00Z", _order(None, "", "Kept")),
        ("a", "email_opened", "klaviyo", "2024-05-01T07:00:00Z", {"Campaign Name": None, "Subject": None}),
        (None, "order", "shopify", "2024-05-01T00:00:00Z", _order("Nobody")),  # no person: ignored
        ("a", "order", "shopify", None, _order("Timeless")),  # no time: ignored
    ])
    act = build_activity(ev, AS_OF)
    assert _rows(act.daily) == [("a", "email_opened", "klaviyo", "2024-05-01", 1),
                                ("a", "order", "shopify", "2024-05-01", 7)]
    assert _rows(act.props) == [("a", "order", "2024-05-01", "product", "Kept", 1)]
    assert act.windows.set_index("event").loc["order"].tolist() == ["a", 0, 0, 7, 7, 7, 7, 7]


def _assert_dtypes(act: Activity) -> None:
    for df, cols in ((act.daily, DAILY_COLUMNS), (act.props, PROPS_COLUMNS), (act.windows, WINDOW_COLUMNS)):
        assert tuple(df.columns) == cols
        for c in cols:
            if c == "day":
                assert str(df[c].dtype) == "date32[day][pyarrow]"
            elif c == "amount":
                assert df[c].dtype == np.float64
            elif c in ("person_id", "event", "source", "prop", "value"):
                assert pd.api.types.is_string_dtype(df[c].dtype) and not isinstance(df[c].dtype, pd.CategoricalDtype)
            else:
                assert df[c].dtype == np.int32, c


def test_empty_input_and_dtypes():
    empty = empty_events().assign(record_id=pd.Series(dtype=object), person_id=pd.Series(dtype=object))
    for act in (build_activity(empty, AS_OF), Activity.empty(), Activity.concat([])):
        _assert_dtypes(act)
        assert len(act.daily) == len(act.props) == len(act.windows) == 0
    act = build_activity(_events([("a", "login", "ga4", "2024-05-01T00:00:00Z", "{}")]), AS_OF)
    _assert_dtypes(act)
    assert len(act.props) == 0
    _assert_dtypes(Activity.concat([act, Activity.empty(), act]))


def test_concat_of_disjoint_persons_and_a_shared_connection():
    ev = _events([("a", "order", "shopify", "2024-05-01T00:00:00Z", _order("X")),
                  ("b", "order", "shopify", "2024-05-02T00:00:00Z", _order("Y")),
                  ("b", "email_opened", "klaviyo", "2024-05-02T00:00:00Z", {"Campaign Name": "C"})])
    whole = build_activity(ev, AS_OF)
    with duckdb.connect() as con:
        parts = [build_activity(ev[ev["person_id"] == p], AS_OF, con=con) for p in ("a", "b")]
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0] == 0
    both = Activity.concat(parts)
    for name in ("daily", "props", "windows"):
        assert getattr(both, name).equals(getattr(whole, name)), name
    assert whole.select(["b"]).windows["person_id"].tolist() == ["b", "b"]


# ------------------------------------------------------------------------------------ against a reference
def _reference(ev: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The same tables with ``json.loads`` per event (the definition, slowly)."""
    daily, props = [], []
    for r in ev.itertuples():
        day = r.time.tz_convert("UTC").date()
        daily.append((r.person_id, r.type, r.source, day))
        p = json.loads(r.properties)
        products = {str(li["title"]) for li in p.get("line_items") or [] if li.get("title")}
        products |= {str(i if isinstance(i, str) else i.get("item_name")) for i in p.get("items") or []
                     if (i if isinstance(i, str) else i.get("item_name"))}
        if p.get("Product Name"):
            products.add(str(p["Product Name"]))
        props += [(r.person_id, r.type, day, "product", v) for v in products]
        camp = p.get("Campaign Name") or (p.get("Subject") if r.source == "klaviyo" else None) or \
            p.get("utm_campaign") or p.get("campaign")
        m = re.search(r"[?&]utm_campaign=([^&#]*)", p.get("page_location") or "")
        camp = camp or (urllib.parse.unquote_plus(m.group(1)) if m else None)
        if camp:
            props.append((r.person_id, r.type, day, "campaign", str(camp)))
    d = pd.DataFrame(daily, columns=["person_id", "event", "source", "day"]).value_counts().rename("n")
    d = d.reset_index()
    pr = pd.DataFrame(props, columns=list(PROPS_COLUMNS[:-1])).value_counts().rename("n").reset_index()
    w = d.groupby(["person_id", "event"])["n"].sum().rename("n_all").to_frame()
    for k in WINDOWS:
        inside = (d["day"] >= (as_of - pd.Timedelta(days=k)).date()) & (d["day"] < as_of.date())
        w[f"n_{k}"] = d[inside].groupby(["person_id", "event"])["n"].sum()
    return d, pr, w.fillna(0).astype(int).reset_index()[list(WINDOW_COLUMNS)]


def _canon(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.mark.parametrize("seed", [5])
def test_duckdb_extraction_equals_the_json_loads_reference(seed):
    data = generate_glowbeauty(seed=seed, customers=80, end=date(2024, 12, 31))
    frames = [events_to_frame(adapter(src).parse_export(data.files()[rel], topic).events)
              for src, topics in FILES.items() for topic, rel in topics.items()]
    ev = pd.concat(frames, ignore_index=True)
    _, rid = build_records(ev)
    ev = ev.assign(record_id=rid.to_numpy(), person_id=rid.to_numpy())
    ev = ev[ev["person_id"].notna()].reset_index(drop=True)
    as_of = ev["time"].max().floor("D") + pd.Timedelta(days=1)
    act = build_activity(ev, as_of)
    _assert_dtypes(act)
    ref = _reference(ev, as_of)
    for got, want in zip((act.daily, act.props, act.windows), ref, strict=True):
        assert _canon(got.drop(columns=["amount"], errors="ignore")).equals(_canon(want))
    # the day's amounts are revenue as the profiles count it: per person, order amounts sum to lifetime value
    ltv = compute_profiles(ev, as_of=as_of).set_index("person_id")["lifetime_value"]
    orders = act.daily[act.daily["event"] == "order"].groupby("person_id")["amount"].sum()
    assert orders.round(2).reindex(ltv.index, fill_value=0.0).tolist() == pytest.approx(ltv.tolist(), abs=0.011)
    assert (ltv > 0).sum() > 20
    assert set(act.props["prop"]) == {"product", "campaign"}
    assert set(act.props.loc[act.props["prop"] == "product", "event"]) >= {"order", "product_viewed",
                                                                           "review_submitted"}
