"""Reference fit with PyMC-Marketing (run inside bench/.venv-pymc): CSV in, JSON with per-channel ROAS out.

Usage: bench/.venv-pymc/bin/python bench/pymc_fit.py DATA.csv OUT.json --channels A,B --controls c1,c2 [--l-max 14]
The CSV has a ``date`` column, the KPI ``revenue``, one spend column per channel and optional controls.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--channels", required=True)
    ap.add_argument("--controls", default="")
    ap.add_argument("--l-max", type=int, default=14)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    a = ap.parse_args()
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    df = pd.read_csv(a.data, parse_dates=["date"])
    channels = a.channels.split(",")
    controls = [c for c in a.controls.split(",") if c]
    X = df[["date", *channels, *controls]]
    y = df["revenue"].rename("y")
    t0 = time.perf_counter()
    mmm = MMM(date_column="date", channel_columns=channels, control_columns=controls or None,
              adstock=GeometricAdstock(l_max=a.l_max), saturation=LogisticSaturation(), yearly_seasonality=4)
    mmm.build_model(X, y)
    mmm.add_original_scale_contribution_variable(var=["channel_contribution"])
    mmm.fit(X, y, chains=a.chains, draws=a.draws, tune=a.tune, random_seed=0, progressbar=False, cores=1)
    secs = time.perf_counter() - t0
    contrib = mmm.idata.posterior["channel_contribution_original_scale"]  # (chain, draw, date, channel)
    tot = contrib.sum("date").stack(sample=("chain", "draw")).transpose("channel", "sample").values
    out = {"seconds": secs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "channels": {}}
    for i, c in enumerate(channels):
        r = tot[i] / df[c].sum()
        out["channels"][c] = {"roas": float(np.mean(r)), "low": float(np.quantile(r, 0.05)),
                              "high": float(np.quantile(r, 0.95))}
    try:
        out["divergences"] = int(mmm.idata.sample_stats["diverging"].sum())
    except Exception:  # noqa: BLE001 - diagnostics are optional
        out["divergences"] = None
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
