"""The paths that let the CDP scale to millions of customers give the same results as the simple ones:
streamed, chunked ingestion; the segmented event store (revisions, compaction, migration of the old layout); the
DuckDB record builder; the incremental refresh (touched records, neighbourhood resolution) against a full
rebuild; and the streaming demo generator."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cdp.events import empty_events
from core.cdp.records import build_records
from core.demo.glowbeauty import FILES, generate_glowbeauty, write_glowbeauty
from functions import cdp_bulk, cdp_store
from functions.storage import LocalStore

WS = "default"
END = date(2025, 3, 31)


def _cdp(store: LocalStore, name: str) -> pd.DataFrame:
    return store.read_table(f"workspaces/{WS}/cdp/{name}.parquet")


def _canon(df: pd.DataFrame) -> pd.DataFrame:
    cols = sorted(df.columns)
    return df[cols].astype(str).sort_values(cols).reset_index(drop=True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return write_glowbeauty(tmp_path_factory.mktemp("gb") / "gb", seed=31, customers=120, end=END, flush_every=17)


def _sync(demo: Path, store: LocalStore, **kw) -> int:
    from functions.cli.sync import find_exports

    n = 0
    for source, topic, path in find_exports(demo):
        n += cdp_store.ingest_file(store, WS, source, path, topic=topic, **kw)["accepted"]
    return n


def test_streamed_generator_writes_what_the_generator_returns(demo):
    data = generate_glowbeauty(seed=31, customers=120, end=END)
    for rel, rows in data.files().items():
        assert [json.loads(line) for line in (demo / rel).read_text().splitlines()] == json.loads(json.dumps(rows))
    assert json.loads((demo / "truth.json").read_text()) == json.loads(json.dumps(data.truth))


def test_chunked_ingestion_equals_whole_file_ingestion(demo, tmp_path):
    whole = LocalStore(tmp_path / "whole")
    for source, topics in FILES.items():
        for topic, rel in topics.items():
            cdp_store.ingest_batch(whole, WS, source, (demo / rel).read_bytes(), None, topic=topic, rebuild=False)
    chunked = LocalStore(tmp_path / "chunked")
    n = _sync(demo, chunked, chunk_rows=400)  # many chunks: many segments, compaction runs
    a, b = cdp_store.load_events(whole, WS), cdp_store.load_events(chunked, WS)
    assert n == len(a) == len(b) > 1000
    assert _canon(a).equals(_canon(b))
    assert max(len(v) for v in cdp_store._segments(chunked, WS).values()) > 8  # appends only: no compaction
    cdp_store.refresh(chunked, WS)  # the writer folds the segments in, then compacts them
    segs = cdp_store._segments(chunked, WS)
    assert max(len(v) for v in segs.values()) <= 8  # O(log n) segments per partition
    assert _canon(cdp_store.load_events(chunked, WS)).equals(_canon(b))
    before = {s["source"]: s for s in cdp_store.sync_status(chunked, WS)["sources"]}
    assert _sync(demo, chunked, chunk_rows=1000) == 0  # a second sync stores nothing new
    assert len(cdp_store.load_events(chunked, WS)) == len(b)
    log = {s["source"]: s for s in cdp_store.sync_status(chunked, WS)["sources"]}
    # a rerun of the same files is the same delivery: counted once (2 shopify files), not twice
    assert log["shopify"]["syncs"] == 2 and log == before
    assert sum(s["accepted"] for s in log.values()) == len(b)


def test_parallel_parsing_gives_the_same_events(demo, tmp_path):
    one, two = LocalStore(tmp_path / "one"), LocalStore(tmp_path / "two")
    path = demo / FILES["klaviyo"]["events"]
    a = cdp_store.ingest_file(one, WS, "klaviyo", path, chunk_rows=500)
    b = cdp_store.ingest_file(two, WS, "klaviyo", path, chunk_rows=500, workers=2)
    assert a["accepted"] == b["accepted"] > 1000
    assert _canon(cdp_store.load_events(one, WS)).equals(_canon(cdp_store.load_events(two, WS)))


def test_a_bad_line_is_one_rejected_record_with_its_number(tmp_path):
    good = {"id": 1, "email": "a@example.com", "created_at": "2024-03-01T10:15:00-05:00",
            "updated_at": "2024-03-01T10:15:00-05:00", "total_price": "10.00", "name": "#1",
            "customer": {"id": 5, "email": "a@example.com"}, "line_items": []}
    path = tmp_path / "orders.ndjson"
    path.write_text(json.dumps(good) + "\n{not json\n\n" + json.dumps({**good, "id": 2}) + "\n"
                    + json.dumps({"id": 3}) + "\n")
    store = LocalStore(tmp_path / "s")
    out = cdp_store.ingest_file(store, WS, "shopify", path, topic="orders", chunk_rows=2)
    assert out["received"] == 4 and out["accepted"] == 2 and out["rejected_count"] == 2
    reasons = {r["record"]: r["reason"] for r in out["rejected"]}
    assert "invalid JSON" in reasons[1] and "record 1" in reasons[1]
    assert reasons[3].startswith("record 3: ") and "missing required field" in reasons[3]
    bad = tmp_path / "bad.ndjson"
    bad.write_text("{nope\n[1,\n")
    with pytest.raises(ValueError, match="no shopify record in bad.ndjson could be read"):
        cdp_store.ingest_file(store, WS, "shopify", bad, topic="orders")
    assert len(cdp_store.load_events(store, WS)) == 2  # stored data intact


def test_revisions_across_segments_newest_wins_in_any_order(tmp_path):
    def order(version: str, total: str) -> dict:
        return {"id": 7, "email": "a@example.com", "created_at": "2024-03-01T10:15:00-05:00",
                "updated_at": version, "total_price": total, "name": "#7",
                "customer": {"id": 5, "email": "a@example.com"}, "line_items": []}

    revs = [order("2024-03-01T10:15:00-05:00", "10.00"), order("2024-03-03T10:15:00-05:00", "30.00"),
            order("2024-03-02T10:15:00-05:00", "20.00")]
    results = []
    for perm in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        store = LocalStore(tmp_path / "".join(map(str, perm)))
        for i in perm:
            cdp_store.ingest_batch(store, WS, "shopify", [revs[i]], topic="orders/updated", rebuild=False)
        ev = cdp_store.load_events(store, WS)
        assert len(ev) == 1
        results.append(float(ev["amount"].iloc[0]))
    assert results == [30.0, 30.0, 30.0]


def test_compaction_keeps_the_newest_revision(tmp_path, monkeypatch):
    """Ingestion only appends; the writer's compaction (run here after each write, as a refresh does) keeps
    O(log n) segments, the newest revision and correct id hashes."""
    from functions.cdp import eventlog, ingest

    monkeypatch.setattr(ingest, "N_PARTS", 1)
    monkeypatch.setattr(eventlog, "MAX_SEGMENTS", 3)
    store = LocalStore(tmp_path / "s")
    base = pd.DataFrame({"event_id": [f"e{i}" for i in range(6)], "version": ["1"] * 6})
    n_segs = 0
    for k in range(8):  # each write: two new events and a newer revision of e0
        rows = [{"event_id": f"n{k}a", "version": "1"}, {"event_id": f"n{k}b", "version": "1"},
                {"event_id": "e0", "version": f"{k + 2}"}]
        df = pd.concat([base if k == 0 else base.iloc[:0], pd.DataFrame(rows)], ignore_index=True)
        ev = empty_events().reindex(range(len(df)))
        ev["event_id"], ev["version"] = df["event_id"].to_numpy(), df["version"].to_numpy()
        ev["source"], ev["type"] = "shopify", "order"
        ev["time"] = pd.Timestamp("2024-01-01", tz="UTC")
        out = cdp_store.ingest_events(store, WS, ev)
        assert out["accepted"] == (8 if k == 0 else 3)  # e0 twice in the first batch: its newer version
        assert len(cdp_store._segments(store, WS)[0]) == n_segs + 1  # one segment appended, nothing merged
        n_segs = len(eventlog.compact(store, WS, cdp_store._segments(store, WS)[0]))
        assert n_segs == len(cdp_store._segments(store, WS)[0]) <= 3  # O(log n) segments
    ev = cdp_store.load_events(store, WS)
    assert ev["event_id"].is_unique and len(ev) == 6 + 16
    for key in cdp_store._segments(store, WS)[0]:  # merged segments keep correct id hashes
        seg = store.read_table(key)
        assert np.array_equal(seg["h"].to_numpy(np.uint64), cdp_store.event_hash(seg["event_id"]))
    assert ev.set_index("event_id").loc["e0", "version"] == "9"


def test_old_single_file_partitions_are_migrated(demo, tmp_path):
    store = LocalStore(tmp_path / "s")
    data = generate_glowbeauty(seed=31, customers=120, end=END)
    from core.cdp.sources import adapter

    frames = [cdp_store.events_to_frame(adapter("shopify").parse_export(data.shopify_orders, "orders").events)]
    ev = pd.concat(frames, ignore_index=True)
    for p, part in ev.groupby(np.arange(len(ev)) % 3):  # the old layout: events/part-XX.parquet
        store.write_table(f"workspaces/{WS}/cdp/events/part-{p:02d}.parquet", part)
    again = cdp_store.ingest_batch(store, WS, "shopify", data.shopify_orders[:5], topic="orders", rebuild=False)
    assert again["accepted"] == 0 and again["duplicates"] == 5
    assert not [k for k in store.list(f"workspaces/{WS}/cdp/events/") if k.endswith("/events/part-00.parquet")]
    assert _canon(cdp_store.load_events(store, WS)).equals(_canon(ev))


def test_duckdb_records_equal_the_pandas_records(demo, tmp_path):
    store = LocalStore(tmp_path / "s")
    _sync(demo, store)
    expect, _ = build_records(cdp_store.load_events(store, WS))
    with cdp_bulk.connect() as con, cdp_bulk.local_files(store, cdp_store.event_segments(store, WS)) as paths:
        got = cdp_bulk.build_records(con, paths)
    assert len(got) > 300
    assert got.fillna("").astype(str).equals(expect.fillna("").astype(str))


def test_incremental_refresh_equals_a_full_rebuild(demo, tmp_path):
    """Webhooks of a known customer, of a new customer and of a known customer with a new email are refreshed
    incrementally (the new customer by neighbourhood resolution); every derived table then equals what a full
    rebuild of the same events gives."""
    store = LocalStore(tmp_path / "inc")
    _sync(demo, store)
    full = cdp_store.refresh(store, WS, None)
    assert full["mode"] == "full"
    orders = [json.loads(line) for line in (demo / FILES["shopify"]["orders"]).read_text().splitlines()]
    known = {**orders[0], "id": 990_001, "name": "#990001", "total_price": "12.00"}
    newcomer = json.loads(json.dumps(orders[1]))
    newcomer.update(id=990_002, name="#990002", email="zed.newcomer@example.com")
    newcomer["customer"] = {**newcomer["customer"], "id": 880_002, "email": "zed.newcomer@example.com",
                            "first_name": "Zed", "last_name": "Newcomer", "phone": None}
    moved = json.loads(json.dumps(orders[2]))
    moved.update(id=990_003, name="#990003", email="second.inbox@example.com")
    moved["customer"] = {**moved["customer"], "email": "second.inbox@example.com"}
    modes = []
    for o in (known, newcomer, moved):
        out = cdp_store.ingest_batch(store, WS, "shopify", json.dumps(o).encode(), None, topic="orders/create",
                                     mode="webhook")
        modes.append((out["refresh"]["mode"], out["refresh"].get("resolution")))
    assert modes[0] == ("incremental", "none")
    assert modes[1] == ("incremental", "neighbourhood") and modes[2][0] == "incremental"
    ref = LocalStore(tmp_path / "ref")
    shutil.copytree(store.root, ref.root, dirs_exist_ok=True)
    cdp_store.refresh(ref, WS, None, full=True)
    for name in ("records", "clusters", "profiles", "search"):
        assert _canon(_cdp(store, name)).equals(_canon(_cdp(ref, name))), name
    for folder in ("person_events", "identities", "person_merges"):
        pe = [pd.concat([s.read_table(k) for k in s.list(f"workspaces/{WS}/cdp/{folder}/")]) for s in (store, ref)]
        if folder == "person_merges":  # the same persons linked by as many links (which pair explains a link may
            pe = [p.groupby("person_id").size().rename("n").reset_index() for p in pe]  # differ: order)
        assert _canon(pe[0]).equals(_canon(pe[1])), folder
    hit = cdp_store.search_customers(store, WS, q="zed newcomer")
    assert hit["total"] == 1
    detail = cdp_store.customer_detail(store, WS, hit["items"][0]["id"])
    assert detail["profile"]["lifetime_value"] == pytest.approx(float(newcomer["total_price"]))


def test_neighbourhood_resolution_matches_full_resolution():
    """Adding records to a resolved base and resolving only their neighbourhood gives the clusters a full
    resolution gives (on a second generated base, with messy identities)."""
    from core.cdp.identity import prepare_records, resolve, resolve_neighbourhood
    from core.cdp.sources import adapter

    data = generate_glowbeauty(seed=77, customers=300, end=date(2024, 10, 31))
    frames = []
    for source, topics in FILES.items():
        for topic, rel in topics.items():
            frames.append(cdp_store.events_to_frame(adapter(source).parse_export(data.files()[rel], topic).events))
    records, _ = build_records(pd.concat(frames, ignore_index=True))
    rng = np.random.default_rng(3)
    late = set(rng.choice(records["record_id"].to_numpy(), 25, replace=False))
    base = records[~records["record_id"].isin(late)].reset_index(drop=True)
    first = resolve(base)
    ordered = pd.concat([base, records[records["record_id"].isin(late)]], ignore_index=True)
    res, near = resolve_neighbourhood(ordered, prepare_records(ordered), late, first.clusters, first.model)
    assert near.sum() < len(ordered)  # only a neighbourhood was resolved
    inc = pd.concat([first.clusters[~first.clusters["record_id"].isin(set(ordered.loc[near, "record_id"]))],
                     res.clusters], ignore_index=True)
    full = resolve(ordered, previous=first.clusters).clusters

    def groups(c: pd.DataFrame) -> set[frozenset]:
        return {frozenset(g) for _, g in c.groupby("person_id")["record_id"]}

    assert groups(inc) == groups(full)


def test_webhook_refresh_can_be_queued_as_a_job(demo, tmp_path, monkeypatch):
    """Where a request must be answered within seconds (API Gateway), the webhook stores the events and queues a
    ``cdp_refresh`` job for the touched customers; the job gives the same profiles as the inline refresh."""
    from functions import jobs

    store = LocalStore(tmp_path / "queued")
    _sync(demo, store)
    cdp_store.refresh(store, WS, None)
    orders = [json.loads(line) for line in (demo / FILES["shopify"]["orders"]).read_text().splitlines()]
    order = {**orders[0], "id": 990_101, "name": "#990101", "total_price": "15.00"}
    before = _cdp(store, "profiles").set_index("person_id")["lifetime_value"]
    monkeypatch.setenv("GROWTHLENS_CDP_REFRESH", "job")
    monkeypatch.delenv("GROWTHLENS_JOBS_QUEUE_URL", raising=False)
    out = cdp_store.ingest_batch(store, WS, "shopify", json.dumps(order).encode(), None, topic="orders/create",
                                 mode="webhook")
    assert out["accepted"] == 1 and out["refresh"]["mode"] == "queued"
    jobs.wait_local()
    job = jobs.get_job(store, WS, out["refresh"]["job"])
    assert job["status"] == "done", job
    assert job["result"]["mode"] == "incremental" and job["result"]["recomputed"] == 1
    after = _cdp(store, "profiles").set_index("person_id")["lifetime_value"]
    [pid] = job["result"]["recomputed_ids"]
    assert after[pid] == pytest.approx(before[pid] + 15.0)
    assert after.drop(pid).equals(before.drop(pid))
