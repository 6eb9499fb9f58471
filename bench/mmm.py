"""MMM benchmark: fit time, peak memory and accuracy against planted truth, side by side with PyMC-Marketing.

Run: ``nice .venv/bin/python bench/mmm.py [--no-pymc] [--n-boot 200]``. Prints the figures and writes
bench/results/mmm.md. Data sets: TechStyle (two years daily, five channels), a synthetic two-year daily five-channel
world and a synthetic three-year weekly four-channel world with two controls (``core.demo.mmm_synth``).
PyMC-Marketing 1.3.0 runs in ``bench/.venv-pymc`` (python3.12) via ``bench/pymc_fit.py`` on the same data exported
to CSV (2 chains × 500 draws); without that venv its column says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.demo.mmm_synth import default_daily, default_weekly  # noqa: E402
from core.mmm.design import to_wide  # noqa: E402
from core.mmm.fit import fit_mmm  # noqa: E402

PYMC_PY = ROOT / "bench" / ".venv-pymc" / "bin" / "python"
OUT = ROOT / "bench" / "out" / "mmm"
SWEEP_HEADING = "## MMM accuracy across worlds"


def datasets() -> list[dict]:
    out = []
    try:
        from core.demo.techstyle import generate_techstyle

        d = generate_techstyle(seed=42, end=date(2026, 11, 25))
        df = to_wide(d.marketing, d.kpis)
        out.append({"name": "TechStyle daily (730 d, 5 ch)", "df": df, "ef": d.external_factors,
                    "spend": [c for c in df.columns if c not in ("date", "revenue")], "controls": [],
                    "truth": d.truth})
    except ImportError:
        pass
    w = default_daily(seed=0)
    out.append({"name": "Synthetic daily (730 d, 5 ch)", "df": w.data, "ef": w.external_factors,
                "spend": w.spend_cols, "controls": w.control_cols, "truth": w.truth})
    w = default_weekly(seed=1)
    out.append({"name": "Synthetic weekly (156 wk, 4 ch, 2 controls)", "df": w.data, "ef": w.external_factors,
                "spend": w.spend_cols, "controls": w.control_cols, "truth": w.truth})
    return out


def score(truth: dict, roas: dict[str, dict]) -> dict:
    errs, cover = [], 0
    for c, r in roas.items():
        t = truth["channels"][c]["roas"]
        errs.append(abs(r["mean"] / t - 1))
        cover += int(r["low"] <= t <= r["high"])
    return {"err": float(np.mean(errs)), "max_err": float(np.max(errs)), "cover": cover, "n": len(roas)}


def ours(ds: dict, n_boot: int) -> dict:
    fit_mmm(ds["df"].head(200), spend_cols=ds["spend"], control_cols=ds["controls"], n_boot=2)  # warm imports
    kw = {"spend_cols": ds["spend"], "control_cols": ds["controls"], "external_factors": ds["ef"], "n_boot": n_boot,
          "seed": 0}
    t, c = time.perf_counter(), time.process_time()
    art = fit_mmm(ds["df"], **kw)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    tracemalloc.start()  # a separate run: tracing allocations slows Python down several-fold
    fit_mmm(ds["df"], **{**kw, "n_boot": min(n_boot, 20)})
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    roas = {k: v["roas"] for k, v in art["channels"].items()}
    res = {"wall": wall, "cpu": cpu, "peak_mb": peak, **score(ds["truth"], roas), "art": art,
           "mape_holdout": art["fit"]["mape_holdout"], "r2": art["fit"]["r2"]}
    g = art["channels"].get("Google Ads")
    if g is not None:
        res["google_opt_err"] = g["optimal_daily_spend"] / ds["truth"]["channels"]["Google Ads"][
            "optimal_daily_spend"] - 1
    return res


def pymc(ds: dict, slug: str, timeout: int, reuse: bool = False) -> dict | None:
    OUT.mkdir(parents=True, exist_ok=True)
    csv, js = OUT / f"{slug}.csv", OUT / f"{slug}_pymc.json"
    if reuse and js.exists():
        return _pymc_result(ds, json.loads(js.read_text()), None)
    if not PYMC_PY.exists():
        return {"error": "bench/.venv-pymc not installed"}
    df = ds["df"][["date", "revenue", *ds["spend"], *ds["controls"]]].copy()
    df.to_csv(csv, index=False)
    l_max = 14 if len(df) > 300 else 8
    cmd = [str(PYMC_PY), str(ROOT / "bench" / "pymc_fit.py"), str(csv), str(js), "--channels", ",".join(ds["spend"]),
           "--controls", ",".join(ds["controls"]), "--l-max", str(l_max)]
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:200]}
    return _pymc_result(ds, json.loads(js.read_text()), time.perf_counter() - t)


def _pymc_result(ds: dict, r: dict, total: float | None) -> dict:
    roas = {c: {"mean": v["roas"], "low": v["low"], "high": v["high"]} for c, v in r["channels"].items()}
    return {"wall": r["seconds"], "total_wall": total, "peak_mb": r.get("peak_rss_mb"),
            **score(ds["truth"], roas), "roas": roas, "divergences": r.get("divergences")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-pymc", action="store_true")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--timeout", type=int, default=1500)
    ap.add_argument("--reuse-pymc", action="store_true", help="use PyMC results saved by an earlier run")
    a = ap.parse_args()
    rows, detail = [], []
    for ds in datasets():
        slug = ds["name"].split(" (")[0].lower().replace(" ", "_")
        o = ours(ds, a.n_boot)
        o100 = ours(ds, 100) if a.n_boot != 100 else o
        p = None if a.no_pymc else pymc(ds, slug, a.timeout, a.reuse_pymc)
        print(f"{ds['name']}: ours {o['wall']:.2f}s wall / {o['cpu']:.2f}s CPU (n_boot={a.n_boot}), "
              f"{o100['cpu']:.2f}s CPU (n_boot=100), peak {o['peak_mb']:.0f} MB, ROAS error {o['err']:.1%}, "
              f"coverage {o['cover']}/{o['n']}, holdout MAPE {o['mape_holdout']:.1%}"
              + (f", Google optimum error {o['google_opt_err']:+.1%}" if "google_opt_err" in o else ""))
        if p:
            print(f"  PyMC-Marketing: {json.dumps({k: v for k, v in p.items() if k != 'roas'})}")
        rows.append((ds["name"], o, o100, p))
        for c, ch in o["art"]["channels"].items():
            t = ds["truth"]["channels"][c]["roas"]
            pr = (p or {}).get("roas", {}).get(c)
            detail.append({"data": ds["name"], "channel": c, "true": t, "ours": ch["roas"], "pymc": pr})
    write(rows, detail, a)


def _fmt_int(r: dict) -> str:
    return f"{r['mean']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def write(rows, detail, a) -> None:
    lines = ["## MMM fit: speed and accuracy vs planted truth (Growthlens vs PyMC-Marketing 1.3.0)", "",
             f"Growthlens: variable-projection fit with {a.n_boot} block-bootstrap refits (90% intervals), one "
             "process on a shared 2-core machine (CPU seconds are the fair figure when other work competes for "
             "the cores). PyMC-Marketing: `MMM` with geometric adstock + logistic saturation, yearly seasonality 4, "
             "2 chains × 500 draws (+500 tune), NUTS on one core per chain, spend and controls only "
             "(its `MMM` takes no "
             "holiday/event table, so on TechStyle it lacks the events Growthlens gets from `external_factors`). "
             "The machine was shared with other work while this ran (load average 4–8 on 2 cores), so wall times "
             "of both are inflated; compare CPU seconds and the ratio.", "",
             "| data | model | fit time | CPU | peak memory | mean ROAS error | max error | truth in 90% interval |",
             "|---|---|---|---|---|---|---|---|"]
    for name, o, o100, p in rows:
        lines.append(f"| {name} | Growthlens (n_boot={a.n_boot}) | {o['wall']:.2f} s | {o['cpu']:.2f} s | "
                     f"{o['peak_mb']:.0f} MB | {o['err']:.1%} | {o['max_err']:.1%} | {o['cover']}/{o['n']} |")
        if o100 is not o:
            lines.append(f"| {name} | Growthlens (n_boot=100) | {o100['wall']:.2f} s | {o100['cpu']:.2f} s | "
                         f"{o100['peak_mb']:.0f} MB | {o100['err']:.1%} | {o100['max_err']:.1%} | "
                         f"{o100['cover']}/{o100['n']} |")
        if p and "error" not in p:
            lines.append(f"| {name} | PyMC-Marketing | {p['wall']:.1f} s | — | {p['peak_mb']:.0f} MB (RSS) | "
                         f"{p['err']:.1%} | {p['max_err']:.1%} | {p['cover']}/{p['n']} |")
        elif p:
            lines.append(f"| {name} | PyMC-Marketing | not run: {p['error']} | | | | | |")
    lines += ["", "Other figures: " + "; ".join(
        f"{n}: R² {o['r2']:.3f}, holdout MAPE {o['mape_holdout']:.1%}"
        + (f", Google optimal daily spend {o['google_opt_err']:+.1%} vs truth" if "google_opt_err" in o else "")
        for n, o, _, _ in rows) + ".", "",
        "Per channel (ROAS, mean [90% interval]):", "",
        "| data | channel | true ROAS | Growthlens | PyMC-Marketing |", "|---|---|---|---|---|"]
    for d in detail:
        lines.append(f"| {d['data']} | {d['channel']} | {d['true']:.2f} | {_fmt_int(d['ours'])} | "
                     + (_fmt_int(d["pymc"]) if d["pymc"] else "—") + " |")
    lines += ["", "Reproduce: `nice .venv/bin/python bench/mmm.py` (PyMC venv: `python3.12 -m venv bench/.venv-pymc && "
              "bench/.venv-pymc/bin/pip install pymc-marketing==1.3.0`).", ""]
    path = ROOT / "bench" / "results" / "mmm.md"
    text = "\n".join(lines)
    if path.exists():  # keep the cross-world sweep section (written by hand from bench/mmm_sweep.py)
        old = path.read_text()
        i = old.find(SWEEP_HEADING)
        if i >= 0:
            text += "\n" + old[i:]
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
