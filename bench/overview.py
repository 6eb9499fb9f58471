"""Overview benchmark: the API's overview response on two years of data, and how fast the KPI cards appear.

Run: ``.venv/bin/python bench/overview.py [--repeat 30] [--page-loads 7]``. Prints the figures and writes
bench/results/overview.md. Goals: ``GET /api/metrics/overview`` under 100 ms warm; KPI cards visible in the browser
under 2 s (``page.goto`` → KPI text visible in headless Chromium).

Data: the TechStyle demo (two years, five channels, daily), published to a temporary store. The API (uvicorn) and the
dashboard (``panel serve``) run as separate processes on free ports, as in ``make run``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import metrics  # noqa: E402
from core.demo.techstyle import generate_techstyle  # noqa: E402
from functions.datasets import publish_dataset  # noqa: E402
from functions.storage import LocalStore  # noqa: E402

HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
BENCH_KEY = "bench-overview-key"  # the deployment key the API and the dashboard share in this run


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def bench_core(data, repeat: int) -> float:
    """In-process ``core.metrics.overview`` (no HTTP, no cache), median seconds."""
    metrics.overview(data.marketing, data.kpis)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        metrics.overview(data.marketing, data.kpis)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_api(api: str, data_end: date, repeat: int) -> dict[str, float]:
    """First request after start, then warm: the same request (cached) and distinct ranges (computed each time)."""
    out: dict[str, float] = {}
    with httpx.Client(base_url=api, timeout=60, headers={"X-Growthlens-Api-Key": BENCH_KEY}) as c:
        t = time.perf_counter()
        c.get("/api/metrics/overview").raise_for_status()
        out["first"] = time.perf_counter() - t
        same = []
        for _ in range(repeat):
            t = time.perf_counter()
            c.get("/api/metrics/overview").raise_for_status()
            same.append(time.perf_counter() - t)
        out["warm_cached"] = statistics.median(same)
        distinct = []
        for i in range(repeat):  # a different end date each time: the response cache cannot help
            end = data_end - timedelta(days=i + 1)
            params = {"start_date": (end - timedelta(days=89)).isoformat(), "end_date": end.isoformat()}
            t = time.perf_counter()
            c.get("/api/metrics/overview", params=params).raise_for_status()
            distinct.append(time.perf_counter() - t)
        out["warm_uncached"] = statistics.median(distinct)
        two_years = []
        for i in range(max(5, repeat // 3)):
            params = {"start_date": (data_end - timedelta(days=729 - i)).isoformat(), "end_date": data_end.isoformat()}
            t = time.perf_counter()
            c.get("/api/metrics/overview", params=params).raise_for_status()
            two_years.append(time.perf_counter() - t)
        out["two_years_uncached"] = statistics.median(two_years)
    return out


FLOOR_APP = """
import panel as pn
pn.template.FastListTemplate(title="floor", main=[pn.pane.HTML('<div class="gl-kpi-value">$1</div>')]).servable()
"""


def bench_browser(dashboard: str, loads: int) -> dict[str, float]:
    """page.goto → first KPI value visible (and → chart drawn), each load in a fresh browser context (no HTTP
    cache), one user at a time; plus the same for an empty page of the same template (Panel's own floor)."""
    from playwright.sync_api import sync_playwright

    kpi, chart, floor = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(loads + 1):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(f"{dashboard}/app?page=overview", wait_until="commit")
            page.locator(".gl-kpi-spend .gl-kpi-value").first.wait_for(state="visible", timeout=60_000)
            kpi.append(time.perf_counter() - t)
            page.locator(".bk-Figure").first.wait_for(state="visible", timeout=120_000)
            chart.append(time.perf_counter() - t)
            ctx.close()
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(f"{dashboard}/floor", wait_until="commit")
            page.locator(".gl-kpi-value").first.wait_for(state="visible", timeout=60_000)
            floor.append(time.perf_counter() - t)
            ctx.close()
        browser.close()
    return {"first": kpi[0], "median": statistics.median(kpi[1:]), "max": max(kpi[1:]),
            "chart": statistics.median(chart[1:]), "floor": statistics.median(floor[1:])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="API requests per measurement (default: %(default)s)")
    ap.add_argument("--page-loads", type=int, default=7, help="browser page loads (default: %(default)s)")
    args = ap.parse_args()

    data = generate_techstyle(end=date(2026, 11, 25))
    days = (data.marketing["date"].max() - data.marketing["date"].min()).days + 1
    core_s = bench_core(data, args.repeat)
    print(f"core.metrics.overview, {days} days x {data.marketing['channel'].nunique()} channels: {ms(core_s)}")

    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="growthlens-bench-") as tmp:
        publish_dataset(LocalStore(tmp), "default", {"marketing": data.marketing, "kpis": data.kpis})
        env = {**os.environ, "GROWTHLENS_DATA_DIR": tmp, "PYTHONPATH": str(ROOT), "GROWTHLENS_API_KEY": BENCH_KEY}
        env.pop("GROWTHLENS_BUCKET", None)
        env.pop("GROWTHLENS_WORKSPACE", None)
        try:
            api_port, dash_port = free_port(), free_port()
            api = f"http://{HOST}:{api_port}"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "functions.app:app", "--host", HOST, "--port", str(api_port),
                 "--log-level", "warning"], cwd=ROOT, env=env))
            wait_http(f"{api}/api/health", procs[-1])
            api_t = bench_api(api, data.marketing["date"].max().date(), args.repeat)
            for k, v in api_t.items():
                print(f"API overview {k}: {ms(v)}")

            browser_t = None
            if Path(CHROMIUM).exists():
                dash = f"http://{HOST}:{dash_port}"
                floor_app = Path(tmp) / "floor.py"
                floor_app.write_text(FLOOR_APP)
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "panel", "serve", str(ROOT / "dashboard" / "app.py"), str(floor_app),
                     "--address", HOST,
                     "--port", str(dash_port), f"--allow-websocket-origin={HOST}:{dash_port}"],
                    cwd=ROOT, env={**env, "GROWTHLENS_API_URL": api}, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
                wait_http(f"{dash}/app?page=overview", procs[-1])  # the server's own imports happen here
                browser_t = bench_browser(dash, args.page_loads)
                print(f"KPI cards visible: first load {browser_t['first']:.2f} s, median {browser_t['median']:.2f} s, "
                      f"max {browser_t['max']:.2f} s; chart drawn {browser_t['chart']:.2f} s; empty template page "
                      f"{browser_t['floor']:.2f} s")
            else:
                print(f"{CHROMIUM} not found: browser timing skipped")
        finally:
            for p in procs:
                stop(p)

    load = os.getloadavg()[0]
    lines = [
        "## Overview (API and first paint)",
        "",
        f"`bench/overview.py`: TechStyle demo data, {days} days x 5 channels, daily. API requests over HTTP to uvicorn "
        f"on localhost, median of {args.repeat}; page loads in headless Chromium, each in a fresh browser context, "
        f"median of {args.page_loads} after one first load, one user at a time. Load average during the run: "
        f"{load:.1f} on {os.cpu_count()} cores (other work was running on the machine).",
        "",
        "| measurement | result | goal |",
        "|---|---:|---:|",
        f"| `core.metrics.overview` in process (last 90 days, comparison, series, insights) | {ms(core_s)} | |",
        f"| `GET /api/metrics/overview`, first request after start | {ms(api_t['first'])} | |",
        f"| `GET /api/metrics/overview`, warm, same range (response cache) | {ms(api_t['warm_cached'])} | < 100 ms |",
        f"| `GET /api/metrics/overview`, warm, a new 90-day range each time | {ms(api_t['warm_uncached'])} "
        "| < 100 ms |",
        f"| `GET /api/metrics/overview`, warm, two years (weekly series), new each time | "
        f"{ms(api_t['two_years_uncached'])} | < 100 ms |",
    ]
    if browser_t:
        lines += [
            f"| KPI cards visible (page.goto → text), first load after server start | {browser_t['first']:.2f} s | |",
            f"| KPI cards visible, warm server, median | {browser_t['median']:.2f} s | < 2 s |",
            f"| KPI cards visible, warm server, slowest | {browser_t['max']:.2f} s | |",
            f"| chart drawn (page.goto → stacked area visible), median | {browser_t['chart']:.2f} s | |",
            f"| reference: an empty page of the same Panel template, median | {browser_t['floor']:.2f} s | |",
        ]
    lines += ["", "The chart library and the chart load after the KPI cards have painted.", "",
              "Reproduce: `.venv/bin/python bench/overview.py`", ""]
    out = ROOT / "bench" / "results" / "overview.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
