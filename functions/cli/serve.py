"""``growthlens serve``: the API and the dashboard on localhost, with the demo data loaded on first run."""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from functions.datasets import NoDataset, current_version
from functions.storage import LocalStore


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser(
        "serve",
        help="run the API and the dashboard on localhost (demo data loaded on first run)",
        description="Start the Growthlens API (uvicorn) and dashboard (panel serve). On first run, generate the "
        "TechStyle (marketing) and GlowBeauty (customers) demo data sets and load them through the normal import "
        "and sync paths. Ctrl-C stops both servers.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    p.add_argument("--api-port", type=int, default=8000, help="API port (default: %(default)s)")
    p.add_argument("--dashboard-port", type=int, default=5006, help="dashboard port (default: %(default)s)")
    p.add_argument("--data-dir", default=os.environ.get("GROWTHLENS_DATA_DIR", ".growthlens"),
                   help="local data folder (default: $GROWTHLENS_DATA_DIR or %(default)s)")
    p.add_argument("--no-demo", action="store_true", help="do not generate demo data when the store is empty")
    p.add_argument("--no-dashboard", action="store_true", help="run the API only")
    p.set_defaults(func=serve)


def _run_cli(args: list[str], env: dict[str, str]) -> None:
    print("  $ growthlens " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "functions.cli.main", *args], env=env, check=True)


def ensure_demo(data_dir: Path, env: dict[str, str]) -> None:
    """Generate and load the demo data sets when the store holds no dataset yet."""
    store = LocalStore(data_dir)
    workspace = env.get("GROWTHLENS_WORKSPACE", "default")
    try:
        current_version(store, workspace)
        return
    except NoDataset:
        pass
    print("First run: generating the demo data (synthetic; see README 'Demo data')...", flush=True)
    demo = data_dir / "demo"
    _run_cli(["demo", "techstyle", "--out", str(demo / "techstyle")], env)
    _run_cli(["import", str(demo / "techstyle")], env)
    print("Fitting the marketing mix model on the demo data...", flush=True)
    from functions.mmm_service import fit_current

    fit_current(store, workspace)
    if importlib.util.find_spec("core.demo.glowbeauty") and importlib.util.find_spec("functions.cli.sync"):
        _run_cli(["demo", "glowbeauty", "--out", str(demo / "glowbeauty")], env)
        _run_cli(["sync", str(demo / "glowbeauty")], env)


def _wait_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False


LOCAL_KEY_FILE = "local-admin-key"


def local_admin_key(data_dir: Path) -> str:
    """The local deployment key (admin of ``GROWTHLENS_WORKSPACE``) that the API and the dashboard share: read from
    ``<data dir>/local-admin-key``, created there (readable by its owner only) on first use."""
    path = data_dir / LOCAL_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = f"local-{secrets.token_urlsafe(32)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def serve(args: argparse.Namespace) -> int:
    """Start both servers and wait; stop both on Ctrl-C (or SIGTERM) or when either exits."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    data_dir = Path(args.data_dir).resolve()
    env = {**os.environ, "GROWTHLENS_DATA_DIR": str(data_dir)}
    env.pop("GROWTHLENS_BUCKET", None)
    if not env.get("GROWTHLENS_API_KEY"):
        env["GROWTHLENS_API_KEY"] = local_admin_key(data_dir)
        print(f"API key:    admin of this local workspace, in {data_dir / LOCAL_KEY_FILE} (send it as "
              "'Authorization: Bearer <key>')", flush=True)
    if not args.no_demo:
        ensure_demo(data_dir, env)
    api_url = f"http://{args.host}:{args.api_port}"
    procs: list[subprocess.Popen] = []
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "functions.app:app", "--host", args.host, "--port", str(args.api_port),
         "--log-level", "warning"],
        env=env,
        start_new_session=True,  # Ctrl-C reaches this process only; it then stops each server once, cleanly
    )
    procs.append(api)
    try:
        if not _wait_port(args.host, args.api_port, api):
            print(f"error: the API did not start on {api_url}", file=sys.stderr)
            return 1
        print(f"API:        {api_url}  (docs: {api_url}/docs)", flush=True)
        if not args.no_dashboard:
            spec = importlib.util.find_spec("dashboard")
            if spec is None or not spec.submodule_search_locations:
                print("error: the dashboard package is not installed (pip install -e '.[dashboard]')",
                      file=sys.stderr)
                return 1
            app_path = Path(next(iter(spec.submodule_search_locations))) / "app.py"
            dash = subprocess.Popen(
                [sys.executable, "-m", "panel", "serve", str(app_path), "--address", args.host,
                 "--port", str(args.dashboard_port),
                 f"--allow-websocket-origin={args.host}:{args.dashboard_port}",
                 f"--allow-websocket-origin=localhost:{args.dashboard_port}"],
                env={**env, "GROWTHLENS_API_URL": api_url},
                start_new_session=True,
            )
            procs.append(dash)
            if not _wait_port(args.host, args.dashboard_port, dash):
                print("error: the dashboard did not start", file=sys.stderr)
                return 1
            print(f"Dashboard:  http://{args.host}:{args.dashboard_port}/app", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
