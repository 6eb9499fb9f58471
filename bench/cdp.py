"""CDP benchmark: GlowBeauty ingestion → identity resolution → profiles, and customer search latency.

1. GlowBeauty with N customers (default 10,000, about 480k events): generate, ingest every export through the
   batch path (parse, idempotent Parquet store), resolve identities, build profiles; time each step and check
   pairwise precision/recall of the resolved persons against the planted truth.
2. Search latency on the 10k store and on 1M synthetic profiles (the search index and query path are the
   product's own: sorted prefix keys + binary search), p50/p95/max over many queries of names, emails, phones.

Run: ``nice .venv/bin/python bench/cdp.py [--customers 10000] [--search-profiles 1000000]``
Writes ``bench/results/cdp.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.demo.glowbeauty import FILES, FIRST_NAMES, LAST_NAMES, write_glowbeauty  # noqa: E402
from functions import cdp_store  # noqa: E402
from functions.cli.sync import find_exports  # noqa: E402
from functions.storage import LocalStore  # noqa: E402


def pairwise(clusters: pd.DataFrame, truth_col: str) -> tuple[float, float]:
    """Pairwise precision and recall of predicted person ids against true ones."""
    def pairs(col: str) -> set[tuple[str, str]]:
        out: set[tuple[str, str]] = set()
        for _, g in clusters.groupby(col):
            ids = sorted(g["record_id"])
            if len(ids) > 1:
                out |= set(combinations(ids, 2))
        return out

    pred, true = pairs("person_id"), pairs(truth_col)
    tp = len(pred & true)
    return tp / max(len(pred), 1), tp / max(len(true), 1)


def latency(store: LocalStore, ws: str, queries: list[str]) -> dict[str, float]:
    cdp_store.search_customers(store, ws, q=queries[0])  # load the index once (cached per process)
    times = []
    for q in queries:
        t = time.perf_counter()
        cdp_store.search_customers(store, ws, q=q, page_size=25)
        times.append((time.perf_counter() - t) * 1000)
    a = np.array(times)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "max_ms": float(a.max()),
            "n": len(a)}


def webhook_orders(order: dict) -> list[dict]:
    """Two webhook orders built from an exported one: a new order of the same (known) customer, and an order of a
    customer the store has never seen (new email, name and customer id)."""
    known = {**order, "id": 9_999_999_999, "name": "#B999", "total_price": "10.00"}
    new = json.loads(json.dumps(known))
    new.update(id=9_999_999_997, name="#B997", email="bench.new@example.com")
    new["customer"] = {**order["customer"], "id": 9_999_999_998, "email": "bench.new@example.com",
                       "first_name": "Bench", "last_name": "Newcomer", "phone": None}
    return [known, new]


def bench_pipeline(n: int, work: Path) -> dict:
    res: dict = {"customers": n}
    t = time.perf_counter()
    demo = write_glowbeauty(work / "gb", seed=7, customers=n, end=date(2025, 12, 31))
    res["generate_s"] = time.perf_counter() - t
    store = LocalStore(work / "store")
    t = time.perf_counter()
    events = 0
    for source, topic, path in find_exports(demo):  # the `growthlens sync` path
        events += cdp_store.ingest_file(store, "default", source, path, topic=topic, workers=2)["accepted"]
    res["ingest_s"] = time.perf_counter() - t
    res["events"] = events
    t = time.perf_counter()
    r = cdp_store.refresh(store, "default", None)
    res["refresh_s"] = time.perf_counter() - t
    res["refresh_timings"] = r["timings"]
    res["persons"] = r["persons"]
    # re-ingesting the same export is a no-op (idempotent)
    t = time.perf_counter()
    again = cdp_store.ingest_batch(store, "default", "shopify", (demo / FILES["shopify"]["orders"]).read_bytes(),
                                   None, topic="orders", rebuild=False)
    res["replay_orders_s"] = time.perf_counter() - t
    res["replay_accepted"] = again["accepted"]
    # webhooks: a new order of an existing customer, then one of a new customer, refreshed incrementally
    order = json.loads((demo / FILES["shopify"]["orders"]).open().readline())
    for name, o in zip(("webhook", "webhook_new"), webhook_orders(order), strict=True):
        t = time.perf_counter()
        hook = cdp_store.ingest_batch(store, "default", "shopify", json.dumps(o).encode(), None,
                                      topic="orders/create", mode="webhook")
        res[f"{name}_s"] = time.perf_counter() - t
        res[f"{name}_recomputed"] = hook["refresh"]["recomputed"]
        res[f"{name}_timings"] = hook["refresh"]["timings"]
    truth = json.loads((demo / "truth.json").read_text())
    records = store.read_table("workspaces/default/cdp/records.parquet")
    clusters = store.read_table("workspaces/default/cdp/clusters.parquet").merge(records, on="record_id")
    key = clusters["source_customer_id"].where(clusters["source_customer_id"].notna(), clusters["anonymous_id"])
    clusters["true_person"] = key.map(truth["records"])
    res["records"] = len(records)
    res["true_persons"] = len(truth["persons"])
    res["precision"], res["recall"] = pairwise(clusters, "true_person")
    rng = np.random.default_rng(0)
    persons = list(truth["persons"].values())
    qs = []
    for p in rng.choice(len(persons), 300, replace=False):
        person = persons[int(p)]
        qs += [person["first_name"][:3], f"{person['first_name']} {person['last_name']}", person["email"][:8],
               person["phone"][-10:-3]]
    res["search"] = latency(store, "default", qs)
    return res


def bench_search_1m(n: int, work: Path) -> dict:
    """Search over ``n`` synthetic profiles through the product's index and query path."""
    rng = np.random.default_rng(1)
    first = np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), n)]
    last = np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n)]
    ids = np.array([f"p_{i:012x}" for i in range(n)], dtype=object)
    email = pd.Series(first).str.lower() + "." + pd.Series(last).str.lower() + pd.Series(np.arange(n)).astype(str) \
        + "@example.com"
    phone = pd.Series(rng.integers(2_010_000_000, 9_899_999_999, n)).astype(str)
    prof = pd.DataFrame({"person_id": ids, "first_name": first, "last_name": last, "email": email.to_numpy(),
                         "phone": ("+1" + phone).to_numpy(), "lifetime_value": rng.gamma(2, 150, n).round(2),
                         "total_orders": rng.integers(1, 20, n)})
    store = LocalStore(work / "store1m")
    t = time.perf_counter()
    idx = cdp_store.build_search_index(prof)
    build_s = time.perf_counter() - t
    store.write_table("workspaces/default/cdp/profiles.parquet", prof)
    store.write_table("workspaces/default/cdp/search.parquet", idx)
    store.write_json("workspaces/default/cdp/state.json", {"version": "bench1m"})
    t = time.perf_counter()
    cdp_store.search_customers(store, "default", q="x")
    load_s = time.perf_counter() - t
    qs = []
    for i in rng.choice(n, 300, replace=False):
        qs += [str(first[i])[:3], f"{first[i]} {last[i]}", str(email.iat[i])[:10], str(phone.iat[i])[:7]]
    lat = latency(store, "default", qs)
    return {"profiles": n, "index_rows": len(idx), "index_build_s": build_s, "index_load_s": load_s, **lat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=10000)
    ap.add_argument("--search-profiles", type=int, default=1_000_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gl-bench-cdp-"))
    try:
        pipe = bench_pipeline(args.customers, work)
        print(json.dumps(pipe, indent=1, default=float))
        big = bench_search_1m(args.search_profiles, work)
        print(json.dumps(big, indent=1, default=float))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rt = pipe["refresh_timings"]
    md = f"""## Customer data: ingestion, identity resolution, profiles and search

GlowBeauty demo brand, {pipe['customers']:,} true customers, {pipe['events']:,} events from five tools, one run on
the 2-core development machine (shared, `nice`); times in seconds.

| step | time |
|---|---|
| generate the exports (5 tools, NDJSON) | {pipe['generate_s']:.1f} s |
| ingest all exports (`growthlens sync` path: chunks parsed in 2 processes, idempotent event segments) | \
{pipe['ingest_s']:.1f} s |
| build {pipe['records']:,} person records from events (DuckDB over the segments) | {rt.get('records', 0):.1f} s |
| identity resolution ({pipe['records']:,} records → {pipe['persons']:,} persons) | {rt.get('resolve', 0):.1f} s |
| events into 256 person partitions (DuckDB) | {rt.get('split', 0):.1f} s |
| profiles for every person | {rt.get('profiles', 0):.1f} s |
| write person events, profiles, search index | {rt.get('write', 0):.1f} s |
| whole refresh | {pipe['refresh_s']:.1f} s |
| webhook order of a known customer, end to end (incremental: {pipe['webhook_recomputed']} profile recomputed, \
no re-resolution) | {pipe['webhook_s']:.2f} s |
| webhook order of a new customer, end to end (incremental, identities re-resolved around the new record: \
{pipe['webhook_new_timings'].get('resolve', 0):.2f} s) | {pipe['webhook_new_s']:.2f} s |
| replay of the Shopify orders export (idempotent: {pipe['replay_accepted']} new events) | \
{pipe['replay_orders_s']:.1f} s |

Identity resolution against the planted truth ({pipe['true_persons']:,} people): pairwise precision
{pipe['precision']:.4f}, recall {pipe['recall']:.4f}.

| customer search (name, email, phone prefixes) | profiles | p50 | p95 | max |
|---|---|---|---|---|
| GlowBeauty store | {pipe['persons']:,} | {pipe['search']['p50_ms']:.2f} ms | {pipe['search']['p95_ms']:.2f} ms | \
{pipe['search']['max_ms']:.1f} ms |
| synthetic profiles | {big['profiles']:,} | {big['p50_ms']:.2f} ms | {big['p95_ms']:.2f} ms | {big['max_ms']:.1f} ms |

The 1M-profile search uses the product's own index ({big['index_rows']:,} sorted prefix keys, built in
{big['index_build_s']:.1f} s, loaded once per process in {big['index_load_s']:.1f} s) and query path; the goal is
under 100 ms (the brief asks under 1 s). The whole pipeline at 100,000 and 1,000,000 customers is measured by
`bench/cdp_scale.py` (next section).

Reproduce: `nice .venv/bin/python bench/cdp.py --customers {pipe['customers']} --search-profiles {big['profiles']}`
"""
    out = ROOT / "bench" / "results" / "cdp.md"
    out.write_text(md)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
