"""``growthlens cdp``: customer data commands.

``growthlens cdp resolve RECORDS.csv --out clusters.csv [--threshold P] [--explain merges.csv]`` clusters customer
records into persons (identity resolution). RECORDS.csv needs a ``record_id`` column and any of first_name,
last_name, email, phone, address, city, postcode, date_of_birth, source, source_customer_id, anonymous_id.
``--previous`` keeps person ids stable against an earlier clusters file; ``--do-not-link`` takes a CSV of
record_a,record_b pairs that must stay apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from core.cdp.identity import DEFAULT_THRESHOLD, resolve


def _read_csv(path: str, what: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: file not found: {path}")
    try:
        return pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{what}: {path} is not a readable CSV file ({e})") from e


def _write_csv(df: pd.DataFrame, path: str) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            df.to_csv(f, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _resolve(args: argparse.Namespace) -> int:
    records = _read_csv(args.records, "records")
    previous = _read_csv(args.previous, "--previous") if args.previous else None
    pairs = None
    if args.do_not_link:
        dnl = _read_csv(args.do_not_link, "--do-not-link")
        if not {"record_a", "record_b"} <= set(dnl.columns):
            raise ValueError(f"--do-not-link: {args.do_not_link} needs columns record_a and record_b")
        pairs = list(zip(dnl["record_a"], dnl["record_b"], strict=True))
    t = time.perf_counter()
    res = resolve(records, threshold=args.threshold, previous=previous, do_not_link=pairs)
    elapsed = time.perf_counter() - t
    _write_csv(res.clusters, args.out)
    if args.explain:
        _write_csv(res.merges, args.explain)
    if args.rejected:
        _write_csv(res.rejected, args.rejected)
    if not args.quiet:
        by_method = res.merges["method"].value_counts()
        methods = ", ".join(f"{m} {c}" for m, c in by_method.items()) or "none"
        print(f"{len(res.clusters)} records → {res.clusters['person_id'].nunique()} persons in {elapsed:.2f} s; "
              f"merges: {methods}; links refused: {len(res.rejected)}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cdp`` and its subcommands to the ``growthlens`` command."""
    cdp = sub.add_parser("cdp", help="customer data: identity resolution")
    cdp_sub = cdp.add_subparsers(dest="cdp_command", metavar="CDP_COMMAND")
    r = cdp_sub.add_parser("resolve", help="cluster customer records into persons",
                           description="Cluster customer records into persons; every merge is explained.")
    r.add_argument("records", help="CSV with record_id and any identity columns")
    r.add_argument("--out", required=True, help="clusters CSV to write (record_id, person_id)")
    r.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"match probability for probabilistic links (default {DEFAULT_THRESHOLD})")
    r.add_argument("--explain", help="merges CSV to write (record_a, record_b, method, identifiers, score, "
                                     "explanation)")
    r.add_argument("--rejected", help="CSV of links refused by the consistency guard or do-not-link, with reasons")
    r.add_argument("--previous", help="earlier clusters CSV: keep its person ids")
    r.add_argument("--do-not-link", dest="do_not_link", help="CSV of record_a,record_b pairs to keep apart")
    r.add_argument("--quiet", action="store_true", help="no summary line")
    r.set_defaults(func=_resolve)
    cdp.set_defaults(func=lambda _args: (cdp.print_help(), 0)[1])
