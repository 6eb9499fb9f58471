"""MMM accuracy on 100+ worlds whose structure varies at random (``bench/worlds``), judged against each world's truth.

Run: ``nice .venv/bin/python bench/mmm_worlds.py [--quick] [--n 120] [--n-boot 100] [--jobs 2] [--out NAME]``.

Per world: the model is fitted as a user would fit it (the wide table, the controls a user would name, the events
table when the world gives one), then scored:

- ROAS error per channel (fitted incremental ROAS / true removal ROAS − 1), and whether the 90% interval holds the
  truth, with the interval's width relative to the truth;
- the default plan (risk-aware, same budget) and the plan with ±50% bounds, valued under the world's **true**
  response: the revenue each plan adds over the last 52 weeks (each channel's spend pattern kept, its level set to
  the plan's daily amount) as a share of what the truly best allocation of the same budget (under the same bounds)
  would add. A negative share is a plan that loses money;
- which channels the default plan keeps at their spend until a lift test measures them ("test first",
  ``make_plan(..., test_first=True)``) and which tests it recommends, so the summary can say whether a held channel
  is one whose ROAS the fit got badly wrong.

Prints one row per world and a summary (median and 90th percentile of the absolute ROAS error over channels, pooled
coverage, median relative interval width, plan shares and losses, test-first holds); ``--out`` writes the raw rows
to bench/out/worlds/NAME.json.

Plan ablations do not need new fits: ``--fits NAME`` keeps each world's artifact under bench/out/worlds/fits/NAME/
and reuses it (only for ``--set`` overrides of plan-side settings; health and intervals come from the fit), and
``--variant LABEL:key=literal;key=literal`` scores one more same-budget plan per world with those ``make_plan``
keywords (e.g. ``free:test_first=False``, ``free50:test_first=False;max_change=0.5``) or another test-first rule
(``hold_min_share``, ``hold_width``, ``hold_band``: see ``_hold_rule``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mmm_worlds_report import OUT, plan_table, summary, table  # noqa: E402
from bench.worlds import QUICK_SEEDS, World, make_world  # noqa: E402
from core.mmm.fit import fit_mmm  # noqa: E402
from core.mmm.plan import make_plan  # noqa: E402

WINDOW_DAYS = 364


class Valuer:
    """The world's true revenue over the last 52 weeks for a daily allocation (patterns kept, levels set)."""

    def __init__(self, world: World, current: np.ndarray) -> None:
        self.w = world
        x = world.data[world.spend_cols].to_numpy(float)
        self.days = 7.0 if world.granularity == "week" else 1.0
        n = len(x)
        self.h = min(int(round(WINDOW_DAYS / self.days)), n)
        win = x[n - self.h:]
        mean = win.mean(axis=0)
        self.pattern = np.where(mean > 0, win / np.where(mean > 0, mean, 1.0), 1.0)
        self.x = x
        self.current = current

    def __call__(self, alloc: np.ndarray) -> float:
        s = self.x.copy()
        s[len(s) - self.h:] = self.pattern * (np.maximum(alloc, 0.0) * self.days)[None, :]
        return float(self.w.expected_kpi(s)[len(s) - self.h:].sum())

    def best(self, budget: float, lo: np.ndarray, hi: np.ndarray, starts: list[np.ndarray]) -> tuple[np.ndarray, float]:
        """The truly best allocation of ``budget`` within [lo, hi] (SLSQP from several starts)."""
        scale = max(budget, 1.0)
        best_a, best_v = None, -np.inf
        cons = [{"type": "eq", "fun": lambda z: z.sum() - budget / scale}]
        for a0 in starts:
            z0 = np.clip(a0, lo, hi) / scale
            res = minimize(lambda z: -self(z * scale) / 1e6, z0, method="SLSQP",
                           bounds=list(zip(lo / scale, hi / scale, strict=True)), constraints=cons,
                           options={"maxiter": 200, "ftol": 1e-10})
            z = np.clip(res.x, lo / scale, hi / scale)
            v = self(z * scale)
            if v > best_v:
                best_a, best_v = z * scale, v
        return best_a, best_v


