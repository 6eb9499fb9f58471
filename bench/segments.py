"""Segment previews and recomputation on a large customer base: 1M customers and 50M events by default.

The base is built directly in the store's published layout (it would take hours to push 50M events through the
sources): profiles with realistic spreads of value, orders, recency, subscriptions and engagement, and for every
person an event history (orders, emails received/opened/clicked, page and product views, carts, tickets, reviews)
turned into the behaviour tables by the product's own builder (:func:`core.cdp.activity.build_activity`), one
person partition at a time, so the tables are exactly what a refresh would write.

Then, in one process:
- the engine loads the base (time, peak resident memory);
- each preview rule (trait AND/OR, behaviour on a precomputed window, behaviour with a product filter, a custom
  window, dates between, "did not", nesting, a segment reference) runs ``--repeat`` times after one warm-up: p50 /
  p95 of the preview (count, averages, revenue of 12 months, sample of 20);
- "after a webhook": one person partition is rewritten (as an incremental refresh does), the state's version and
  that partition's token change, and the engine catches up and recomputes the system segments and five saved ones.

Run: ``nice .venv/bin/python bench/segments.py [--customers 1000000] [--events-per-customer 50] [--repeat 20]``
(about 10 minutes at full size on 2 cores, most of it building the base; ``--keep DIR`` reuses a built base).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.cdp.activity import build_activity  # noqa: E402
from functions.cdp.activity_store import activity_key  # noqa: E402
from functions.cdp.common import N_PERSON_PARTS, cdp_key, person_part  # noqa: E402
from functions.storage import LocalStore  # noqa: E402

WS = "bench"
DAYS = 730
AS_OF = pd.Timestamp("2026-11-30", tz="UTC")
PRODUCTS = [f"Product {i:02d}" for i in range(1, 25)] + ["Retinol Night Cream", "Vitamin C Brightening Serum"]
CITIES = ["New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Austin", "Seattle", "Denver", "Boston",
          "Miami", "Portland", "Atlanta"]
# event type, source, share of a person's events
MIX = [("email_received", "klaviyo", 0.40), ("email_opened", "klaviyo", 0.18), ("email_clicked", "klaviyo", 0.04),
       ("page_view", "ga4", 0.20), ("product_viewed", "ga4", 0.09), ("added_to_cart", "ga4", 0.03),
       ("order", "shopify", 0.04), ("ticket_created", "gorgias", 0.01), ("review_submitted", "klaviyo", 0.01)]

RULES: dict[str, dict] = {
    "trait AND (brief: LTV > $500, last order within 60 days, engagement High)": {"all": [
        {"field": "lifetime_value", "op": "gt", "value": 500},
        {"field": "last_order_date", "op": "within_last", "value": 60},
        {"field": "email_engagement", "op": "eq", "value": "High"}]},
    "trait OR of ANDs": {"any": [
        {"all": [{"field": "subscription_status", "op": "eq", "value": "active"},
                 {"field": "subscription_mrr", "op": "gte", "value": 40}]},
        {"all": [{"field": "total_orders", "op": "gte", "value": 5}, {"field": "location", "op": "in",
                                                                       "value": ["Austin", "Denver"]}]}]},
    "did order >= 2 times in the last 30 days (precomputed window)": {"all": [
        {"event": "order", "count": {"op": "gte", "value": 2}, "window": {"last_days": 30}}]},
    "opened email >= 3 times in the last 90 days AND did not order in 90 days": {"all": [
        {"event": "email_opened", "count": {"op": "gte", "value": 3}, "window": {"last_days": 90}},
        {"event": "order", "did": False, "window": {"last_days": 90}}]},
    "ordered 'Retinol Night Cream' in the last 180 days (property filter)": {"all": [
        {"event": "order", "window": {"last_days": 180},
         "where": {"property": "product", "op": "eq", "value": "Retinol Night Cream"}}]},
    "viewed a product >= 2 times in the last 45 days (custom window)": {"all": [
        {"event": "product_viewed", "count": {"op": "gte", "value": 2}, "window": {"last_days": 45}}]},
    "added to cart between two dates, at most twice": {"all": [
        {"event": "added_to_cart", "count": {"op": "lte", "value": 2},
         "window": {"between": ["2026-06-01", "2026-08-31"]}}]},
    "nested: (VIP OR engaged) AND NOT (support heavy)": {"all": [
        {"any": [{"field": "lifetime_value", "op": "gt", "value": 1000},
                 {"field": "email_engagement_score", "op": "gte", "value": 80}]},
        {"not": {"any": [{"field": "support_tickets", "op": "gte", "value": 3},
                         {"event": "ticket_created", "count": {"op": "gte", "value": 2},
                          "window": {"last_days": 90}}]}}]},
    "in segment VIP Customers AND did not open email in 60 days": {"all": [
        {"segment": "vip-customers", "op": "in"},
        {"event": "email_opened", "did": False, "window": {"last_days": 60}}]},
}


def _ids(n: int) -> np.ndarray:
    return np.array([hashlib.md5(f"bench-person-{i}".encode()).hexdigest()[:16] for i in range(n)], dtype=object)


def _profiles(ids: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    orders = rng.negative_binomial(1.2, 0.35, n)
    aov = np.round(rng.lognormal(4.1, 0.45, n), 2)
    ltv = np.round(orders * aov, 2)
    last = rng.integers(0, DAYS, n)
    first = np.minimum(DAYS - 1, last + rng.integers(0, DAYS, n))
    has = orders > 0
    last_ts = pd.Series(AS_OF - pd.to_timedelta(last + 1, unit="D")).where(has)
    first_ts = pd.Series(AS_OF - pd.to_timedelta(first + 1, unit="D")).where(has)
    status = rng.choice(["none", "active", "paused", "cancelled"], n, p=[0.62, 0.25, 0.03, 0.10])
    score = np.clip(rng.normal(45, 28, n), 0, 100).round().astype(int)
    src = rng.choice(["klaviyo,shopify", "ga4,klaviyo,shopify", "klaviyo,recharge,shopify",
                      "ga4,gorgias,klaviyo,recharge,shopify"], n)
    return pd.DataFrame({
        "person_id": ids, "first_name": rng.choice(["Ann", "Bob", "Cleo", "Dev", "Eli"], n).astype(object),
        "last_name": rng.choice(["Lee", "Diaz", "Khan", "Moss"], n).astype(object),
        "email": [f"c{i}@example.com" for i in range(n)], "phone": None,
        "city": rng.choice(CITIES, n).astype(object), "lifetime_value": ltv, "total_orders": orders,
        "avg_order_value": np.where(has, aov, 0.0), "first_order_date": first_ts.astype("datetime64[us, UTC]"),
        "last_order_date": last_ts.astype("datetime64[us, UTC]"),
        "days_since_last_order": pd.Series(last + 1, dtype="Int64").where(has),
        "subscription_status": status.astype(object),
        "subscription_start_date": pd.Series(first_ts).where(status != "none").astype("datetime64[us, UTC]"),
        "subscription_mrr": np.where(status == "active", np.round(rng.uniform(20, 80, n), 2), 0.0),
        "email_engagement_score": score, "email_opens": rng.poisson(8, n), "email_clicks": rng.poisson(2, n),
        "support_tickets": rng.poisson(0.4, n), "reviews": rng.poisson(0.3, n), "referrals": rng.poisson(0.1, n),
        "sources": src.astype(object), "records": rng.integers(1, 4, n), "events": rng.poisson(50, n),
        "first_seen": first_ts.astype("datetime64[us, UTC]"), "last_seen": last_ts.astype("datetime64[us, UTC]"),
    })


def _events(ids: np.ndarray, per: float, rng: np.random.Generator) -> pd.DataFrame:
    """A raw event history for ``ids`` (about ``per`` events each), recent days a little more likely."""
    counts = rng.poisson(per, len(ids))
    pid = np.repeat(ids, counts)
    n = len(pid)
    kind = rng.choice(len(MIX), n, p=np.array([m[2] for m in MIX]) / sum(m[2] for m in MIX))
    age = np.minimum(DAYS - 1, rng.exponential(DAYS / 2.0, n).astype(int))
    time_ = AS_OF - pd.to_timedelta(age + 1, unit="D") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
    typ = np.array([m[0] for m in MIX], dtype=object)[kind]
    src = np.array([m[1] for m in MIX], dtype=object)[kind]
    prod = np.array(PRODUCTS, dtype=object)[rng.integers(0, len(PRODUCTS), n)]
    week = (age // 7).astype(str)
    props = np.full(n, "{}", dtype=object)
    is_order = typ == "order"
    is_view = typ == "product_viewed"
    is_mail = np.isin(typ, ["email_opened", "email_clicked", "email_received"])
    props[is_order] = '{"line_items":[{"title":"' + prod[is_order] + '"}]}'
    props[is_view] = '{"items":["' + prod[is_view] + '"]}'
    props[is_mail] = '{"Campaign Name":"Weekly #' + week[is_mail] + '"}'
    amount = np.where(is_order, np.round(rng.lognormal(4.1, 0.45, n), 2), np.nan)
    return pd.DataFrame({"person_id": pid, "type": typ, "source": src, "time": time_, "properties": props,
                         "amount": amount})


def build(root: Path, customers: int, per: float, seed: int = 7) -> dict:
    """Write the base into a LocalStore at ``root``; returns sizes and timings."""
    rng = np.random.default_rng(seed)
    store = LocalStore(root)
    t0 = time.perf_counter()
    ids = _ids(customers)
    parts = person_part(ids)
    prof = _profiles(ids, rng).sort_values("person_id").reset_index(drop=True)
    store.write_table(cdp_key(WS, "profiles.parquet"), prof)
    n_events = rows = 0
    tokens = {}
    for p in range(N_PERSON_PARTS):
        ev = _events(ids[parts == p], per, rng)
        n_events += len(ev)
        act = build_activity(ev, AS_OF)
        rows += len(act.daily) + len(act.props) + len(act.windows)
        for attr, folder in (("daily", "activity"), ("props", "activity_props"), ("windows", "activity_windows")):
            store.write_table(activity_key(WS, folder, p), getattr(act, attr))
        tokens[str(p)] = hashlib.sha1(f"{p}|{len(ev)}".encode()).hexdigest()[:12]
    state = {"version": "bench-1", "persons": customers, "records": customers, "events": n_events, "sources": {},
             "as_of": AS_OF.isoformat(), "activity_parts": tokens}
    store.write_json(cdp_key(WS, "state.json"), state)
    return {"customers": customers, "events": n_events, "activity_rows": rows,
            "build_s": round(time.perf_counter() - t0, 1)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(root: Path, repeat: int) -> dict:
    """Load, preview every rule, then recompute after a one-partition change; returns the figures."""
    from functions.cdp import segment_defs, segment_service
    from functions.cdp.segment_engine import engine_for

    store = LocalStore(root)
    out: dict = {}
    rss0 = _rss_mb()
    t = time.perf_counter()
    eng = engine_for(store, WS)
    eng.sync()
    out["load_s"] = round(time.perf_counter() - t, 2)
    out["rss_after_load_mb"] = round(_rss_mb(), 0)
    out["rss_before_mb"] = round(rss0, 0)
    lookup = segment_service.lookup_for(store, WS)
    rows = []
    for label, rule in RULES.items():
        eng.preview(rule, lookup)  # warm-up
        times = []
        for _ in range(repeat):
            p = eng.preview(rule, lookup)
            times.append(p.elapsed_ms)
        rows.append({"rule": label, "count": p.count, "p50_ms": round(float(np.percentile(times, 50)), 1),
                     "p95_ms": round(float(np.percentile(times, 95)), 1)})
        print(f"{label}: {p.count:,} customers, p50 {rows[-1]['p50_ms']} ms, p95 {rows[-1]['p95_ms']} ms",
              flush=True)
    out["previews"] = rows
    validate = segment_service.validator(store, WS)
    for i, (label, rule) in enumerate(list(RULES.items())[:5]):
        segment_defs.create_definition(store, WS, f"Saved {i}: {label[:60]}", "", rule, validate)
    t = time.perf_counter()
    first = segment_service.recompute(store, WS, wait=60)
    out["first_compute_s"] = round(time.perf_counter() - t, 2)
    out["segments"] = len(first["computed"])
    # a webhook: one partition rewritten (a new order for some of its persons), the state moves on
    state = store.read_json(cdp_key(WS, "state.json"))
    p = 17
    daily = store.read_table(activity_key(WS, "activity", p))
    extra = daily[daily["event"] == "order"].head(1).copy()
    extra["day"] = pd.array([(AS_OF - pd.Timedelta(days=1)).date()] * len(extra), dtype=daily["day"].dtype)
    store.write_table(activity_key(WS, "activity", p), pd.concat([daily, extra], ignore_index=True))
    state["activity_parts"][str(p)] = "changed"
    state["version"] = f"bench-{time.time_ns()}"
    store.write_json(cdp_key(WS, "state.json"), state)
    t = time.perf_counter()
    again = segment_service.recompute(store, WS, wait=60)
    out["after_webhook_s"] = round(time.perf_counter() - t, 2)
    out["after_webhook_segments"] = len(again["computed"])
    out["rss_peak_mb"] = round(_rss_mb(), 0)
    out["db_mb"] = round(sum(f.stat().st_size for f in Path(eng._dir.name).rglob("*") if f.is_file()) / 2**20)
    return out


def fragment(meta: dict, res: dict, load: float) -> str:
    lines = [
        "## Segments: live previews and recomputation on 1M customers (`bench/segments.py`)",
        "",
        f"Workload: {meta['customers']:,} customers, {meta['events']:,} events turned into "
        f"{meta['activity_rows']:,} rows of behaviour tables (daily counts, product/campaign values, precomputed "
        f"windows) by the product's builder, in the store's published layout (built in {meta['build_s']} s). One "
        f"process, DuckDB on 2 threads with a 2 GB memory limit over a database file of {res.get('db_mb', '?')} MB in "
        f"a temporary folder; load average {load:.1f} on 2 cores during the run. The engine's first load (every "
        f"partition read, persons hashed, tables sorted by event and day) takes {res['load_s']} s; resident memory "
        f"{res['rss_before_mb']:.0f} MB before, {res['rss_after_load_mb']:.0f} MB after loading, "
        f"{res['rss_peak_mb']:.0f} MB at peak. Before the database moved from memory to a file and the tables were "
        "sorted, the same base took 15 GB and previews with behaviour conditions 250–810 ms at p95.",
        "",
        "| rule | customers | preview p50 | p95 | goal p95 |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in res["previews"]:
        lines.append(f"| {r['rule']} | {r['count']:,} | {r['p50_ms']} ms | {r['p95_ms']} ms | < 300 ms |")
    lines += [
        "",
        f"A preview is the count, share, average LTV and orders, revenue of the last 12 months and the 20 most "
        f"valuable members, from two statements (aggregate, top 20) compiled from the rule. First computation of "
        f"{res['segments']} segments (3 system + 5 saved): {res['first_compute_s']} s. After a webhook (one "
        f"person partition rewritten, new data version): catching up and recomputing all "
        f"{res['after_webhook_segments']} segments, with their entered/exited changes, took "
        f"{res['after_webhook_s']} s.",
        "",
        "Reproduce: `nice .venv/bin/python bench/segments.py` (`--customers`, `--events-per-customer`, "
        "`--repeat`, `--keep DIR` to reuse a built base).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--events-per-customer", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None, help="build the base here, or reuse it if built")
    args = ap.parse_args()
    tmp = None
    root = args.keep
    if root is None:
        tmp = tempfile.TemporaryDirectory(prefix="gl-seg-bench-")
        root = Path(tmp.name)
    meta_file = root / "bench-meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
    else:
        meta = build(root, args.customers, args.events_per_customer)
        meta_file.write_text(json.dumps(meta))
    print(f"base: {meta}", flush=True)
    if (root / "workspaces" / WS / "cdp" / "segments").exists():  # a reused base: start from no saved segments
        import shutil

        shutil.rmtree(root / "workspaces" / WS / "cdp" / "segments")
    res = run(root, args.repeat)
    load = os.getloadavg()[0]
    print(json.dumps(res, indent=1))
    frag = fragment(meta, res, load)
    (ROOT / "bench" / "results" / "segments.md").write_text(frag + "\n")
    print(frag)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
