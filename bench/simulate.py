"""What-if simulator latency: core ``simulate`` and ``POST /api/simulate`` (in process) for 5 and 20 channels.

Run: ``.venv/bin/python bench/simulate.py``. Prints the figures and writes bench/results/simulate.md.
Artifacts carry 200 bootstrap draws per channel, the size of a fitted model's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYMC_PY = ROOT / "bench" / ".venv-pymc" / "bin" / "python"


def specs(n: int, seed: int = 0) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(seed)
    return {f"Channel {i + 1}": {"beta": float(rng.uniform(5_000, 40_000)), "half": float(rng.uniform(500, 6_000)),
                                 "shape": float(rng.choice([1.0, 1.5, 2.5])), "current": float(rng.uniform(500, 6_000))}
            for i in range(n)}


def timeit(fn, repeat: int = 50) -> float:
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


def main() -> None:
    from fastapi.testclient import TestClient

    from core.mmm.plan import make_plan, simulate
    from functions.datasets import publish_dataset
    from functions.mmm_service import model_key
    from functions.storage import LocalStore
    from tests.core.mmm.test_plan import make_artifact

    rows = []
    for n in (5, 20):
        sp = specs(n)
        art = make_artifact(sp, n_draws=200)
        rng = np.random.default_rng(1)
        alloc = {k: v["current"] * float(rng.uniform(0.5, 1.5)) for k, v in sp.items()}
        first = time.perf_counter()
        simulate(art, alloc)  # builds the per-channel grids once per model
        cold = (time.perf_counter() - first) * 1000
        core_ms = timeit(lambda a=art, al=alloc: simulate(a, al), repeat=200)
        plan_ms = timeit(lambda a=art: make_plan(a), repeat=10)
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["GROWTHLENS_DATA_DIR"] = tmp
            os.environ.setdefault("GROWTHLENS_API_KEY", "bench-simulate-key")
            from functions.deps import _store

            _store.cache_clear()
            store = LocalStore(tmp)
            dates = pd.date_range("2025-01-01", periods=120)
            m = pd.concat([pd.DataFrame({"date": dates, "channel": k, "spend": v["current"]}) for k, v in sp.items()])
            version = publish_dataset(store, "default", {"marketing": m})
            store.write_json(model_key("default", version), art)
            from functions.app import create_app

            client = TestClient(create_app(), headers={"X-Growthlens-Api-Key": os.environ["GROWTHLENS_API_KEY"]})
            def call(c=client, al=alloc) -> None:
                r = c.post("/api/simulate", json={"allocation": al})
                assert r.status_code == 200, r.text

            api_ms = timeit(call, repeat=100)
            _store.cache_clear()
        rows.append((n, cold, core_ms, api_ms, plan_ms))
        print(f"{n:>2} channels: first call {cold:.1f} ms (grid build), simulate {core_ms:.2f} ms, "
              f"POST /api/simulate {api_ms:.1f} ms, optimize (risk-aware + expected) {plan_ms:.0f} ms")
    lines = [
        "## What-if simulator",
        "",
        "`bench/simulate.py`: median wall time, 200 bootstrap draws per channel; the API figure is a full in-process "
        "request (FastAPI TestClient: routing, validation, version check, JSON).",
        "",
        "| channels | first call (grid build) | `simulate` | `POST /api/simulate` | `POST /api/optimize` plan |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {n} | {a:.1f} ms | {b:.2f} ms | {c:.1f} ms | {d:.0f} ms |" for n, a, b, c, d in rows]
    lines += ["", "Goal: under 50 ms server time for 5 channels, so the sliders re-project while they move."]
    lines += ["", *forecast_section(), "", *pymc_section()]
    lines += ["", "Reproduce: `.venv/bin/python bench/simulate.py` (the PyMC-Marketing comparison runs when "
              "`bench/.venv-pymc` exists)."]
    out = ROOT / "bench" / "results" / "simulate.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def forecast_section() -> list[str]:
    """8-week backtest MAPE of the forecast vs seasonal-naive on the demo data and a second generated world."""
    from core.demo import mmm_synth, techstyle
    from core.mmm.design import to_wide
    from core.mmm.fit import fit_mmm
    from core.mmm.forecast import backtest

    rows = []
    demo = techstyle.generate_techstyle(seed=42, end=date(2026, 11, 25))
    wide = to_wide(demo.marketing, demo.kpis)
    spend = [c for c in wide.columns if c not in {"date", "revenue"}]
    worlds = [("TechStyle demo (seed 42)", wide, spend, demo.external_factors)]
    w = mmm_synth.default_daily(seed=3)
    worlds.append(("Generated world (mmm_synth, seed 3)", w.data, w.spend_cols, w.external_factors))
    for name, df, cols, ef in worlds:
        art = fit_mmm(df, spend_cols=cols, external_factors=ef, n_boot=40, seed=0)
        t = time.perf_counter()
        bt = backtest(art, df, ef, weeks=8)
        ms = (time.perf_counter() - t) * 1000
        naive = bt["naive_mapes"]
        rows.append((name, bt["mape"], naive.get("same weekday last year"), naive.get("last week repeated"),
                     bt["coverage"], ms))
        print(f"{name}: forecast MAPE {bt['mape']:.1%}, naive {naive}, 90% coverage {bt['coverage']:.0%}, "
              f"{ms:.0f} ms")
    out = ["## Revenue forecast backtest", "",
           "Last 8 weeks forecast from the data before them (baseline refitted at the cut, media from the fitted "
           "model at the spend actually made) against seasonal-naive forecasts.", "",
           "| data | forecast MAPE | naive: same weekday last year | naive: last week repeated | 90% band coverage "
           "| backtest time |", "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {n} | {a:.1%} | {b:.1%} | {c:.1%} | {d:.0%} | {e:.0f} ms |" for n, a, b, c, d, e in rows]
    return out


def _pymc_allocate(spec_path: str, out_path: str) -> None:
    """(Runs inside bench/.venv-pymc.) PyMC-Marketing's BudgetOptimizer on the same Hill curves and draws."""
    import pymc as pm
    import pymc.dims as pmd
    import xarray as xr
    from pymc_marketing.mmm.budget_optimizer import BudgetOptimizer

    spec = json.loads(Path(spec_path).read_text())
    names = list(spec["channels"])
    with pm.Model(coords={"date": [0], "channel": names}) as model:
        x = pmd.Data("channel_data", xr.DataArray(np.zeros((1, len(names))), dims=("date", "channel")))
        beta = pmd.HalfNormal("beta", sigma=1.0, dims="channel")
        half = pmd.HalfNormal("half", sigma=1.0, dims="channel")
        shape = pmd.HalfNormal("shape", sigma=1.0, dims="channel")
        r = (x / half) ** shape
        contrib = pmd.Deterministic("channel_contribution", beta * r / (1 + r))
        pmd.Deterministic("total_media_contribution_original_scale", contrib.sum())
    post = {k: xr.DataArray(np.stack([np.asarray(spec["channels"][n][k]) for n in names], axis=-1)[None],
                            dims=("chain", "draw", "channel"), coords={"channel": names})
            for k in ("beta", "half", "shape")}
    d = post["beta"].shape[1]
    post["channel_contribution"] = xr.DataArray(np.ones((1, d, 1, len(names))), dims=("chain", "draw", "date",
                                                                                       "channel"),
                                                coords={"channel": names, "date": [0]})
    idata = xr.DataTree.from_dict({"posterior": xr.Dataset(post)})
    t = time.perf_counter()
    opt = BudgetOptimizer(model=model, idata=idata, num_periods=1)
    res = opt.allocate_budget(total_budget=spec["budget"], budget_bounds={n: tuple(spec["bounds"][n]) for n in names})
    secs = time.perf_counter() - t
    alloc = {str(c): float(v) for c, v in zip(res.budgets["channel"].values, res.budgets.values, strict=True)}
    Path(out_path).write_text(json.dumps({"allocation": alloc, "seconds": secs}))