RISK_QUANTILE = 0.25  # the plan's default (make_plan); --risk changes it for an experiment


def _hold_rule(art: dict, rule: dict, kw: dict) -> list[str]:
    """A different test-first rule, for ablations (``hold_*`` variant keywords): hold the channels with a recommended
    test whose spend share is at least ``hold_min_share`` and that are unidentified (or, with ``hold_width``, whose
    ROAS interval is wider than that many times its estimate); ``hold_band`` bounds them to ±that share of their
    spend instead of keeping them. Sets ``kw`` for make_plan; returns the channels so held."""
    from core.mmm.experiment import recommend_tests
    from core.mmm.health import health_of

    hh = health_of(art).channels
    width = rule.get("hold_width")
    chosen = [t.channel for t in recommend_tests(art)
              if t.spend_share >= rule.get("hold_min_share", 0.0)
              and (t.hold if width is None else (hh[t.channel].roas_rel_width or np.inf) > width)]
    kw["test_first"] = False
    band = rule.get("hold_band")
    if band is None:
        kw["locked"] = chosen
    else:
        cur = {c: art["channels"][c]["current_daily_spend"] for c in chosen}
        kw["min_spend"] = {c: v * (1 - band) for c, v in cur.items()}
        kw["max_spend"] = {c: v * (1 + band) for c, v in cur.items()}
    return chosen


def _plan_share(world: World, art: dict, max_change: float | None, **kw) -> dict:
    names = world.spend_cols
    cur = np.array([art["channels"][c]["current_daily_spend"] for c in names])
    val = Valuer(world, cur)
    rule = {k: kw.pop(k) for k in list(kw) if k.startswith("hold_")}
    ruled = _hold_rule(art, rule, kw) if rule else None
    plan = make_plan(art, max_change=max_change, **{"risk_quantile": RISK_QUANTILE, **kw})
    alloc = np.array([plan["allocation"][c] for c in names])
    budget = float(cur.sum())
    if max_change is None:
        lo, hi = np.zeros(len(names)), np.full(len(names), budget)
    else:
        lo, hi = cur * (1 - max_change), cur * (1 + max_change)
    even = np.full(len(names), budget / len(names))
    a_star, v_star = val.best(budget, lo, hi, [cur, even, alloc])
    v0, vp = val(cur), val(alloc)
    avail = v_star - v0
    return {"available": avail, "gained": vp - v0, "base": v0,
            "share": (vp - v0) / avail if avail > 1e-4 * abs(v0) else None,
            "claimed": plan["projection"]["lift_per_day"] * val.h * val.days,
            "moved": float(np.abs(alloc - cur).sum() / max(budget, 1e-9) / 2),
            "held": ruled if ruled is not None else [r["channel"] for r in plan["channels"]
                                                     if r.get("bound") == "lift test first"],
            "tests": [{"channel": t["channel"], "status": t["status"], "hold": t["hold"],
                       "spend_share": t["spend_share"], "weeks": t["weeks"], "change_share": t["change_share"],
                       "reaches_target": t["reaches_target"]} for t in plan.get("tests", [])]}


def _apply(settings: list[str]) -> None:
    """``module.ATTR=value`` overrides (Python literals) for ablations, e.g. ``core.mmm.fit.ROAS_PRIOR_REL_SD=None``."""
    import ast
    import importlib

    for item in settings:
        target, value = item.split("=", 1)
        mod, attr = target.rsplit(".", 1)
        setattr(importlib.import_module(mod), attr, ast.literal_eval(value))


LIFT_REL_SE = 0.15  # standard error of a simulated holdout, relative to its true lift


