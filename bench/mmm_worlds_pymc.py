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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--out", default="pymc_worlds")
    ap.add_argument("--timeout", type=int, default=1800)
    a = ap.parse_args()
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
