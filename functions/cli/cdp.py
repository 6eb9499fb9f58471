"""``growthlens cdp``: customer data commands.

``growthlens cdp resolve RECORDS.csv --out clusters.csv [--threshold P] [--explain merges.csv]`` clusters customer
records into persons (identity resolution). RECORDS.csv needs a ``record_id`` column and any of first_name,
last_name, email, phone, address, city, postcode, date_of_birth, source, source_customer_id, anonymous_id.
``--previous`` keeps person ids stable against an earlier clusters file; ``--do-not-link`` takes a CSV of
record_a,record_b pairs that must stay apart.

``growthlens cdp predict TRANSACTIONS.csv --customer-col C --date-col D --amount-col A --cutoff DATE
--horizon-days N --out predictions.csv`` fits BG/NBD + Gamma-Gamma on the transactions up to and including the
cutoff day and writes one row per customer (expected purchases and revenue, churn probability, P(alive),
predicted LTV with a 90% interval). Rows after the cutoff, within the horizon, are scored as a holdout. Bad
input names its column and data row (row 1 is the first line after the header).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from core.cdp import ltv
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


def _predict(args: argparse.Namespace) -> int:
    raw = _read_csv(args.transactions, "transactions")
    cols = (args.customer_col, args.date_col, args.amount_col)
    try:
        cutoff = pd.Timestamp(args.cutoff)
    except ValueError:
        cutoff = pd.NaT
    if pd.isna(cutoff):
        raise ValueError(f"--cutoff: cannot read {args.cutoff!r} as a date")
    if args.horizon_days <= 0:
        raise ValueError("--horizon-days must be a positive number of days")
    clean = ltv.clean_transactions(raw, *cols, date_format=args.date_format)  # rows count from 1 after the header
    t = time.perf_counter()
    summary = ltv.rfm_summary(clean, "customer", "day", "amount", cutoff, freq=args.freq)
    models = ltv.fit_customer_models(summary, penalizer=args.penalizer)
    pred = ltv.predict_customers(summary, models, args.horizon_days, discount_rate_annual=args.discount_rate)
    elapsed = time.perf_counter() - t
    out = pred[list(ltv.PREDICTION_COLUMNS)].rename_axis("customer_id").reset_index()
    _write_csv(out, args.out)
    if args.quiet:
        return 0
    print(f"{len(out)} customers ({int((summary['frequency'] > 0).sum())} repeat buyers) fitted on transactions "
          f"to {cutoff.date()} in {elapsed:.2f} s; horizon {args.horizon_days:g} days")
    print(models.describe())
    actual = ltv.holdout_actuals(clean, "customer", "day", "amount", cutoff, args.horizon_days)
    if len(actual):
        ev = ltv.evaluate_holdout(pred, summary, actual, args.horizon_days, unit_days=models.unit_days)
        bias = ev["predicted_purchases"] / ev["actual_purchases"] - 1 if ev["actual_purchases"] else float("nan")
        first, last = cutoff + pd.Timedelta(days=1), cutoff + pd.Timedelta(days=args.horizon_days)
        print(f"holdout {first.date()} to {last.date()}: "
              f"purchases predicted {ev['predicted_purchases']:.1f} vs actual {ev['actual_purchases']:.0f} "
              f"({bias:+.1%}); revenue predicted {ev['predicted_revenue']:,.2f} vs actual "
              f"{ev['actual_revenue']:,.2f}")
        print(f"per customer purchases: MAE {ev['mae']:.3f}, RMSE {ev['rmse']:.3f}; naive past rate x horizon: "
              f"MAE {ev['naive_mae']:.3f}, RMSE {ev['naive_rmse']:.3f}"
              + (f"; {ev['new_customers']:.0f} customers first seen in the holdout not scored"
                 if ev["new_customers"] else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cdp`` and its subcommands to the ``growthlens`` command."""
    cdp = sub.add_parser("cdp", help="customer data: identity resolution, lifetime value predictions")
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
    p = cdp_sub.add_parser("predict", help="predict purchases, churn and lifetime value per customer",
                           description="Fit BG/NBD + Gamma-Gamma on transactions up to the cutoff day and predict "
                                       "each customer's next --horizon-days; rows after the cutoff are a holdout.")
    p.add_argument("transactions", help="CSV with one row per transaction")
    p.add_argument("--customer-col", required=True, help="column with the customer id")
    p.add_argument("--date-col", required=True, help="column with the transaction date (purchases on one day count "
                                                     "once)")
    p.add_argument("--amount-col", required=True, help="column with the transaction amount (>= 0)")
    p.add_argument("--cutoff", required=True, help="last day of the calibration period (included)")
    p.add_argument("--horizon-days", dest="horizon_days", type=float, required=True, help="days to predict")
    p.add_argument("--out", required=True, help="predictions CSV to write (one row per customer)")
    p.add_argument("--date-format", dest="date_format", help="strftime format of the dates (default: inferred)")
    p.add_argument("--discount-rate", dest="discount_rate", type=float, default=0.0,
                   help="annual discount rate for predicted_ltv (default 0)")
    p.add_argument("--penalizer", type=float, default=0.0, help="L2 penalty on the model parameters (default 0)")
    p.add_argument("--freq", choices=sorted(ltv.UNIT_DAYS), default="D",
                   help="time unit of the fitted parameters: D days, W weeks (default D)")
    p.add_argument("--quiet", action="store_true", help="no parameters or holdout report")
    p.set_defaults(func=_predict)
    cdp.set_defaults(func=lambda _args: (cdp.print_help(), 0)[1])
