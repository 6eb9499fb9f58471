"""PyMC-Marketing 1.3 on benchmark worlds (``bench/worlds``), scored like ``bench/mmm_worlds.py`` on the same data.

Run: ``nice .venv/bin/python bench/mmm_worlds_pymc.py --seeds 0,1,2 [--out NAME]``; needs ``bench/.venv-pymc`` (see the
Makefile's ``bench`` target). Each world is exported as a CSV (date, revenue, spend columns, the controls a user
would name) and fitted by ``bench/pymc_fit.py`` (geometric adstock, logistic saturation, yearly seasonality 4,
2 chains × 500 draws + 500 tune). PyMC-Marketing's ``MMM`` takes no events table, so worlds whose holidays come as a
table give it none, as a user of it would. Raw rows go to bench/out/worlds/NAME.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.worlds import make_world  # noqa: E402

PYMC_PY = ROOT / "bench" / ".venv-pymc" / "bin" / "python"
OUT = ROOT / "bench" / "out" / "worlds"


def run(seed: int, timeout: int) -> dict:
    """Fit one world with PyMC-Marketing and score its ROAS against the truth."""
    w = make_world(seed)
    OUT.mkdir(parents=True, exist_ok=True)
    csv, js = OUT / f"pymc_w{seed}.csv", OUT / f"pymc_w{seed}.json"
    df = w.data[["date", "revenue", *w.spend_cols, *w.control_cols]]
    df.to_csv(csv, index=False)
    l_max = 8 if w.granularity == "week" else 14
    cmd = [str(PYMC_PY), str(ROOT / "bench" / "pymc_fit.py"), str(csv), str(js), "--channels", ",".join(w.spend_cols),
           "--controls", ",".join(w.control_cols), "--l-max", str(l_max)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        return {"seed": seed, "error": (p.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    r = json.loads(js.read_text())
    rows = {}
    for c in w.spend_cols:
        tr = w.truth["channels"][c]["roas"]
        v = r["channels"][c]
        rows[c] = {"truth": tr, "mean": v["roas"], "low": v["low"], "high": v["high"], "err": v["roas"] / tr - 1,
                   "covered": bool(v["low"] <= tr <= v["high"]), "width": (v["high"] - v["low"]) / tr,
                   "contrib_share": w.truth["channels"][c]["contribution"] / w.truth["expected_revenue_total"]}
    return {"seed": seed, "name": w.name, "channels": rows, "seconds": r["seconds"], "wall": time.perf_counter() - t,
            "divergences": r.get("divergences")}


def compare(pymc_stem: str, ours_stem: str) -> str:
    """Markdown table: per world, PyMC-Marketing's and Growthlens's ROAS error and coverage on the same data."""
    pm = {r["seed"]: r for r in json.loads((OUT / f"{pymc_stem}.json").read_text())["rows"] if "error" not in r}
    us = {r["seed"]: r for r in json.loads((OUT / f"{ours_stem}.json").read_text())["rows"] if "error" not in r}
    lines = ["| world | PyMC-Marketing: mean \\|ROAS error\\| / median / in 90% interval / seconds | "
             "Growthlens: mean / median / in 90% interval / CPU seconds |", "|---|---|---|"]
    agg = {"p": [], "u": [], "pc": [], "uc": []}
    for seed in sorted(set(pm) & set(us)):
        p, u = pm[seed], us[seed]
        pe = [abs(c["err"]) for c in p["channels"].values()]
        ue = [abs(c["err"]) for c in u["channels"].values()]
        pc = [c["covered"] for c in p["channels"].values()]
        uc = [c["covered"] for c in u["channels"].values()]
        agg["p"] += pe
        agg["u"] += ue
        agg["pc"] += pc
        agg["uc"] += uc
        lines.append(f"| {u['name']} | {np.mean(pe):.0%} / {np.median(pe):.0%} / {sum(pc)} of {len(pc)} / "
                     f"{p['seconds']:.0f} s | {np.mean(ue):.0%} / {np.median(ue):.0%} / {sum(uc)} of {len(uc)} / "
                     f"{u['cpu']:.1f} s |")
    lines.append(f"| all {len(set(pm) & set(us))} worlds, per channel | median {np.median(agg['p']):.0%}, p90 "
                 f"{np.percentile(agg['p'], 90):.0%}, coverage {np.mean(agg['pc']):.0%} | median "
                 f"{np.median(agg['u']):.0%}, p90 {np.percentile(agg['u'], 90):.0%}, coverage "
                 f"{np.mean(agg['uc']):.0%} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compare", default=None, help="PYMC_STEM,OURS_STEM: print the side-by-side table and stop")
    ap.add_argument("--seeds", default="")
    ap.add_argument("--out", default="pymc_worlds")
    ap.add_argument("--timeout", type=int, default=1800)
    a = ap.parse_args()
    if a.compare:
        print(compare(*a.compare.split(",")))
        return
    rows = []
    for s in (int(x) for x in a.seeds.split(",")):
        r = run(s, a.timeout)
        rows.append(r)
        if "error" in r:
            print(f"s{s} ERROR {r['error']}", flush=True)
            continue
        e = [ch["err"] for ch in r["channels"].values()]
        print(f"s{s:<4} {r['name'][:44]:44} |err| {np.mean(np.abs(e)):5.0%} "
              f"cover {sum(ch['covered'] for ch in r['channels'].values())}/{len(e)} {r['seconds']:.0f} s", flush=True)
        (OUT / f"{a.out}.json").write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
