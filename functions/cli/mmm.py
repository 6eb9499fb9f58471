"""``growthlens mmm``: fit a marketing mix model from a CSV and plan a budget from a fitted model file.

    growthlens mmm fit DATA.csv --date-col date --kpi-col revenue --spend-cols google,meta,tiktok \\
        [--control-cols price] [--factors external_factors.csv] [--lift-tests lift_tests.csv] --out model.json
    growthlens mmm optimize model.json [--daily-budget 15000] [--max-change 0.3] [--min google=2000] \\
        [--max tiktok=6000] [--lock email] [--goal max_revenue] --out plan.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from core.mmm.plan import GOALS, make_plan


def _read_csv(path: str, what: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what} file not found: {path}")
    try:
        return pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{what} file {path} is not a readable CSV: {e}") from e


def _cols(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _write_json(path: str, doc: dict[str, Any]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=float))
    tmp.replace(out)


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the model on a wide CSV (one row per date) and write the artifact."""
    df = _read_csv(args.data, "data")
    spend = _cols(args.spend_cols)
    controls = _cols(args.control_cols)
    if not spend:
        raise ValueError("--spend-cols needs at least one column")
    missing = [c for c in [args.date_col, args.kpi_col, *spend, *controls] if c not in df.columns]
    if missing:
        raise ValueError(f"{args.data}: no column(s) {', '.join(missing)} (columns: {', '.join(df.columns)})")
    df[args.date_col] = pd.to_datetime(df[args.date_col], errors="coerce")
    bad = df.index[df[args.date_col].isna()]
    if len(bad):
        raise ValueError(f"{args.data}: row {int(bad[0]) + 2}, column {args.date_col}: not a date")
    factors = _read_csv(args.factors, "external factors") if args.factors else None
    lift_tests = _read_csv(args.lift_tests, "lift tests") if args.lift_tests else None
    from core.mmm.fit import fit_mmm

    def progress(frac: float, message: str = "") -> None:
        if not args.quiet:
            print(f"\r{frac:4.0%} {message:<60}", end="", file=sys.stderr, flush=True)

    art = fit_mmm(df, date_col=args.date_col, kpi_col=args.kpi_col, spend_cols=spend, control_cols=controls or None,
                  external_factors=factors, seed=args.seed, n_boot=args.n_boot, progress=progress,
                  kpi_form=args.kpi_form, country=None if args.country.lower() == "none" else args.country,
                  lift_tests=lift_tests)
    if not args.quiet:
        print(file=sys.stderr)
    _write_json(args.out, art)
    fit = art.get("fit", {})
    gran = {"day": "daily", "week": "weekly"}.get(art.get("granularity"), art.get("granularity"))
    print(f"fitted {gran} model on {art.get('n_obs')} periods: R² {fit.get('r2', float('nan')):.3f}, "
          f"holdout MAPE {fit.get('mape_holdout', float('nan')):.1%} → {args.out}")
    for name, ch in art["channels"].items():
        r = ch["roas"]
        print(f"  {name:<16} ROAS {r['mean']:.2f} (90% {r['low']:.2f}–{r['high']:.2f}), marginal ROAS "
              f"{ch['marginal_roas']:.2f}, current ${ch['current_daily_spend']:,.0f}/day, "
              f"optimal ${ch['optimal_daily_spend']:,.0f}/day")
    for w in art.get("warnings", []):
        print(f"  note: {w}")
    return 0


def _pairs(items: list[str] | None, flag: str) -> dict[str, float]:
    out = {}
    for item in items or []:
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise ValueError(f"{flag} expects CHANNEL=AMOUNT (got {item!r})")
        try:
            out[name] = float(value)
        except ValueError as e:
            raise ValueError(f"{flag} {item!r}: {value!r} is not a number") from e
    return out