def holdout_test(w: World, art: dict, seed: int) -> tuple[pd.DataFrame, str]:
    """The experiment a user would run next: a four-week holdout of the channel whose ROAS interval is widest
    (relative to its estimate), ending eight weeks before the data end, read out four weeks after it (so the
    carry-over counts) with a 15% standard error."""
    import pandas as pd

    def rel_width(c: str) -> float:
        r = art["channels"][c]["roas"]
        return (r["high"] - r["low"]) / max(r["mean"], 1e-9 * max(r["high"], 1e-9))

    channel = max(w.spend_cols, key=rel_width)
    days = 7 if w.granularity == "week" else 1
    h = int(round(28 / days))
    end = len(w.data) - int(round(56 / days))
    start = end - h
    x = w.data[w.spend_cols].to_numpy(float)
    alt = x.copy()
    j = w.spend_cols.index(channel)
    alt[start:end, j] = 0.0
    until = min(end + h, len(w.data))
    lift = float((w.expected_kpi(alt) - w.expected_kpi(x))[start:until].sum())
    se = LIFT_REL_SE * abs(lift) + 1e-9
    measured = lift + se * np.random.default_rng(seed + 1000).standard_normal()
    first = w.data["date"].iloc[start]
    last = w.data["date"].iloc[end - 1] + pd.Timedelta(days=days - 1)
    read = w.data["date"].iloc[until - 1] + pd.Timedelta(days=days - 1)
    table = pd.DataFrame({"channel": [channel], "start": [first], "end": [last], "measured_until": [read],
                          "spend_change": [-float(x[start:end, j].max() / days) - 1.0], "lift": [measured],
                          "se": [se]})
    return table, channel


def _variant(spec: str) -> tuple[str, dict]:
    """``LABEL:key=literal;key=literal`` → (label, make_plan keywords)."""
    import ast

    label, _, rest = spec.partition(":")
    kw = {}
    for item in filter(None, rest.split(";")):
        k, v = item.split("=", 1)
        kw[k.strip()] = ast.literal_eval(v.strip())
    return label, kw


def _fit(w: World, seed: int, fit_kw: dict, lift_test: bool, fits: str | None) -> tuple[dict, str | None, float,
                                                                                         float]:
    """The world's artifact (and the tested channel), from the ``fits`` store when it holds one; wall and CPU
    seconds of the fit as first measured."""
    path = OUT / "fits" / fits / f"s{seed}{'_lift' if lift_test else ''}.pkl" if fits else None
    if path is not None and path.exists():
        return pickle.loads(path.read_bytes())
    t, c = time.perf_counter(), time.process_time()
    art = fit_mmm(w.data, **fit_kw)
    tested = None
    if lift_test:
        table, tested = holdout_test(w, art, seed)
        t, c = time.perf_counter(), time.process_time()
        art = fit_mmm(w.data, lift_tests=table, **fit_kw)
    out = (art, tested, time.perf_counter() - t, time.process_time() - c)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(out))
    return out


def evaluate(seed: int, n_boot: int, calendar: bool = True, lift_test: bool = False, fits: str | None = None,
             variants: tuple[str, ...] = ()) -> dict:
    """Fit one world and score ROAS, intervals and plans against its truth (``lift_test``: after one holdout of
    the channel the first fit knew least about)."""
    w = make_world(seed)
    kw = ({"country": w.country if calendar else None} if "country" in inspect.signature(fit_mmm).parameters
          else {})
    fit_kw = {"spend_cols": w.spend_cols, "control_cols": w.control_cols, "external_factors": w.external_factors,
              "n_boot": n_boot, "seed": 0, **kw}
    art, tested, wall, cpu = _fit(w, seed, fit_kw, lift_test, fits)
    rows = {}
    for name in w.spend_cols:
        tr = w.truth["channels"][name]["roas"]
        r = art["channels"][name]["roas"]
        rows[name] = {"truth": tr, "mean": r["mean"], "low": r["low"], "high": r["high"],
                      "err": r["mean"] / tr - 1 if tr > 0 else None,
                      "abs_err_roas": abs(r["mean"] - tr),
                      "covered": bool(r["low"] <= tr <= r["high"]),
                      "width": (r["high"] - r["low"]) / tr if tr > 0 else None,
                      "spend_share": w.truth["channels"][name]["share_of_spend"],
                      "contrib_share": w.truth["channels"][name]["contribution"] / w.truth["expected_revenue_total"]}
    if tested:
        rows[tested]["tested"] = True
    out = {"seed": seed, "name": w.name, "structure": w.structure, "channels": rows, "wall": wall, "cpu": cpu,
           "mape_holdout": art["fit"]["mape_holdout"], "r2": art["fit"]["r2"],
           "model": {k: art.get(k) for k in ("kpi_form", "media_demand_elasticity", "form_selection",
                                             "efficiency_breaks") if k in art},
           "stages": {c: ch["adstock"].get("stages", 1) for c, ch in art["channels"].items()},
           "warnings": len(art["warnings"])}
    plans = [("plan", None, {}), ("plan_50", 0.5, {})] + [(f"plan_{lb}", k.pop("max_change", None), k)
                                                         for lb, k in map(_variant, variants)]
    for key, mc, pkw in plans:
        try:
            out[key] = _plan_share(w, art, mc, **pkw)
        except Exception as e:  # noqa: BLE001 - a plan that fails is recorded, not fatal
            out[key] = {"error": f"{type(e).__name__}: {e}"}
    return out


