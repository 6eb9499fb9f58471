"""Plans and what-if projections from an MMM artifact, judged against the true response curves."""

from __future__ import annotations

import importlib
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.mmm.optimize import ChannelCurve, optimize_budget
from core.mmm.plan import channel_curves, detect_fixed_costs, make_plan, response_draws, simulate


def hill(x: np.ndarray, beta: float, half: float, shape: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return beta * x**shape / (x**shape + half**shape)


def make_artifact(specs: dict[str, dict[str, float]], n_draws: int = 150, spread: float = 0.05, seed: int = 0,
                  bias: dict[str, float] | None = None, end: str = "2026-11-24", n_obs: int = 730,
                  baseline_total: float = 3.0e7) -> dict[str, Any]:
    """A contract-B artifact from known parameters: bootstrap draws scattered (log-normal, ``spread``) around the
    parameters, each optionally multiplied by ``bias[name]`` (a misestimated beta)."""
    rng = np.random.default_rng(seed)
    channels = {}
    for name, s in specs.items():
        b = s["beta"] * (bias or {}).get(name, 1.0)
        sp = s.get("spread", spread)
        beta = b * np.exp(rng.normal(0, sp, n_draws))
        half = s["half"] * np.exp(rng.normal(0, sp / 2, n_draws))
        shape = s["shape"] * np.exp(rng.normal(0, sp / 4, n_draws))
        decay = np.clip(s.get("decay", 0.3) + rng.normal(0, 0.02, n_draws), 0, 0.95)
        cur = s["current"]
        grid = np.linspace(0, 4 * max(cur, s["half"]), 60)
        cd = beta[:, None] * grid**shape[:, None] / (grid**shape[:, None] + half[:, None] ** shape[:, None])
        at = hill(np.array([cur]), b, s["half"], s["shape"])[0]
        channels[name] = {
            "spend_total": cur * n_obs, "contribution": at * n_obs, "contribution_interval": [0.8 * at * n_obs,
                                                                                                1.2 * at * n_obs],
            "share": 0.1, "roas": {"mean": at / cur, "low": 0.8 * at / cur, "high": 1.2 * at / cur},
            "marginal_roas": 1.0, "marginal_roas_interval": [0.5, 1.5], "current_daily_spend": cur,
            "optimal_daily_spend": cur, "optimal_daily_spend_interval": [0.5 * cur, 1.5 * cur],
            "opportunity_per_day": 0.0,
            "adstock": {"type": "geometric", "decay": float(s.get("decay", 0.3))},
            "saturation": {"type": "hill", "half": float(s["half"]), "shape": float(s["shape"])},
            "params_draws": {"beta": beta.tolist(), "half": half.tolist(), "shape": shape.tolist(),
                             "decay": decay.tolist()},
            "curve": {"spend": grid.tolist(), "mean": cd.mean(0).tolist(), "low": np.quantile(cd, 0.05, 0).tolist(),
                      "high": np.quantile(cd, 0.95, 0).tolist()},
            "seasonality": {"month": {str(m): 1.0 for m in range(1, 13)}, "weekday": {str(d): 1.0 for d in range(7)}},
            "platform_roas": None,
        }
        if "fixed_cost" in s:
            channels[name]["fixed_cost"] = bool(s["fixed_cost"])
    end_ts = pd.Timestamp(end)
    return {
        "version": 1, "kpi": "revenue", "granularity": "day", "periods_per_year": 365,
        "start": str((end_ts - pd.Timedelta(days=n_obs - 1)).date()), "end": str(end_ts.date()), "n_obs": n_obs,
        "target_roas": 1.0, "seed": seed, "channels": channels,
        "baseline": {"total": baseline_total, "share": 0.6},
        "decomposition": {"dates": [], "actual": [], "fitted": [], "baseline": [], "channels": {}},
        "fit": {"r2": 0.9, "mape": 0.05, "mape_holdout": 0.06, "holdout_periods": 56, "seconds": 1.0},
        "warnings": [],
    }


# Two worlds with different parameters. Google is past its optimum, TikTok under-funded (world 1);
# world 2 has four channels with other shapes and the reverse imbalance.
WORLD_1 = {
    "Google Ads": {"beta": 14000, "half": 3500, "shape": 1.1, "current": 6200, "decay": 0.3},
    "Meta Ads": {"beta": 9000, "half": 2500, "shape": 1.2, "current": 3500, "decay": 0.4},
    "TikTok": {"beta": 16000, "half": 3000, "shape": 1.4, "current": 2000, "decay": 0.2},
    "Email": {"beta": 4000, "half": 200, "shape": 1.0, "current": 500, "decay": 0.1, "fixed_cost": True},
    "Affiliate": {"beta": 3000, "half": 900, "shape": 1.0, "current": 800, "decay": 0.1},
}
WORLD_2 = {
    "Search": {"beta": 6000, "half": 800, "shape": 1.0, "current": 900, "decay": 0.2},
    "Social": {"beta": 25000, "half": 7000, "shape": 2.2, "current": 7000, "decay": 0.5},
    "Video": {"beta": 8000, "half": 5000, "shape": 1.6, "current": 4000, "decay": 0.6},
    "Display": {"beta": 2500, "half": 1500, "shape": 0.9, "current": 1500, "decay": 0.3},
}


def true_total(specs: dict[str, dict[str, float]], allocation: dict[str, float]) -> float:
    return float(sum(hill(np.array([allocation[n]]), s["beta"], s["half"], s["shape"])[0] for n, s in specs.items()))


def truth_optimum(specs: dict[str, dict[str, float]], budget: float, fixed: set[str]) -> float:
    curves = [ChannelCurve(n, s["current"], lambda x, s=s: hill(x, s["beta"], s["half"], s["shape"])[None, :],
                           fixed_cost=n in fixed) for n, s in specs.items()]
    plan = optimize_budget(curves, budget, risk_quantile=None)
    return true_total(specs, plan["allocation"])


def test_interpolated_curves_match_the_response() -> None:
    art = make_artifact(WORLD_1)
    for cv in channel_curves(art, fixed=[]):
        x = np.array([0.0, 10.0, 333.3, cv.current, 2.7 * cv.current])
        exact = response_draws(art["channels"][cv.name], x)
        got = cv.draws(x)
        assert got.shape == exact.shape == (150, 5)
        np.testing.assert_allclose(got, exact, rtol=2e-3, atol=1e-6 * exact.max())
        far = 100 * cv.current  # beyond the grid: exact
        np.testing.assert_allclose(cv.draws(np.array([far])), response_draws(art["channels"][cv.name], far))


def test_email_is_a_fixed_cost_and_does_not_move() -> None:
    art = make_artifact(WORLD_1)
    plan = make_plan(art)
    rows = {r["channel"]: r for r in plan["channels"]}
    assert rows["Email"]["fixed_cost"] and rows["Email"]["optimized"] == pytest.approx(500)
    sim = simulate(art, {"Email": 5000})
    email = next(r for r in sim["channels"] if r["channel"] == "Email")
    assert email["revenue"] == pytest.approx(email["current_revenue"])
    assert sim["spend"]["change_per_day"] == pytest.approx(4500)


@pytest.mark.parametrize("specs,bias,seed", [
    (WORLD_1, None, 0),
    (WORLD_1, {"Google Ads": 1.15, "TikTok": 0.85}, 1),  # a model that over-rates Google and under-rates TikTok
    (WORLD_2, None, 2),
    (WORLD_2, {"Search": 0.8, "Social": 1.2}, 3),
])
def test_plan_beats_current_mix_in_the_true_world(specs, bias, seed) -> None:
    art = make_artifact(specs, bias=bias, seed=seed)
    fixed = {n for n, s in specs.items() if s.get("fixed_cost")}
    current = {n: s["current"] for n, s in specs.items()}
    budget = sum(current.values())
    plan = make_plan(art)
    assert plan["budget"] == pytest.approx(budget)  # default budget = current total daily spend
    assert sum(plan["allocation"].values()) <= budget + 1e-6
    got, base = true_total(specs, plan["allocation"]), true_total(specs, current)
    best = truth_optimum(specs, budget, fixed)
    assert best > base
    assert got > base
    assert got - base >= 0.5 * (best - base), (got - base, best - base)


def test_max_change_binds_and_is_stated() -> None:
    art = make_artifact(WORLD_1)
    plan = make_plan(art, max_change=0.1)
    for r in plan["channels"]:
        assert abs(r["optimized"] - r["current"]) <= 0.1 * r["current"] + 1e-6
    assert any("maximum change" in n for n in plan["notes"])


def test_locked_min_max_constraints() -> None:
    art = make_artifact(WORLD_1)
    plan = make_plan(art, locked=["Google Ads"], min_spend={"Meta Ads": 3600}, max_spend={"TikTok": 2500})
    a = plan["allocation"]
    assert a["Google Ads"] == pytest.approx(6200)
    assert a["Meta Ads"] >= 3600 - 1e-6 and a["TikTok"] <= 2500 + 1e-6
    assert {r["channel"]: r["locked"] for r in plan["channels"]}["Google Ads"]


@pytest.mark.parametrize("kwargs,msg", [
    ({"daily_budget": 1000, "min_spend": {"Google Ads": 900, "TikTok": 900}}, "below the sum"),
    ({"min_spend": {"Nope": 1}}, "unknown channel"),
    ({"locked": ["Nope"]}, "unknown channel"),
    ({"min_spend": {"TikTok": 500}, "max_spend": {"TikTok": 100}}, "infeasible"),
    ({"goal": "world_peace"}, "unknown goal"),
    ({"period": "decade"}, "unknown period"),
    ({"goal": "min_budget"}, "target_revenue"),
    ({"goal": "max_profit"}, "margin"),
])
def test_degenerate_input(kwargs, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        make_plan(make_artifact(WORLD_1), **kwargs)


def test_uncertain_channel_stays_close_and_the_plan_says_why() -> None:
    specs = {k: dict(v) for k, v in WORLD_1.items()}
    specs["TikTok"]["spread"] = 0.9  # the model barely knows TikTok's curve
    art = make_artifact(specs, n_draws=300, seed=5)
    cautious = make_plan(art)
    bold = make_plan(art, risk_quantile=None)
    assert abs(cautious["allocation"]["TikTok"] - 2000) < abs(bold["allocation"]["TikTok"] - 2000)
    assert any(n.startswith("TikTok stays closer to its current spend") for n in cautious["notes"])


def test_never_worse_than_current_when_unsure() -> None:
    """Two equally good channels, huge uncertainty: the risk-aware plan keeps the current mix."""
    specs = {"A": {"beta": 10000, "half": 3000, "shape": 1.0, "current": 3000, "spread": 1.0},
             "B": {"beta": 10000, "half": 3000, "shape": 1.0, "current": 2900, "spread": 1.0}}
    art = make_artifact(specs, n_draws=300, seed=9)
    plan = make_plan(art)
    assert plan["projection"]["lift_per_day_low"] >= -1e-6 or plan["allocation"] == pytest.approx(
        {"A": 3000, "B": 2900})


def test_other_goals() -> None:
    art = make_artifact(WORLD_2)
    m = make_plan(art, goal="target_mroas", target_mroas=1.5)
    for r in m["channels"]:
        if 0 < r["optimized"] < 5 * r["current"] - 1:
            assert r["marginal_roas_after"] == pytest.approx(1.5, rel=0.08) or r["marginal_roas_after"] < 1.5
    p = make_plan(art, goal="max_profit", margin=0.5)
    assert p["projection"]["revenue"] * 0.5 - p["total_optimized"] >= (
        p["projection"]["current_revenue"] * 0.5 - p["total_current"] - 1e-6)
    base_day = 3.0e7 / 730
    target_year = (base_day + p["projection"]["current_revenue"] * 0.9) * 365
    b = make_plan(art, goal="min_budget", target_revenue=target_year, period="year")
    assert b["projection"]["revenue"] >= p["projection"]["current_revenue"] * 0.9 * (1 - 1e-3)
    assert b["total_optimized"] < sum(s["current"] for s in WORLD_2.values())
    with pytest.raises(ValueError, match="below the revenue expected without paid media"):
        make_plan(art, goal="min_budget", target_revenue=1000, period="year")


def test_period_figures() -> None:
    art = make_artifact(WORLD_1)
    d = make_plan(art, period="day")
    y = make_plan(art, period="year", daily_budget=d["budget"])
    assert y["projection"]["lift_per_period"] == pytest.approx(d["projection"]["lift_per_day"] * 365)
    assert y["projection"]["lift_per_year"] == pytest.approx(d["projection"]["lift_per_year"])


def test_simulate_matches_optimizer_evaluation_and_moves_with_spend() -> None:
    art = make_artifact(WORLD_1)
    plan = make_plan(art)
    sim = simulate(art, plan["allocation"])
    assert sim["lift"]["per_day"] == pytest.approx(plan["projection"]["lift_per_day"], rel=1e-9)
    assert sim["lift"]["per_year"] == pytest.approx(plan["projection"]["lift_per_year"], rel=1e-9)
    assert sim["revenue"]["low"] <= sim["revenue"]["mean"] <= sim["revenue"]["high"]
    cur = simulate(art, {})
    assert cur["lift"]["per_day"] == pytest.approx(0.0, abs=1e-9)
    more = simulate(art, {"TikTok": 4000})  # more spend on an unsaturated channel earns more
    assert more["revenue"]["mean"] > cur["revenue"]["mean"]
    assert more["lift"]["per_day_low"] > 0
    with pytest.raises(ValueError, match="unknown channel"):
        simulate(art, {"Radio": 10})
    with pytest.raises(ValueError, match="non-negative"):
        simulate(art, {"TikTok": -1})


def test_detect_fixed_costs() -> None:
    dates = pd.date_range("2026-01-01", "2026-06-30")
    rng = np.random.default_rng(0)
    fee = dates.days_in_month.map(lambda d: 15000 / d).to_numpy()
    m = pd.concat([
        pd.DataFrame({"date": dates, "channel": "Newsletter", "spend": fee}),
        pd.DataFrame({"date": dates, "channel": "Search", "spend": 1000 * np.exp(rng.normal(0, 0.2, len(dates)))}),
    ])
    assert detect_fixed_costs(m) == {"Newsletter"}
    # the same monthly fee booked on send days only (Tue/Thu): still a flat monthly fee
    sends = dates[dates.day_of_week.isin([1, 3])]
    per_send = sends.to_series().groupby(sends.to_period("M")).transform(lambda s: 15000 / len(s))
    booked = pd.concat([
        pd.DataFrame({"date": sends, "channel": "Email", "spend": per_send.to_numpy()}),
        pd.DataFrame({"date": dates, "channel": "Search", "spend": 1000 * np.exp(rng.normal(0, 0.2, len(dates)))}),
    ])
    assert detect_fixed_costs(booked) == {"Email"}
    art = make_artifact({"Newsletter": {"beta": 3000, "half": 300, "shape": 1.0, "current": 500},
                         "Search": {"beta": 9000, "half": 2000, "shape": 1.0, "current": 1000}})
    plan = make_plan(art, fixed=detect_fixed_costs(m))
    assert plan["allocation"]["Newsletter"] == pytest.approx(500)


@pytest.fixture(scope="module")
def techstyle_judged():
    """Fit on the demo data, optimise at the current budget; the true revenue of current, plan and truth optimum."""
    techstyle = importlib.import_module("core.demo.techstyle")
    fit = importlib.import_module("core.mmm.fit")
    design = importlib.import_module("core.mmm.design")
    return _fit_and_judge(techstyle.generate_techstyle(seed=42, end=date(2026, 11, 25)), fit, design, techstyle)


def test_techstyle_plan_earns_more_true_revenue_than_current(techstyle_judged) -> None:
    base, got, _ = techstyle_judged
    assert got > base


def test_techstyle_plan_captures_half_the_true_uplift(techstyle_judged) -> None:
    base, got, best = techstyle_judged
    assert best > base
    assert got - base >= 0.5 * (best - base), (got, base, best)


def test_second_world_fit_then_optimize_beats_current_in_truth() -> None:
    """A differently parameterised world (five other channels, other decays, half-points and shapes)."""
    synth = importlib.import_module("core.demo.mmm_synth")
    fit = importlib.import_module("core.mmm.fit")
    w = synth.default_daily(seed=11)
    art = fit.fit_mmm(w.data, spend_cols=w.spend_cols, external_factors=w.external_factors, n_boot=40, seed=0)
    chans = w.truth["channels"]
    specs = {n: {"beta": c["beta"], "half": c["saturation"]["half"], "shape": c["saturation"]["shape"]}
             for n, c in chans.items()}
    current = {n: c["current_daily_spend"] for n, c in chans.items()}
    plan = make_plan(art, fixed=[])
    got, base = true_total(specs, plan["allocation"]), true_total(specs, current)
    best = truth_optimum({n: {**s, "current": current[n]} for n, s in specs.items()}, sum(current.values()), set())
    assert got > base
    assert got - base >= 0.5 * (best - base), (got, base, best)


def _fit_and_judge(data, fit, design, techstyle) -> tuple[float, float, float]:
    wide = design.to_wide(data.marketing, data.kpis)
    spend_cols = [c for c in wide.columns if c not in {"date", "revenue"}]
    art = fit.fit_mmm(wide, spend_cols=spend_cols, external_factors=data.external_factors, n_boot=40, seed=0)
    truth = data.truth
    fixed = {n for n, c in truth["channels"].items() if c.get("fixed_cost")}
    plan = make_plan(art, fixed=fixed)
    current = {n: c["current_daily_spend"] for n, c in truth["channels"].items()}
    got = techstyle.true_revenue(truth, plan["allocation"])
    base = techstyle.true_revenue(truth, current)

    def curve(n: str):
        rc = truth["channels"][n]["response_curve"]
        return lambda x: np.interp(x, rc["spend"], rc["revenue"])[None, :]

    tcurves = [ChannelCurve(n, current[n], curve(n), fixed_cost=n in fixed) for n in truth["channels"]]
    best_plan = optimize_budget(tcurves, sum(current.values()), risk_quantile=None)
    return base, got, techstyle.true_revenue(truth, best_plan["allocation"])


def test_no_extrapolation_far_beyond_the_spend_seen() -> None:
    """A channel that looks unsaturated at a small spend is not handed the budget on the curve's say-so."""
    specs = {"Big": {"beta": 20000, "half": 6000, "shape": 1.0, "current": 8000},
             "Tiny": {"beta": 90000, "half": 20000, "shape": 1.0, "current": 400}}
    art = make_artifact(specs)
    plan = make_plan(art)
    assert plan["allocation"]["Tiny"] == pytest.approx(800, rel=1e-3)
    assert any(n.startswith("Tiny is held at $800/day, 2x its recent daily spend") for n in plan["notes"])
    free = make_plan(art, extrapolation=None)
    assert free["allocation"]["Tiny"] > 2000
    seen = make_plan(art, observed_max={"Tiny": 700})
    assert seen["allocation"]["Tiny"] == pytest.approx(1400, rel=1e-3)
    assert any("2x its highest 4-week daily spend" in n for n in seen["notes"])
    explicit = make_plan(art, max_spend={"Tiny": 3000})  # the user's own maximum wins
    assert explicit["allocation"]["Tiny"] > 800
