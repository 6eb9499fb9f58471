"""``growthlens attribution``: multi-touch attribution of a journeys or paths CSV, every model side by side.

    growthlens attribution journeys.csv --format journeys [--models last_click,markov,shapley] \\
        [--lookback-days 30] [--interactions click,visit] [--half-life-days 7] [--markov-order 1] --out credits.json

The JSON holds ``models[<model>][<channel>] = {conversions, revenue, share}``, the totals and a plain-language
description of each model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.attribution import MODELS, attribute, read_journeys_csv


def _floats(text: str, what: str, n: int) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError as e:
        raise ValueError(f"{what} must be {n} comma-separated numbers, got {text!r}") from e
    if len(values) != n:
        raise ValueError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``attribution`` command."""
    p = sub.add_parser(
        "attribution",
        help="attribute conversions to channels with every model (journeys or paths CSV)",
        description="Run first click, last click, last non-direct, linear, time decay, position-based, Markov "
        "chain, Shapley and incremental-lift attribution on the same journeys and write the credits as JSON.",
    )
    p.add_argument("file", help="CSV: journeys (journey_id, timestamp, channel, converted, revenue[, interaction]) "
                   "or paths (path, conversions[, revenue, nulls])")
    p.add_argument("--format", dest="fmt", choices=["journeys", "paths", "auto"], default="auto",
                   help="input format (default: detected from the columns)")
    p.add_argument("--models", default="", help=f"comma-separated subset of: {', '.join(MODELS)} (default: all)")
    p.add_argument("--lookback-days", type=float, default=30.0,
                   help="touches older than this before the conversion are ignored (default: %(default)s; 0 = all)")
    p.add_argument("--interactions", default="",
                   help="only count these interaction types, e.g. click,visit (default: all)")
    p.add_argument("--half-life-days", type=float, default=7.0, help="time-decay half-life (default: %(default)s)")
    p.add_argument("--position-weights", default="0.4,0.4",
                   help="position-based first,last weights (default: %(default)s)")
    p.add_argument("--markov-order", type=int, default=1, choices=[1, 2, 3, 4],
                   help="Markov chain order (default: %(default)s)")
    p.add_argument("--out", required=True, help="where to write the credits JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read, validate, attribute, write; print a compact share table."""
    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"file not found: {args.file}")
    t0 = time.perf_counter()
    fmt = args.fmt
    df = read_journeys_csv(str(path), "paths" if fmt == "paths" else "journeys")
    first, last = _floats(args.position_weights, "--position-weights", 2)
    interactions = [s.strip() for s in args.interactions.split(",") if s.strip()] or None
    result = attribute(
        df,
        fmt,
        args.models or None,
        lookback_days=args.lookback_days if args.lookback_days and args.lookback_days > 0 else None,
        interactions=interactions,
        half_life_days=args.half_life_days,
        position_weights=(first, last),
        markov_order=args.markov_order,
    )
    result["source"] = str(path)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)

    channels = result["channels"]
    width = max(len(c) for c in channels) + 2
    header = "model".ljust(18) + "".join(c.rjust(width) for c in channels)
    lines = [header]
    for model, credits in result["models"].items():
        lines.append(model.ljust(18) + "".join(f"{credits[c]['share']:.1%}".rjust(width) for c in channels))
    totals = result["totals"]
    print(f"{totals['journeys']:,} journeys, {totals['paths']:,} distinct paths, {totals['conversions']:,.0f} "
          f"conversions, revenue {totals['revenue']:,.2f} ({result['seconds']:.2f} s)")
    print("\n".join(lines))
    if totals["unattributed_conversions"]:
        print(f"note: {totals['unattributed_conversions']:,.0f} conversions had no touch left after the filters",
              file=sys.stderr)
    print(f"wrote {out}")
    return 0
