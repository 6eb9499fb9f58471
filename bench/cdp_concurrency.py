"""Health latency while the customer data store works: a large batch import and 5 webhooks against
``uvicorn --workers 2``, with ``/api/health`` polled throughout.

The server runs over a store holding a GlowBeauty base (``--customers``, synced with ``growthlens sync``); then,
at once: one batch of every Shopify order of a second GlowBeauty (``--batch-customers``, its own customers) as
NDJSON, 5 signed webhooks of new orders, and a health request every 20 ms. Prints health p50/p99/max, how long
the import and webhooks took, the workload sizes and the servers' peak resident memory.

Run: ``nice .venv/bin/python bench/cdp_concurrency.py [--customers 2000] [--batch-customers 3000]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.demo.glowbeauty import FILES, write_glowbeauty  # noqa: E402

SECRET = "bench-secret"
KEY = "bench-key"


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _tree(pid: int) -> list[int]:
    out = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().split()[3]) == pid:
                    out += _tree(int(p.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--batch-customers", type=int, default=3000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gl-bench-conc-"))
    base = write_glowbeauty(tmp / "base", seed=5, customers=args.customers, end=date(2025, 3, 31))
    extra = write_glowbeauty(tmp / "extra", seed=6, customers=args.batch_customers, end=date(2025, 3, 31))
    env = {**os.environ, "GROWTHLENS_DATA_DIR": str(tmp / "store"), "GROWTHLENS_WEBHOOK_SECRET_SHOPIFY": SECRET,
           "GROWTHLENS_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    for var in ("GROWTHLENS_BUCKET", "GROWTHLENS_CDP_REFRESH", "GROWTHLENS_JOBS_QUEUE_URL"):
        env.pop(var, None)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "functions.cli.main", "sync", str(base)], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"base: {args.customers:,} customers synced in {time.perf_counter() - t:.1f} s")
    # the batch: the second base's orders, re-numbered so they are new orders of new customers
    batch = (extra / FILES["shopify"]["orders"]).read_bytes().replace(b'"id": ', b'"id": 8')
    orders = [json.loads(line) for line in (base / FILES["shopify"]["orders"]).read_text().splitlines()[:5]]
    hooks = [json.dumps({**o, "id": 990_000 + i, "name": f"#99{i}"}).encode() for i, o in enumerate(orders)]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "functions.app:app", "--port", str(port), "--workers",
                             "2", "--log-level", "warning"], env=env, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        lat: list[float] = []
        peak = [0.0]
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(base_url=url, timeout=60, headers={"X-Growthlens-Api-Key": KEY}) as c:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    c.get("/api/health")
                    lat.append(time.perf_counter() - t0)
                    peak[0] = max(peak[0], _rss_mb(_tree(proc.pid)))
                    time.sleep(0.02)

        def post_batch() -> float:
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/api/sync/shopify/batch?topic=orders", content=batch, timeout=1200,
                           headers={"Content-Type": "application/x-ndjson", "X-Growthlens-Api-Key": KEY})
            r.raise_for_status()
            return time.perf_counter() - t0

        def post_hook(body: bytes) -> float:
            t0 = time.perf_counter()
            sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
            r = httpx.post(f"{url}/api/sync/shopify/webhook", content=body, timeout=1200,
                           headers={"X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/create",
                                    "Content-Type": "application/json"})
            r.raise_for_status()
            return time.perf_counter() - t0

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.5)
        with ThreadPoolExecutor(6) as pool:
            fb = pool.submit(post_batch)
            fh = [pool.submit(post_hook, b) for b in hooks]
            t_batch, t_hooks = fb.result(), [f.result() for f in fh]
        time.sleep(0.5)
        stop.set()
        poller.join()
        ms = np.array(lat) * 1000
        n_orders = batch.count(b"\n") + 1
        print(f"workload: batch of {n_orders:,} orders ({len(batch) / 2**20:.1f} MB NDJSON) on a base of "
              f"{args.customers:,} customers + 5 webhooks; uvicorn --workers 2")
        print(f"health during the load: n={len(ms)}  p50 {np.percentile(ms, 50):.1f} ms  "
              f"p99 {np.percentile(ms, 99):.1f} ms  max {ms.max():.1f} ms")
        print(f"batch answered in {t_batch:.1f} s; webhooks in {min(t_hooks):.2f}-{max(t_hooks):.2f} s")
        print(f"peak resident memory of the server processes: {peak[0]:.0f} MB")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