def pymc_section() -> list[str]:
    """Our optimizer against PyMC-Marketing's BudgetOptimizer on the same response curves and bounds."""
    head = ["## Optimizer vs PyMC-Marketing's BudgetOptimizer", ""]
    if not PYMC_PY.exists():
        return head + ["Not run: `bench/.venv-pymc` (PyMC-Marketing) is absent on this machine."]
    from core.demo import techstyle
    from core.mmm.design import to_wide
    from core.mmm.fit import fit_mmm
    from core.mmm.plan import evaluate, make_plan
    from tests.core.mmm.test_plan import WORLD_1, make_artifact

    demo = techstyle.generate_techstyle(seed=42, end=date(2026, 11, 25))
    wide = to_wide(demo.marketing, demo.kpis)
    spend = [c for c in wide.columns if c not in {"date", "revenue"}]
    cases = [("Hand-made curves (5 channels, 150 draws)", make_artifact(WORLD_1), None),
             ("TechStyle fitted model (40 bootstrap draws)",
              fit_mmm(wide, spend_cols=spend, external_factors=demo.external_factors, n_boot=40, seed=0), demo.truth)]
    rows = []
    for name, art, truth in cases:
        chans = art["channels"]
        fixed = [n for n in chans if "email" in n.lower()]
        cur = {n: float(c["current_daily_spend"]) for n, c in chans.items()}
        bounds = {n: [cur[n], cur[n]] if n in fixed else [0.0, 2 * cur[n]] for n in chans}
        budget = sum(cur.values())
        spec = {"budget": budget, "bounds": bounds,
                "channels": {n: {k: c["params_draws"][k] for k in ("beta", "half", "shape")} for n, c in chans.items()}}
        with tempfile.TemporaryDirectory() as tmp:
            sp, op = Path(tmp) / "spec.json", Path(tmp) / "out.json"
            sp.write_text(json.dumps(spec))
            r = subprocess.run([str(PYMC_PY), __file__, "--pymc", str(sp), str(op)], capture_output=True, text=True,
                               timeout=1800)
            if r.returncode != 0:
                return head + [f"Not run: PyMC-Marketing's optimizer failed: {r.stderr.strip().splitlines()[-1]}"]
            theirs = json.loads(op.read_text())
        t = time.perf_counter()
        ours = make_plan(art, fixed=fixed, risk_quantile=None, max_spend={n: b[1] for n, b in bounds.items()
                                                                          if n not in fixed})
        ours_s = time.perf_counter() - t
        cautious = make_plan(art, fixed=fixed, max_spend={n: b[1] for n, b in bounds.items() if n not in fixed})
        def model_rev(alloc: dict[str, float], a=art, f=fixed) -> float:
            return evaluate(a, alloc, fixed=f)["revenue"]

        def true_rev(alloc: dict[str, float], tr=truth) -> float | None:
            return techstyle.true_revenue(tr, alloc) if tr else None

        for who, alloc, secs in (("current mix", cur, None), ("PyMC-Marketing BudgetOptimizer", theirs["allocation"],
                                                              theirs["seconds"]),
                                 ("Growthlens, expected", ours["allocation"], ours_s),
                                 ("Growthlens, risk-aware (default)", cautious["allocation"], None)):
            rows.append((name, who, model_rev(alloc), true_rev(alloc), secs))
            print(f"{name} | {who}: model revenue {model_rev(alloc):,.0f}/day, true {true_rev(alloc)}, {secs}")
    out = head + [
        "Same response curves (the model's bootstrap draws of Hill beta/half/shape), same budget (current daily "
        "spend), same bounds (each channel within [0, 2× current], Email fixed). PyMC-Marketing 1.3 "
        "`BudgetOptimizer` on a PyMC model that encodes those curves, with the draws as its posterior; its time "
        "includes building and compiling its graph.", "",
        "| curves | plan | model revenue per day | true revenue per day | time |", "|---|---|---:|---:|---:|"]
    for name, who, m, tr, secs in rows:
        out.append(f"| {name} | {who} | ${m:,.0f} | {'—' if tr is None else f'${tr:,.0f}'} | "
                   f"{'—' if secs is None else f'{secs:.2f} s'} |")
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--pymc":
        _pymc_allocate(sys.argv[2], sys.argv[3])
    else:
        main()