def cmd_optimize(args: argparse.Namespace) -> int:
    """Plan daily spend per channel from a fitted model file and write the plan."""
    p = Path(args.model)
    if not p.is_file():
        raise ValueError(f"model file not found: {args.model}")
    try:
        art = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{args.model} is not a model file (JSON error: {e})") from e
    if not isinstance(art, dict) or not art.get("channels"):
        raise ValueError(f"{args.model} is not a model file: no channels")
    plan = make_plan(art, goal=args.goal, daily_budget=args.daily_budget, max_change=args.max_change,
                     min_spend=_pairs(args.min, "--min"), max_spend=_pairs(args.max, "--max"), locked=args.lock or [],
                     target_revenue=args.target_revenue, margin=args.margin, target_mroas=args.target_mroas,
                     fixed=args.fixed, risk_quantile=None if args.expected else 0.25)
    _write_json(args.out, plan)
    proj = plan["projection"]
    print(f"{'channel':<16}{'current':>12}{'plan':>12}")
    for r in plan["channels"]:
        print(f"{r['channel']:<16}{r['current']:>12,.0f}{r['optimized']:>12,.0f} {r['arrow']}")
    print(f"projected lift ${proj['lift_per_day']:,.0f}/day, ${proj['lift_per_year']:,.0f}/year "
          f"(90% ${proj['lift_per_year_low']:,.0f} to ${proj['lift_per_year_high']:,.0f}) → {args.out}")
    for n in plan["notes"]:
        print(f"  note: {n}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``growthlens mmm fit`` and ``growthlens mmm optimize``."""
    mmm = sub.add_parser("mmm", help="fit a marketing mix model; plan a budget from it")
    mmm_sub = mmm.add_subparsers(dest="mmm_command", metavar="ACTION", required=True)

    f = mmm_sub.add_parser("fit", help="fit a model on a CSV with one row per date (daily or weekly)")
    f.add_argument("data", help="CSV: a date column, the KPI, one spend column per channel")
    f.add_argument("--date-col", default="date")
    f.add_argument("--kpi-col", default="revenue")
    f.add_argument("--spend-cols", required=True, help="comma-separated spend columns (one per channel)")
    f.add_argument("--control-cols", default=None, help="comma-separated control columns (price, promotions, ...)")
    f.add_argument("--factors", default=None, help="external_factors.csv (holidays, events)")
    f.add_argument("--lift-tests", default=None,
                   help="lift tests CSV (channel, start, end, spend_change per day, lift, se) that calibrate the fit")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--n-boot", type=int, default=200, help="bootstrap refits for the 90%% intervals")
    f.add_argument("--kpi-form", choices=("auto", "additive", "log"), default="auto",
                   help="additive, log (multiplicative business) or auto (chosen by rolling-origin validation)")
    f.add_argument("--country", default="US",
                   help="public holidays of this ISO country enter the baseline when --factors names no events "
                        "(none: no calendar)")
    f.add_argument("--quiet", action="store_true", help="no progress on stderr")
    f.add_argument("--out", required=True, help="where to write the model (JSON)")
    f.set_defaults(func=cmd_fit)

    o = mmm_sub.add_parser("optimize", help="plan daily spend per channel from a fitted model")
    o.add_argument("model", help="model JSON written by `growthlens mmm fit`")
    o.add_argument("--daily-budget", type=float, default=None, help="total daily budget (default: current)")
    o.add_argument("--max-change", type=float, default=None, help="max relative change per channel, e.g. 0.3")
    o.add_argument("--min", action="append", metavar="CHANNEL=AMOUNT", help="minimum daily spend (repeatable)")
    o.add_argument("--max", action="append", metavar="CHANNEL=AMOUNT", help="maximum daily spend (repeatable)")
    o.add_argument("--lock", action="append", metavar="CHANNEL", help="keep this channel's spend (repeatable)")
    o.add_argument("--fixed", action="append", metavar="CHANNEL", default=None,
                   help="fixed-cost channel (default: flagged in the model, or email)")
    o.add_argument("--goal", choices=GOALS, default="max_revenue")
    o.add_argument("--target-revenue", type=float, default=None, help="goal min_budget: total revenue per day")
    o.add_argument("--margin", type=float, default=None, help="goal max_profit: gross margin (0–1)")
    o.add_argument("--target-mroas", type=float, default=None, help="goal target_mroas: marginal ROAS to reach")
    o.add_argument("--expected", action="store_true", help="maximise expected revenue (not risk-aware)")
    o.add_argument("--out", required=True, help="where to write the plan (JSON)")
    o.set_defaults(func=cmd_optimize)