def _safe(seed: int, n_boot: int, calendar: bool = True, lift_test: bool = False, fits: str | None = None,
          variants: tuple[str, ...] = ()) -> dict:
    try:
        return evaluate(seed, n_boot, calendar, lift_test, fits, variants)
    except Exception as e:  # noqa: BLE001 - a world the model refuses is recorded
        return {"seed": seed, "error": f"{type(e).__name__}: {e}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the structural subset (bench.worlds.QUICK_SEEDS)")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--seeds", default=None, help="comma-separated seeds")
    ap.add_argument("--set", action="append", default=[], help="module.ATTR=literal override (ablations)")
    ap.add_argument("--no-calendar", action="store_true", help="no public holidays when a world gives no events")
    ap.add_argument("--lift-test", action="store_true",
                    help="refit each world after one simulated holdout of its least-known channel")
    ap.add_argument("--table", default=None, help="print a markdown table of saved runs: stem=label,stem=label")
    ap.add_argument("--plan-table", default=None,
                    help="print a markdown table of saved runs' plans: stem[:variant]=label,...")
    ap.add_argument("--fits", default=None, help="store/reuse each world's fit under bench/out/worlds/fits/NAME")
    ap.add_argument("--variant", action="append", default=[],
                    help="one more same-budget plan per world: LABEL:key=literal;key=literal (make_plan keywords)")
    a = ap.parse_args()
    if a.table:
        print(table([tuple(x.split("=", 1)) for x in a.table.split(",")]))
        return
    if a.plan_table:
        print(plan_table([tuple(x.split("=", 1)) for x in a.plan_table.split(",")]))
        return
    seeds = ([int(s) for s in a.seeds.split(",")] if a.seeds else list(QUICK_SEEDS) if a.quick else list(range(a.n)))
    rows = []
    with ProcessPoolExecutor(a.jobs, initializer=_apply, initargs=(a.set,)) as ex:
        for r in ex.map(_safe, seeds, [a.n_boot] * len(seeds), [not a.no_calendar] * len(seeds),
                        [a.lift_test] * len(seeds), [a.fits] * len(seeds), [tuple(a.variant)] * len(seeds)):
            rows.append(r)
            if "error" in r:
                print(f"s{r['seed']:<4} ERROR {r['error']}", flush=True)
                continue
            e = [ch["err"] for ch in r["channels"].values() if ch["err"] is not None]
            cv = sum(ch["covered"] for ch in r["channels"].values())
            p = r["plan"].get("share")
            held = ",".join(r["plan"].get("held", []))
            print(f"s{r['seed']:<4} {r['name'][:44]:44} |err| {np.mean(np.abs(e)):5.0%} cover {cv}/{len(e)} "
                  f"plan {'-' if p is None else f'{p:+.0%}':>6}{f' held {held}' if held else ''} "
                  f"cpu {r['cpu']:4.1f}s  "
                  + " ".join(f"{k[:6]}:{ch['err']:+.0%}" for k, ch in r["channels"].items() if ch["err"] is not None),
                  flush=True)
    s = summary(rows)
    print(json.dumps(s, indent=1))
    if a.out:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{a.out}.json").write_text(json.dumps({"summary": s, "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
