"""Budget optimizer: global optimum vs brute force (concave and S-shaped curves), constraints, goals."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.mmm.optimize import (
    ChannelCurve,
    Constraints,
    evaluate_allocation,
    min_budget_for_target,
    optimize_budget,
    optimize_profit,
    spend_to_marginal_roas,
)


def hill_curve(name: str, current: float, beta: float, half: float, shape: float, n_draws: int = 1,
               spread: float = 0.0, seed: int = 0, fixed: bool = False) -> ChannelCurve:
    rng = np.random.default_rng(seed)
    betas = beta * np.exp(rng.normal(0, spread, n_draws)) if spread else np.full(n_draws, beta)
    halves = half * np.exp(rng.normal(0, spread / 2, n_draws)) if spread else np.full(n_draws, half)

    def draws(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)[None, :]
        return betas[:, None] * x**shape / (x**shape + halves[:, None] ** shape)

    return ChannelCurve(name, current, draws, fixed_cost=fixed)


def total(curves, alloc) -> float:
    return sum(float(cv.draws(np.array([alloc[cv.name]])).mean()) for cv in curves)


def brute_force(curves, budget, n=2001):
    """Exhaustive search with the budget fully spent (curves are increasing)."""
    names = [cv.name for cv in curves]
    if len(curves) == 2:
        g = np.linspace(0, budget, n)
        v = curves[0].draws(g).mean(0) + curves[1].draws(budget - g).mean(0)
        return float(v.max())
    g = np.linspace(0, budget, 401)
    best = -np.inf
    vals = [cv.draws(g).mean(0) for cv in curves]
    for i, j in itertools.product(range(401), repeat=2):
        if i + j <= 400:
            best = max(best, vals[0][i] + vals[1][j] + vals[2][400 - i - j])
    assert names
    return best


CASES = [
    # concave pair
    [hill_curve("A", 3000, 20000, 4000, 1.0), hill_curve("B", 3000, 9000, 1500, 1.0)],
    # S-shaped: equalising marginal ROAS from a poor start finds a local optimum
    [hill_curve("A", 3000, 30000, 5000, 3.0), hill_curve("B", 3000, 12000, 1200, 2.5)],
    # three channels, mixed shapes
    [hill_curve("A", 2000, 25000, 6000, 2.0), hill_curve("B", 2000, 8000, 900, 1.0),
     hill_curve("C", 2000, 15000, 3000, 3.5)],
]


@pytest.mark.parametrize("curves", CASES)
@pytest.mark.parametrize("budget", [2000.0, 6000.0, 15000.0])
def test_matches_brute_force_within_0_1_percent(curves, budget) -> None:
    plan = optimize_budget(curves, budget, risk_quantile=None)
    got = total(curves, plan["allocation"])
    best = brute_force(curves, budget)
    assert got >= best * (1 - 1e-3), (got, best, plan["allocation"])
    assert sum(plan["allocation"].values()) <= budget + 1e-6


def test_s_curve_case_where_local_solve_fails() -> None:
    """From a mix that under-funds an S-shaped channel, a local solver stays put; the global search does not."""
    from scipy.optimize import minimize

    curves = [hill_curve("A", 500, 40000, 4000, 4.0), hill_curve("B", 7500, 8000, 1000, 1.0)]
    budget = 8000.0

    def neg(z):
        return -total(curves, {"A": z[0], "B": budget - z[0]})

    local = minimize(neg, [500.0], bounds=[(0, budget)], method="L-BFGS-B")
    plan = optimize_budget(curves, budget, risk_quantile=None)
    got = total(curves, plan["allocation"])
    assert got > -local.fun * 1.5  # the local answer is far from the optimum
    assert got >= brute_force(curves, budget) * (1 - 1e-3)


def test_constraints_are_respected_and_reported() -> None:
    curves = [hill_curve("Google", 6000, 40000, 2500, 1.0), hill_curve("TikTok", 2000, 30000, 6000, 1.2),
              hill_curve("Email", 500, 9000, 100, 1.0, fixed=True)]
    c = Constraints(max_change=0.3, min_spend={"TikTok": 1000})
    plan = optimize_budget(curves, 8500, c, risk_quantile=None)
    a = plan["allocation"]
    assert a["Email"] == 500
    assert 6000 * 0.7 - 1e-6 <= a["Google"] <= 6000 * 1.3 + 1e-6
    assert 2000 * 0.7 - 1e-6 <= a["TikTok"] <= 2000 * 1.3 + 1e-6
    # TikTok is far better at the margin, so it is pushed to +30% and the note says so
    assert a["TikTok"] == pytest.approx(2600, rel=1e-4)
    assert any("TikTok stopped at its maximum change" in n for n in plan["notes"])
    rows = {r["channel"]: r for r in plan["channels"]}
    assert rows["TikTok"]["arrow"] == "↑" and rows["Google"]["arrow"] == "↓" and rows["Email"]["arrow"] == "→"
    assert rows["Email"]["bound"] == "fixed cost"


def test_unspendable_budget_is_reported() -> None:
    curves = [hill_curve("A", 100, 1000, 100, 1.0), hill_curve("B", 100, 1000, 100, 1.0)]
    plan = optimize_budget(curves, 1000, Constraints(max_spend={"A": 150, "B": 150}), risk_quantile=None)
    assert plan["total_optimized"] == pytest.approx(300)
    assert any("unspent" in n for n in plan["notes"])


@pytest.mark.parametrize("kwargs,msg", [
    ({"daily_budget": 100, "constraints": Constraints(min_spend={"A": 80, "B": 80})}, "below the sum of minimum"),
    ({"daily_budget": 100, "constraints": Constraints(min_spend={"A": 50}, max_spend={"A": 10})}, "infeasible bounds"),
    ({"daily_budget": 100, "constraints": Constraints(locked={"Nope"})}, "unknown channel"),
    ({"daily_budget": -5}, "positive"),
])
def test_degenerate_input_is_answered_clearly(kwargs, msg) -> None:
    curves = [hill_curve("A", 100, 1000, 100, 1.0), hill_curve("B", 100, 1000, 100, 1.0)]
    with pytest.raises(ValueError, match=msg):
        optimize_budget(curves, **kwargs)


def test_risk_aware_plan_stays_close_when_uncertain() -> None:
    """Two channels with the same expected curve; the uncertain one is not loaded up on."""
    sure = hill_curve("Sure", 3000, 20000, 3000, 1.0, n_draws=400, spread=0.02, seed=1)
    unsure = hill_curve("Unsure", 3000, 21000, 3000, 1.0, n_draws=400, spread=0.8, seed=2)
    expected = optimize_budget([sure, unsure], 6000, risk_quantile=None)
    cautious = optimize_budget([sure, unsure], 6000, risk_quantile=0.25)
    assert cautious["allocation"]["Unsure"] < expected["allocation"]["Unsure"]
    assert cautious["projection"]["lift_per_day_low"] >= expected["projection"]["lift_per_day_low"] - 1e-6


def test_evaluate_allocation_interval_and_lift() -> None:
    cv = hill_curve("A", 1000, 10000, 1000, 1.0, n_draws=300, spread=0.3, seed=3)
    ev = evaluate_allocation([cv], {"A": 2000})
    assert ev["lift_per_day_low"] < ev["lift_per_day"] < ev["lift_per_day_high"]
    assert ev["lift_per_year"] == pytest.approx(ev["lift_per_day"] * 365)
    with pytest.raises(ValueError, match="unknown channel"):
        evaluate_allocation([cv], {"B": 1})


def test_profit_and_marginal_roas_goals() -> None:
    # f(x) = b x / (x + h): marginal = b h / (x + h)^2 = t  →  x* = sqrt(b h / t) - h
    b, h = 20000.0, 2000.0
    cv = hill_curve("A", 1000, b, h, 1.0)
    plan = spend_to_marginal_roas([cv], 2.0)
    assert plan["allocation"]["A"] == pytest.approx(np.sqrt(b * h / 2.0) - h, rel=5e-3)
    profit = optimize_profit([cv], 0.5)  # margin 0.5 ⇔ marginal ROAS 2
    assert profit["allocation"]["A"] == pytest.approx(plan["allocation"]["A"], rel=5e-3)
    assert plan["channels"][0]["marginal_roas_after"] == pytest.approx(2.0, rel=2e-2)


def test_min_budget_for_target() -> None:
    curves = [hill_curve("A", 1000, 20000, 4000, 1.0), hill_curve("B", 1000, 9000, 1500, 1.0)]
    target = 8000.0
    plan = min_budget_for_target(curves, target)
    b = plan["budget"]
    assert plan["projection"]["revenue"] >= target * (1 - 1e-3)
    below = optimize_budget(curves, b * 0.98, risk_quantile=None)
    assert below["projection"]["revenue"] < target
    with pytest.raises(ValueError, match="out of reach"):
        min_budget_for_target(curves, 1e9)
