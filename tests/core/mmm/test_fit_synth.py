"""The MMM recovers planted truth on two differently-parameterised synthetic worlds (daily and weekly)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.demo.mmm_synth import SynthChannel, SynthParams, default_daily, default_weekly, make_world
from core.mmm.fit import fit_mmm
from core.mmm.response import marginal_response, response


def _fit(world, n_boot=60, **kw):
    return fit_mmm(world.data, spend_cols=world.spend_cols, control_cols=world.control_cols,
                   external_factors=world.external_factors, n_boot=n_boot, **kw)


@pytest.fixture(scope="module")
def daily():
    w = default_daily(seed=0)
    return w, _fit(w)


@pytest.fixture(scope="module")
def weekly():
    w = default_weekly(seed=1)
    return w, _fit(w)


@pytest.mark.parametrize("which", ["daily", "weekly"])
def test_roas_recovered_and_covered(which, request):
    world, art = request.getfixturevalue(which)
    errs = []
    for name, ch in art["channels"].items():
        true = world.truth["channels"][name]["roas"]
        r = ch["roas"]
        assert r["low"] <= true <= r["high"], f"{name}: true ROAS {true:.2f} outside {r}"
        assert r["low"] <= r["mean"] <= r["high"]
        errs.append(abs(r["mean"] / true - 1))
    assert np.mean(errs) < 0.2, errs


@pytest.mark.parametrize("which", ["daily", "weekly"])
def test_curves_and_optimal_spend_close_to_truth(which, request):
    world, art = request.getfixturevalue(which)
    errs = []
    for name, ch in art["channels"].items():
        tr = world.truth["channels"][name]
        c = ch["curve"]
        true_curve = np.interp(c["spend"], tr["response_curve"]["spend"], tr["response_curve"]["revenue"])
        inside = (np.array(c["low"]) <= true_curve + 1e-6) & (true_curve <= np.array(c["high"]) + 1e-6)
        assert inside.mean() >= 0.7, f"{name}: true curve inside the 90% band at only {inside.mean():.0%} of points"
        grid = np.linspace(0, 1.5 * tr["current_daily_spend"], 30)
        true_g = np.interp(grid, tr["response_curve"]["spend"], tr["response_curve"]["revenue"])
        errs.append(np.max(np.abs(response(ch, grid) - true_g)) / true_g.max())
        lo, hi = ch["optimal_daily_spend_interval"]
        assert lo <= ch["optimal_daily_spend"] <= hi
    assert np.mean(errs) < 0.2, errs
    # the largest channel's optimum is well identified
    big = max(art["channels"], key=lambda c: art["channels"][c]["spend_total"])
    assert art["channels"][big]["optimal_daily_spend"] == pytest.approx(
        world.truth["channels"][big]["optimal_daily_spend"], rel=0.2)


def test_artifact_contract(daily):
    world, art = daily
    json.dumps(art)  # serialisable
    assert art["granularity"] == "day" and art["periods_per_year"] == 365 and art["n_obs"] == 730
    assert set(art["channels"]) == set(world.spend_cols)
    dec = art["decomposition"]
    total = np.array(dec["baseline"]) + sum(np.array(v) for v in dec["channels"].values())
    assert np.allclose(total, dec["fitted"])
    assert art["fit"]["r2"] > 0.9 and art["fit"]["mape"] < 0.05
    assert art["fit"]["holdout_periods"] == 56 and art["fit"]["mape_holdout"] < 0.1
    assert art["fit"]["seconds"] > 0
    for ch in art["channels"].values():
        assert ch["contribution"] >= 0 and len(ch["params_draws"]["beta"]) == art["fit"]["n_boot"]
        assert ch["contribution_interval"][0] <= ch["contribution"] <= ch["contribution_interval"][1]
        assert ch["marginal_roas_interval"][0] <= ch["marginal_roas"] <= ch["marginal_roas_interval"][1]
        c = ch["curve"]
        assert np.all(np.array(c["low"]) <= np.array(c["mean"]) + 1e-9)
        assert np.all(np.array(c["mean"]) <= np.array(c["high"]) + 1e-9)
        assert response(ch, ch["current_daily_spend"]) == pytest.approx(
            np.interp(ch["current_daily_spend"], c["spend"], c["mean"]), rel=0.02)
        assert marginal_response(ch, ch["current_daily_spend"]) == pytest.approx(ch["marginal_roas"])
        months = [v for v in ch["seasonality"]["month"].values() if v is not None]
        assert len(months) == 12 and min(months) > 0
        assert len(ch["seasonality"]["weekday"]) == 7


def test_weekly_curves_are_daily_units(weekly):
    world, art = weekly
    assert art["granularity"] == "week" and art["periods_per_year"] == 52
    for name, ch in art["channels"].items():
        true_cur = world.truth["channels"][name]["current_daily_spend"]
        assert ch["current_daily_spend"] == pytest.approx(true_cur, rel=1e-6)
    assert art["fit"]["holdout_periods"] == 8


def test_response_draws_shape(daily):
    _, art = daily
    ch = next(iter(art["channels"].values()))
    d = response(ch, np.linspace(0, 5000, 7), draws=True)
    assert d.shape == (art["fit"]["n_boot"], 7) and np.all(np.diff(d, axis=1) >= -1e-9)


def test_collinear_spends_give_wide_intervals():
    """Two channels whose spends move together: intervals must widen, and still contain the truth."""
    def world(collinear):
        chans = [SynthChannel("A", 2000, 0.3, 2500, 1.0, 6000, volatility=0.5, pause_prob=0.03),
                 SynthChannel("B", 2000, 0.3, 2500, 1.0, 6000, volatility=0.5, pause_prob=0.03,
                              follows="A" if collinear else None)]
        if collinear:
            chans[1].volatility = 0.05
        return make_world(SynthParams(chans, periods=730, noise_sd=0.04), seed=4)

    widths = {}
    for corr in (False, True):
        w = world(corr)
        assert (np.corrcoef(w.data["A"], w.data["B"])[0, 1] > 0.95) == corr
        art = _fit(w, n_boot=40)
        widths[corr] = np.mean([ch["roas"]["high"] - ch["roas"]["low"] for ch in art["channels"].values()])
        for name, ch in art["channels"].items():
            assert ch["roas"]["low"] <= w.truth["channels"][name]["roas"] <= ch["roas"]["high"], (corr, name)
    assert widths[True] > 3 * widths[False]


def test_deterministic_for_a_seed():
    w = default_daily(seed=5, periods=240)
    a = _fit(w, n_boot=10, seed=7)
    b = _fit(w, n_boot=10, seed=7)
    a["fit"].pop("seconds"), b["fit"].pop("seconds")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_fixed_monthly_fee_detected_and_kept_and_progress_reported():
    w = default_daily(seed=2, periods=400)
    df = w.data.copy()
    rng = np.random.default_rng(0)
    month = df["date"].dt.to_period("M")
    wts = pd.Series(rng.uniform(0.2, 1.8, len(df)))
    df["Fee"] = (3000.0 * wts / wts.groupby(month.to_numpy()).transform("sum")).to_numpy()
    seen = []
    art = fit_mmm(df, spend_cols=[*w.spend_cols, "Fee"], external_factors=w.external_factors, n_boot=5,
                  progress=lambda f, m: seen.append(f))
    fee = art["channels"]["Fee"]
    assert fee["fixed_cost"] and fee["optimal_daily_spend"] == pytest.approx(fee["current_daily_spend"])
    assert fee["opportunity_per_day"] == pytest.approx(0.0)
    assert not any(ch["fixed_cost"] for name, ch in art["channels"].items() if name != "Fee")
    assert any("Fee" in n for n in art["notes"])
    assert seen and seen == sorted(seen) and seen[-1] == 1.0


def _seasonal_media_world(seed: int, elasticity: float, n: int = 730) -> tuple[pd.DataFrame, dict[str, float]]:
    """Two channels whose effects scale with a multiplicative seasonal demand index (demand**elasticity)."""
    from core.mmm.adstock import geometric_adstock
    from core.mmm.saturation import hill

    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=n, freq="D")
    doy = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
    demand = np.exp(0.45 * np.sin(doy) + 0.2 * np.cos(2 * doy)) * (1 + 0.05 * (dates.day_of_week.to_numpy() >= 5))
    y = 20000 * demand * (1 + 0.1 * np.arange(n) / n)
    df = pd.DataFrame({"date": dates})
    truth = {}
    for name, mean, decay, half, shape, beta in (("A", 4000, 0.3, 3500, 1.2, 12000), ("B", 2000, 0.5, 2500, 1.0, 8000)):
        x = mean * np.exp(rng.normal(0, 0.35, n)) * np.repeat(np.exp(rng.normal(0, 0.3, n // 14 + 1)), 14)[:n]
        c = beta * demand**elasticity * hill(geometric_adstock(x, decay), half, shape)
        df[name] = x
        y = y + c
        truth[name] = float(c.sum() / x.sum())
    df["revenue"] = y * np.exp(rng.normal(0, 0.03, n))
    return df, truth


def test_media_effects_that_scale_with_seasonal_demand(monkeypatch):
    """Where ads convert better in high season, the model finds the elasticity and its ROAS beats the model without."""
    import core.mmm.fit as fit_module

    df, truth = _seasonal_media_world(seed=1, elasticity=0.5)
    art = fit_mmm(df, spend_cols=["A", "B"], n_boot=20)
    assert art["media_demand_elasticity"] > 0
    mm = np.array(art["decomposition"]["media_multiplier"])
    assert len(mm) == len(df) and mm.mean() == pytest.approx(1.0) and mm.max() > 1.1 > 0.9 > mm.min()
    errs = [abs(art["channels"][c]["roas"]["mean"] / t - 1) for c, t in truth.items()]
    for c, t in truth.items():
        r = art["channels"][c]["roas"]
        assert r["low"] <= t <= r["high"], (c, t, r)
    monkeypatch.setattr(fit_module, "DEMAND_GRID", (0.0,))
    plain = fit_mmm(df, spend_cols=["A", "B"], n_boot=0)
    assert plain["media_demand_elasticity"] == 0.0
    errs0 = [abs(plain["channels"][c]["roas"]["mean"] / t - 1) for c, t in truth.items()]
    assert np.mean(errs) < np.mean(errs0), (errs, errs0)


def test_noise_weights_follow_a_multiplicative_noise_and_stay_off_for_additive_noise():
    from core.mmm.fit import _variance_weights

    rng = np.random.default_rng(4)
    level = 1000 * np.exp(0.6 * np.sin(np.linspace(0, 12, 730)))
    w = _variance_weights(level, level * rng.normal(0, 0.03, 730))  # sd ∝ level → var ∝ level²
    assert w is not None and w.mean() == pytest.approx(1.0)
    assert w[np.argmax(level)] < 0.5 < 2.0 < w[np.argmin(level)]  # loud high-level days count less
    assert _variance_weights(level, rng.normal(0, 30, 730)) is None  # constant spread: no weighting
    assert _variance_weights(level - 2000, rng.normal(0, 30, 730)) is None  # level not positive
