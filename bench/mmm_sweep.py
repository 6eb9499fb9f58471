"""MMM accuracy sweep across generated worlds: ROAS error per channel, interval coverage and Google's optimum.

Run: ``nice .venv/bin/python bench/mmm_sweep.py [--n-boot 100] [--quick]``. Worlds: TechStyle seeds 42, 7, 1, 2, 3
(two years daily, five channels, media effects scaling with demand, efficiency drift, a privacy change) and the
additive synthetic worlds of ``core.demo.mmm_synth`` (daily five channels, seeds 0-2; weekly four channels with two
controls, seeds 1-3). Prints one row per world and a summary; used to judge model changes on many worlds at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.demo.mmm_synth import default_daily, default_weekly  # noqa: E402
from core.demo.techstyle import generate_techstyle  # noqa: E402
from core.mmm.design import to_wide  # noqa: E402
from core.mmm.fit import fit_mmm  # noqa: E402


def worlds(quick: bool = False, wide: bool = False) -> list[dict]:
    """(name, wide df, external factors, spend cols, control cols, truth) for every world of the sweep; ``wide``: 17
    TechStyle seeds and 8 of each synthetic world (for a summary less at the mercy of a few seeds)."""
    out = []
    ts = (42, 7, 1, 2, 3, *range(10, 22)) if wide else (42, 7) if quick else (42, 7, 1, 2, 3)
    sd = range(0, 8) if wide else (0,) if quick else (0, 1, 2)
    sw = range(1, 9) if wide else (1,) if quick else (1, 2, 3)
    for s in ts:
        d = generate_techstyle(seed=s, end=date(2026, 11, 25))
        df = to_wide(d.marketing, d.kpis)
        out.append({"name": f"techstyle s{s}", "df": df, "ef": d.external_factors,
                    "spend": [c for c in df.columns if c not in ("date", "revenue")], "controls": [],
                    "truth": d.truth})
    for s in sd:
        w = default_daily(seed=s)
        out.append({"name": f"synth daily s{s}", "df": w.data, "ef": w.external_factors, "spend": w.spend_cols,
                    "controls": w.control_cols, "truth": w.truth})
    for s in sw:
        w = default_weekly(seed=s)
        out.append({"name": f"synth weekly s{s}", "df": w.data, "ef": w.external_factors, "spend": w.spend_cols,
                    "controls": w.control_cols, "truth": w.truth})
    return out


def evaluate(ds: dict, n_boot: int, n_starts: int = 4) -> dict:
    """Fit one world and score it against its truth."""
    t = time.perf_counter()
    art = fit_mmm(ds["df"], spend_cols=ds["spend"], control_cols=ds["controls"], external_factors=ds["ef"],
                  n_boot=n_boot, seed=0, n_starts=n_starts)
    sec = time.perf_counter() - t
    truth = ds["truth"]["channels"]
    errs, cover = {}, 0
    for c, ch in art["channels"].items():
        tr = truth[c]["roas"]
        errs[c] = ch["roas"]["mean"] / tr - 1
        cover += int(ch["roas"]["low"] <= tr <= ch["roas"]["high"])
    top3 = sorted(truth, key=lambda c: -truth[c]["spend_total"])[:3]
    g = art["channels"].get("Google Ads")
    gopt = (g["optimal_daily_spend"] / truth["Google Ads"]["optimal_daily_spend"] - 1) if g else None
    return {"errs": errs, "cover": cover, "n": len(errs), "top3_max": max(abs(errs[c]) for c in top3),
            "mean_abs": float(np.mean([abs(e) for e in errs.values()])), "gopt": gopt, "sec": sec,
            "mape_h": art["fit"]["mape_holdout"], "g": art.get("media_demand_elasticity")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--wide", action="store_true", help="many seeds; prints a summary per family of worlds")
    ap.add_argument("--starts", type=int, default=4)
    a = ap.parse_args()
    rows = []
    print(f"{'world':18} {'cover':>5} {'mean|err|':>9} {'top3 max':>8} {'Google opt':>10} {'holdout':>7} {'s':>5}  "
          "per-channel ROAS error")
    for ds in worlds(a.quick, a.wide):
        r = evaluate(ds, a.n_boot, a.starts)
        r["family"] = ds["name"].rsplit(" ", 1)[0]
        rows.append(r)
        g = f"{r['gopt']:+.0%}" if r["gopt"] is not None else "-"
        per = " ".join(f"{c.split()[0]}:{e:+.0%}" for c, e in r["errs"].items())
        print(f"{ds['name']:18} {r['cover']}/{r['n']:<3} {r['mean_abs']:9.1%} {r['top3_max']:8.1%} {g:>10} "
              f"{r['mape_h']:7.1%} {r['sec']:5.1f} g={r['g']} {per}", flush=True)
    cov = sum(r["cover"] for r in rows), sum(r["n"] for r in rows)
    print(f"coverage {cov[0]}/{cov[1]}; mean |ROAS error| {np.mean([r['mean_abs'] for r in rows]):.1%}; "
          f"top-3 within 20% in {sum(r['top3_max'] <= 0.2 for r in rows)}/{len(rows)} worlds")
    print("\n| worlds | n | mean abs ROAS error | per channel | top-3 by spend within 20% | truth in 90% interval | "
          "Google optimum: mean abs error, within 15% |\n|---|---|---|---|---|---|---|")
    for fam in dict.fromkeys(r["family"] for r in rows):
        rs = [r for r in rows if r["family"] == fam]
        per = {c: np.mean([abs(r["errs"][c]) for r in rs]) for c in rs[0]["errs"]}
        g = [abs(r["gopt"]) for r in rs if r["gopt"] is not None]
        gtxt = f"{np.mean(g):.1%}, {sum(v <= 0.15 for v in g)}/{len(g)}" if g else "—"
        print(f"| {fam} | {len(rs)} | {np.mean([r['mean_abs'] for r in rs]):.1%} | "
              + ", ".join(f"{c} {v:.0%}" for c, v in per.items())
              + f" | {sum(r['top3_max'] <= 0.2 for r in rs)}/{len(rs)} | {sum(r['cover'] for r in rs)}/"
              f"{sum(r['n'] for r in rs)} | {gtxt} |")


if __name__ == "__main__":
    main()
