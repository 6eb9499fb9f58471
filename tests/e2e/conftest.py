"""Shared browser-test fixtures: a demo store, the API and the dashboard on free ports, Debian's Chromium.

The store is prepared exactly as ``make run`` does on first run (``functions.cli.serve.ensure_demo``: TechStyle
generated and imported, the model fitted, GlowBeauty synced when available), once per test session. Then the API
(uvicorn) and the dashboard (``panel serve``) start on free ports; both are stopped when the session ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
HOST = "127.0.0.1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests, with the reason, on machines without Chromium."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped")
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Launch Debian's Chromium (Playwright cannot download its own browsers here)."""
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A desktop-sized window, so pages lay out as users see them."""
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "GROWTHLENS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    for var in ("GROWTHLENS_BUCKET", "GROWTHLENS_JOBS_QUEUE_URL", "GROWTHLENS_WORKSPACE"):
        env.pop(var, None)
    return env


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log when it exits or never answers."""
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server for {url} exited with code {proc.returncode}:\n{log.read_text()[-3000:]}",
                        pytrace=False)
        try:
            r = httpx.get(url, timeout=30)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as e:
            last = type(e).__name__
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s (last: {last}):\n{log.read_text()[-3000:]}",
                pytrace=False)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def e2e_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the demo data sets, prepared by the same code path as ``make run``'s first run.

    ``GROWTHLENS_E2E_DATA_DIR`` points the session at a store kept between runs (prepared on first use), which saves
    the demo generation when iterating on browser tests locally.
    """
    kept = os.environ.get("GROWTHLENS_E2E_DATA_DIR")
    data_dir = Path(kept).resolve() if kept else tmp_path_factory.mktemp("growthlens-e2e")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        from functions.cli.serve import ensure_demo

        ensure_demo(data_dir, _server_env(data_dir))
    except Exception as e:  # any failure must stop the session with the reason, never fall back
        pytest.fail(f"could not prepare the demo store with functions.cli.serve.ensure_demo ({type(e).__name__}: "
                    f"{e}); the browser tests need the TechStyle demo data to be importable", pytrace=False)
    return data_dir


@pytest.fixture(scope="session")
def api_url(e2e_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API (uvicorn ``functions.app:app``) on a free port over the demo store."""
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "api.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "functions.app:app", "--host", HOST, "--port", str(port),
             "--log-level", "warning"],
            cwd=ROOT, env=_server_env(e2e_data_dir), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        _wait_http(f"{url}/api/health", proc, log, timeout=90)
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def dashboard_url(api_url: str, e2e_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard (``panel serve dashboard/app.py``) on a free port, talking to ``api_url``.

    Pages are at ``{dashboard_url}/app?page=<module name>``.
    """
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "dashboard.log"
    env = {**_server_env(e2e_data_dir), "GROWTHLENS_API_URL": api_url}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", str(ROOT / "dashboard" / "app.py"), "--address", HOST,
             "--port", str(port), f"--allow-websocket-origin={HOST}:{port}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        _wait_http(f"{url}/app", proc, log, timeout=120)  # the first request also warms the imports
        yield url
    finally:
        _stop(proc)
