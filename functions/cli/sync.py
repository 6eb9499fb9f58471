"""``growthlens sync DIR``: load a folder of tool exports (e.g. the GlowBeauty demo) through the same batch path
the API uses, then resolve identities and build the customer profiles."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from core.cdp.sources import SOURCES
from functions import cdp_store
from functions.storage import store_from_env

# topic names the adapters understand, inferred from file names such as shopify/orders.ndjson
TOPICS = ("orders", "customers", "profiles", "events", "tickets", "subscriptions", "charges")
SUFFIXES = (".ndjson", ".jsonl", ".json", ".csv")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sync`` command."""
    p = sub.add_parser(
        "sync",
        help="load tool exports (one sub-folder per source) and build unified customer profiles",
        description="Load exports from DIR: files DIR/<source>/<topic>.(ndjson|json|csv) with source one of "
        f"{', '.join(SOURCES)} and topic one of {', '.join(TOPICS)}. Events are stored idempotently (re-running "
        "is safe), identities are resolved and profiles rebuilt.",
    )
    p.add_argument("dir", help="folder with one sub-folder per source")
    p.add_argument("--workspace", default=None, help="workspace (default: $GROWTHLENS_WORKSPACE or 'default')")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes parsing large exports in parallel (default: the cores, at most 4)")
    p.set_defaults(func=run)


def find_exports(root: Path) -> list[tuple[str, str | None, Path]]:
    """(source, topic, path) of every export file under ``root``."""
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder")
    found = []
    for source in SOURCES:
        folder = root / source
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in SUFFIXES:
                stem = f.stem.lower()
                topic = next((t for t in TOPICS if stem.startswith(t)), None)
                found.append((source, topic, f))
    if not found:
        raise ValueError(f"no exports found in {root}: expected sub-folders named after a source "
                         f"({', '.join(SOURCES)}) holding .ndjson/.json/.csv files")
    return found


def run(args: argparse.Namespace) -> int:
    """Ingest every export, then refresh identities and profiles once."""
    ws = args.workspace or os.environ.get("GROWTHLENS_WORKSPACE", "default")
    store = store_from_env()
    t0 = time.perf_counter()
    for source, topic, path in find_exports(Path(args.dir)):
        out = cdp_store.ingest_file(store, ws, source, path, topic=topic, workers=max(1, args.workers))
        print(f"  {source:9s} {path.name:22s} received {out['received']:>8,}  accepted {out['accepted']:>8,}  "
              f"duplicates {out['duplicates']:>7,}  rejected {out['rejected_count']:>5,}", flush=True)
        for r in out["rejected"][:3]:
            print(f"      rejected: {r['reason']}")
    res = cdp_store.refresh(store, ws, None)
    print(f"Resolved {res['persons']:,} customer profiles in {time.perf_counter() - t0:.1f} s "
          f"(timings: {res['timings']})", flush=True)
    return 0
