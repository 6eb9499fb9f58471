"""The customer data store under concurrency and crashes: real processes, real kills, injected failures.

- 50 signed webhooks from 8 threads against ``uvicorn --workers 2`` (two processes, as parallel Lambda
  invocations are) leave the store equal to the same webhooks applied one after another: every event, profile,
  search key and sync-log count;
- the same with two processes writing to one S3 bucket (a moto server): the S3 lease lock and conditional writes;
- a refresh killed with SIGKILL midway, and a refresh whose S3 write fails (under moto), are repaired by the next
  delivery, even a replay that adds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from functions import cdp_store
from functions.storage import LocalStore, Store

ROOT = Path(__file__).resolve().parents[2]
WS = "default"
SECRET = "concurrency-secret-0123456789"
TABLES = ("records", "clusters", "profiles", "search")


def _order(i: int) -> dict:
    """Order ``i`` of a new customer ``i`` (a distinct person each)."""
    return {"id": 70_000 + i, "email": f"cust{i}@example.com", "created_at": "2024-03-01T10:15:00-05:00",
            "updated_at": f"2024-03-01T10:{i % 60:02d}:00-05:00", "total_price": f"{10 + i}.00",
            "financial_status": "paid", "name": f"#{70_000 + i}",
            "customer": {"id": 9_000 + i, "email": f"cust{i}@example.com", "first_name": f"Given{i}",
                         "last_name": f"Family{i}", "phone": None},
            "line_items": [{"id": 1, "title": "Serum", "quantity": 1, "price": f"{10 + i}.00"}]}


def _bodies(n: int = 50) -> list[bytes]:
    return [json.dumps(_order(i)).encode() for i in range(n)]


def _headers(body: bytes) -> dict[str, str]:
    sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/create", "Content-Type": "application/json"}


def _canon(df: pd.DataFrame) -> pd.DataFrame:
    cols = sorted(df.columns)
    return df[cols].astype(str).sort_values(cols).reset_index(drop=True)


def _sequential(tmp: Path, bodies: list[bytes]) -> LocalStore:
    ref = LocalStore(tmp)
    for b in bodies:
        cdp_store.ingest_batch(ref, WS, "shopify", b, "application/json", topic="orders/create", mode="webhook")
    return ref


def _log(store: Store) -> dict:
    keep = ("received", "events", "accepted", "duplicates", "rejected", "syncs")
    return {s["source"]: {k: s[k] for k in keep} for s in cdp_store.sync_status(store, WS)["sources"]}


def assert_same_store(got: Store, ref: Store) -> None:
    """Every event, derived table, person-event partition and sync-log count equal."""
    assert _canon(cdp_store.load_events(got, WS)).equals(_canon(cdp_store.load_events(ref, WS)))
    for name in TABLES:
        a = got.read_table(f"workspaces/{WS}/cdp/{name}.parquet")
        b = ref.read_table(f"workspaces/{WS}/cdp/{name}.parquet")
        assert _canon(a).equals(_canon(b)), name
    pe = [pd.concat([s.read_table(k) for k in s.list(f"workspaces/{WS}/cdp/person_events/")]) for s in (got, ref)]
    assert _canon(pe[0]).equals(_canon(pe[1]))
    assert _log(got) == _log(ref)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def two_workers(tmp_path):
    """``uvicorn --workers 2`` on a free port over a local store in ``tmp_path/store``."""
    port = _free_port()
    env = {**os.environ, "GROWTHLENS_DATA_DIR": str(tmp_path / "store"), "GROWTHLENS_WEBHOOK_SECRET_SHOPIFY": SECRET,
           "PYTHONPATH": str(ROOT)}
    for var in ("GROWTHLENS_BUCKET", "GROWTHLENS_CDP_REFRESH", "GROWTHLENS_WORKSPACE", "GROWTHLENS_JOBS_QUEUE_URL"):
        env.pop(var, None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "functions.app:app", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "2", "--log-level", "warning"], cwd=ROOT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until both workers have started (or give up after about a minute)
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, LocalStore(tmp_path / "store")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_fifty_concurrent_webhooks_in_two_processes_equal_the_sequential_result(two_workers, tmp_path):
    url, store = two_workers
    bodies = _bodies()
    with httpx.Client(base_url=url, timeout=300) as client, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda b: client.post("/api/sync/shopify/webhook", content=b, headers=_headers(b)),
                                  bodies))
        for r in responses:
            assert r.status_code == 200, r.text
            assert r.json()["accepted"] == 1
    ref = _sequential(tmp_path / "ref", bodies)
    assert_same_store(store, ref)
    assert len(store.read_table(f"workspaces/{WS}/cdp/profiles.parquet")) == 50
    hits = [cdp_store.search_customers(store, WS, q=f"cust{i}@example.com")["total"] for i in range(50)]
    assert hits == [1] * 50
    log = _log(store)["shopify"]
    assert log["received"] == 50 and log["accepted"] == 50 and log["duplicates"] == 0


# ------------------------------------------------------------------------------------------- two S3 writers
def test_two_s3_writers_at_once_equal_the_sequential_result(tmp_path, monkeypatch):
    """Two writers with clients of their own (as two Lambda invocations) on one bucket under moto: the lease
    lock and the conditional writes keep every delivery."""
    import boto3
    from moto import mock_aws

    from functions.storage import S3Store

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    bodies = _bodies(30)
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="cdp-two")

        def writer(part: list[bytes]) -> None:
            store = S3Store("cdp-two", client=boto3.client("s3", region_name="us-east-1"))
            for b in part:
                cdp_store.ingest_batch(store, WS, "shopify", b, "application/json", topic="orders/create",
                                       mode="webhook")

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(writer, [bodies[0::2], bodies[1::2]]))
        got = S3Store("cdp-two", client=boto3.client("s3", region_name="us-east-1"))
        assert cdp_store.read_watermark(got, WS).dirty is False
        assert not got.list("locks/")  # both released the lease
        assert_same_store(got, _sequential(tmp_path / "ref", bodies))


# ---------------------------------------------------------------------------------------- crashes and failures
def _killed_refresh(root: str, flag: str, bodies: list[bytes]) -> None:
    """Ingest ``bodies`` as one batch; the refresh stops for good after profiles are written, before the search
    keys and the state (the parent kills this process there)."""
    from functions.cdp import rebuild

    def stall(*_a, **_k):
        Path(flag).write_text("in the middle of a refresh")
        time.sleep(3600)

    rebuild.update_search_index = stall
    rows = [json.loads(b) for b in bodies]
    cdp_store.ingest_batch(LocalStore(root), WS, "shopify", rows, topic="orders/create")


def _base(tmp: Path) -> LocalStore:
    store = LocalStore(tmp)
    for b in _bodies(10):
        cdp_store.ingest_batch(store, WS, "shopify", b, "application/json", topic="orders/create", mode="webhook")
    return store


def test_a_refresh_killed_midway_is_repaired_by_a_replay(tmp_path):
    store = _base(tmp_path / "store")
    late = [json.dumps(_order(i)).encode() for i in range(10, 25)]
    flag = tmp_path / "flag"
    (tmp_path / "late.json").write_text(json.dumps([b.decode() for b in late]))
    code = ("import json, sys; from tests.functions.test_cdp_concurrency import _killed_refresh; "
            "_killed_refresh(sys.argv[1], sys.argv[2], [b.encode() for b in json.load(open(sys.argv[3]))])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(store.root), str(flag), str(tmp_path / "late.json")],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(6000):
        if flag.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert flag.exists(), "the refresh never reached the point where it is killed"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert cdp_store.read_watermark(store, WS).dirty  # the crash is visible
    assert cdp_store.search_customers(store, WS, q="cust20@example.com")["total"] == 0  # and did damage
    # the same batch again: all duplicates, yet the writer sees the dirty watermark and repairs everything
    again = cdp_store.ingest_batch(store, WS, "shopify", [json.loads(b) for b in late], topic="orders/create")
    assert again["accepted"] == 0 and again["duplicates"] == 15 and again["refresh"]["mode"] == "full"
    ref = _sequential(tmp_path / "ref", _bodies(25))
    assert_same_store_but_log(store, ref)
    assert cdp_store.search_customers(store, WS, q="cust20@example.com")["total"] == 1


def assert_same_store_but_log(got: Store, ref: Store) -> None:
    """As :func:`assert_same_store`, with the sync log compared only on what is in the store (the replay is a
    delivery of its own)."""
    assert _canon(cdp_store.load_events(got, WS)).equals(_canon(cdp_store.load_events(ref, WS)))
    for name in TABLES:
        a = got.read_table(f"workspaces/{WS}/cdp/{name}.parquet")
        b = ref.read_table(f"workspaces/{WS}/cdp/{name}.parquet")
        assert _canon(a).equals(_canon(b)), name
    assert _log(got)["shopify"]["accepted"] == _log(ref)["shopify"]["accepted"]


def test_a_failed_s3_write_during_a_refresh_is_repaired_by_the_next_delivery(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    from functions.storage import S3Store

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="cdp-fail")
        store = S3Store("cdp-fail", client=client)
        bodies = _bodies(12)
        for b in bodies[:10]:
            cdp_store.ingest_batch(store, WS, "shopify", b, "application/json", topic="orders/create",
                                   mode="webhook")
        real = S3Store.write_bytes
        failed = []

        def flaky(self, key, data):
            if key.endswith("/cdp/search.parquet") and not failed:
                failed.append(key)
                raise OSError("injected: S3 PutObject failed")
            return real(self, key, data)

        monkeypatch.setattr(S3Store, "write_bytes", flaky)
        with pytest.raises(OSError, match="injected"):
            cdp_store.ingest_batch(store, WS, "shopify", bodies[10], "application/json", topic="orders/create",
                                   mode="webhook")
        assert failed and cdp_store.read_watermark(store, WS).dirty
        assert cdp_store.search_customers(store, WS, q="cust10@example.com")["total"] == 0
        out = cdp_store.ingest_batch(store, WS, "shopify", bodies[11], "application/json", topic="orders/create",
                                     mode="webhook")
        assert out["refresh"]["mode"] == "full"
        assert_same_store(store, _sequential(tmp_path / "ref", bodies))
        assert cdp_store.search_customers(store, WS, q="cust10@example.com")["total"] == 1


def test_nothing_pending_means_no_rebuild(tmp_path):
    """The catch-up after a replay of folded events does nothing (so every delivery may trigger one)."""
    store = _base(tmp_path / "s")
    out = cdp_store.ingest_batch(store, WS, "shopify", _bodies(1)[0], "application/json", topic="orders/create",
                                 mode="webhook")
    assert out["duplicates"] == 1 and out["refresh"]["mode"] == "none"
    shutil.rmtree(tmp_path / "s")
