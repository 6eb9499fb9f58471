"""MBG/NBD (Batislam, Denizel & Filiztekin 2007): the BG/NBD story with one more dropout coin, right after the first
purchase. Formulas against direct integration over (lambda, p), the analytic gradient against finite differences,
parameter recovery and predictions against customers simulated from the story (``simulate_customers`` with
``first_coin``, written without the model code), the BTYDplus estimates on CDNOW, the predictive interval's
coverage, and the holdout choice between BG/NBD and MBG/NBD."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from core.cdp import btyd, ltv
from tests.core.cdp.test_btyd import CDNOW, simulate_customers, summary_of

MBG_TRUE = {"r": 0.6, "alpha": 40.0, "a": 1.2, "b": 2.5}  # days; a third of new customers leave at once
CUTOFF = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def big():
    return simulate_customers(20_000, np.random.default_rng(7), bg=MBG_TRUE, first_coin=True)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    raw = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["master_id", "customer", "date", "cds", "amount"],
                      dtype=str)
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


@pytest.fixture(scope="module")
def cdnow_summary(cdnow) -> pd.DataFrame:
    return ltv.rfm_summary(cdnow, "customer", "date", "amount", "1997-09-30", freq="W")


def _transactions(sim: dict) -> pd.DataFrame:
    """The simulated purchase log as dated transactions: each customer's first purchase ``floor(T)`` days before
    ``CUTOFF``, whole days."""
    log = sim["log"]
    first = CUTOFF - pd.to_timedelta(np.floor(sim["T"]), unit="D")
    days = first[log["customer"].to_numpy()] + pd.to_timedelta(np.floor(log["time"].to_numpy()), unit="D")
    return pd.DataFrame({"customer": log["customer"].to_numpy(), "date": days,
                         "amount": log["value"].round(2).to_numpy()})


# ----------------------------------------------------------------------------------------- formulas by hand

@pytest.mark.parametrize("params", [(0.7, 5.0, 1.3, 2.2), (0.5, 4.0, 0.6, 1.5)], ids=["a>1", "a<1"])
def test_mbgnbd_formulas_match_direct_integration(params):
    r, alpha, a, b = params
    t = 7.0
    log_norm = r * math.log(alpha) - math.lgamma(r) - math.lgamma(a) - math.lgamma(b) + math.lgamma(a + b)

    def integral(f):
        # p = u^(1/a) takes the p^(a-1) singularity out of the Beta density: p^(a-1) dp = du / a
        def g(u, lam):
            p = u ** (1 / a)
            prior = math.exp(log_norm + (r - 1) * math.log(lam) - alpha * lam + (b - 1) * math.log1p(-p)) / a
            return f(p, lam) * prior
        return integrate.dblquad(g, 0, 60, 0, 1, epsabs=0, epsrel=1e-10)[0]

    for x, t_x, T in [(0, 0.0, 10.0), (1, 4.0, 12.0), (3, 8.5, 9.0)]:
        # alive at T: x + 1 coins survived (the first right after the first purchase); or dropped right after
        # the last purchase, which for x = 0 is the first one
        def alive(p, lam, x=x, T=T):
            return (1 - p) ** (x + 1) * lam ** x * math.exp(-lam * T)

        def dead(p, lam, x=x, t_x=t_x):
            return p * (1 - p) ** x * lam ** x * math.exp(-lam * t_x)

        i_alive, i_dead = integral(alive), integral(dead)
        lik = i_alive + i_dead
        # alive, she buys at rate lambda until the coin after a purchase drops her: E = (1 - e^(-lambda p t)) / p
        expected = integral(lambda p, lam, f=alive: f(p, lam) * -math.expm1(-lam * p * t) / p) / lik
        none = (i_dead + integral(lambda p, lam, f=alive: f(p, lam) * math.exp(-lam * t))) / lik
        assert btyd.mbgnbd_log_likelihood(params, x, t_x, T) == pytest.approx(math.log(lik), rel=1e-8)
        assert btyd.mbgnbd_p_alive(params, x, t_x, T) == pytest.approx(i_alive / lik, rel=1e-8)
        assert btyd.mbgnbd_expected_purchases(params, t, x, t_x, T) == pytest.approx(expected, rel=1e-7)
        assert btyd.mbgnbd_p_no_purchase(params, t, x, t_x, T) == pytest.approx(none, rel=1e-8)
    # a new customer: alive after the first purchase with probability 1 - p
    pop = integral(lambda p, lam: (1 - p) * -math.expm1(-lam * p * t) / p)
    assert btyd.mbgnbd_population_purchases(params, t) == pytest.approx(pop, rel=1e-7)


def test_one_time_buyers_may_be_gone_and_bgnbd_is_unchanged():
    params = (0.5, 4.0, 0.6, 1.5)
    assert btyd.bgnbd_p_alive(params, 0, 0, 30) == 1.0
    pa = btyd.mbgnbd_p_alive(params, [0, 0, 0], [0, 0, 0], [0, 10, 30])
    assert pa[0] == pytest.approx(1 / (1 + 0.6 / 1.5))  # at T = 0 only the coin has spoken: P(alive) = b / (a + b)
    assert np.all(np.diff(pa) < 0)  # the longer without a purchase, the likelier gone
    # the generic entry points are the named ones
    args = (params, 2, 5.0, 20.0)
    assert btyd.p_alive("mbgnbd", *args) == btyd.mbgnbd_p_alive(*args)
    assert btyd.p_alive("bgnbd", *args) == btyd.bgnbd_p_alive(*args)
    with pytest.raises(ValueError, match="unknown purchase model"):
        btyd.p_alive("pareto", *args)


def test_mbgnbd_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, 40).astype(float)
    T = rng.uniform(5, 50, 40)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 40), 0.0)
    w = rng.integers(1, 4, 40).astype(float)
    total = btyd._purchase_total(x, btyd.survived_coins("mbgnbd", x), t_x, T, w)
    z = np.log([0.7, 5.0, 0.8, 2.2])
    _, grad = total(z)
    h = 1e-6
    numeric = [(total(z + h * e)[0] - total(z - h * e)[0]) / (2 * h) for e in np.eye(4)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6)
    # the total is the weighted sum of the per-customer log-likelihoods
    assert total(z)[0] == pytest.approx(w @ btyd.mbgnbd_log_likelihood(np.exp(z), x, t_x, T), rel=1e-12)


# ------------------------------------------------------------------------------------------ recovery and truth

def test_mbgnbd_recovers_planted_parameters_and_fits_better_than_bgnbd(big):
    fit = btyd.fit_mbgnbd(big["x"], big["t_x"], big["T"])
    assert fit.converged and fit.model == "MBG/NBD" and btyd.purchase_model_name(fit) == "mbgnbd"
    sd_log = dict(zip(fit.names, np.sqrt(np.diag(fit.cov_log)), strict=True))
    for name, true in MBG_TRUE.items():
        assert abs(np.log(fit[name] / true)) < 3.5 * sd_log[name]
        assert fit[name] == pytest.approx(true, rel=0.25)
    bg = btyd.fit_bgnbd(big["x"], big["t_x"], big["T"])
    assert fit.log_likelihood > bg.log_likelihood + 10
    # BG/NBD keeps every one-time buyer alive and over-predicts their holdout; MBG/NBD does not
    once = big["x"] == 0
    actual = big["holdout_purchases"][once]
    mc = 3 * actual.std() * np.sqrt(once.sum())
    mbg = btyd.mbgnbd_expected_purchases(fit.params, 180.0, big["x"], big["t_x"], big["T"])[once].sum()
    bgp = btyd.bgnbd_expected_purchases(bg.params, 180.0, big["x"], big["t_x"], big["T"])[once].sum()
    assert abs(mbg - actual.sum()) < mc
    assert bgp > 1.08 * actual.sum()


def test_penalizer_shrinks_the_mbgnbd_parameters(big):
    data = big["x"][:3000], big["t_x"][:3000], big["T"][:3000]
    plain, shrunk = btyd.fit_mbgnbd(*data), btyd.fit_mbgnbd(*data, penalizer=0.001)
    assert np.sum(np.square(shrunk.params)) < np.sum(np.square(plain.params))
    assert shrunk.log_likelihood < plain.log_likelihood and shrunk.penalizer == 0.001


def test_mbgnbd_predictions_under_true_parameters_match_simulated_outcomes(big):
    params = tuple(MBG_TRUE.values())
    x, t_x, T, held = big["x"], big["t_x"], big["T"], big["holdout_purchases"]
    mc = held.std() * np.sqrt(len(held))  # Monte Carlo standard error of the total
    expected = btyd.mbgnbd_expected_purchases(params, 180.0, x, t_x, T)
    assert abs(expected.sum() - held.sum()) < 3 * mc
    churn = btyd.mbgnbd_p_no_purchase(params, 180.0, x, t_x, T)
    none = held == 0
    assert churn.mean() == pytest.approx(none.mean(), abs=0.01)
    for lo, hi in [(0, 0.6), (0.6, 0.8), (0.8, 0.95), (0.95, 1.01)]:
        sel = (churn >= lo) & (churn < hi)
        assert churn[sel].mean() == pytest.approx(none[sel].mean(), abs=0.03)
    p_alive = btyd.mbgnbd_p_alive(params, x, t_x, T)
    for lo, hi in [(0, 0.3), (0.3, 0.5), (0.5, 0.8), (0.8, 1.01)]:
        sel = (p_alive >= lo) & (p_alive < hi)
        assert p_alive[sel].mean() == pytest.approx(big["alive"][sel].mean(), abs=0.03)
    once = x == 0
    assert p_alive[once].max() < 1 and p_alive[once].mean() == pytest.approx(big["alive"][once].mean(), abs=0.02)
    first_month = big["log"].query("time > 0 and time <= 30").groupby("customer").size()
    assert btyd.mbgnbd_population_purchases(params, 30.0) == pytest.approx(first_month.sum() / 20_000, rel=0.05)


def test_mbgnbd_standard_errors_cover_the_truth_across_replicates():
    rng = np.random.default_rng(12)
    inside = []
    for _ in range(30):
        sim = simulate_customers(5_000, rng, bg=MBG_TRUE, first_coin=True)
        fit = btyd.fit_mbgnbd(sim["x"], sim["t_x"], sim["T"])
        z = (np.log(fit.params) - np.log(list(MBG_TRUE.values()))) / np.sqrt(np.diag(fit.cov_log))
        inside.append(np.abs(z) < 1.645)
    share = np.mean(inside, axis=0)  # per parameter, nominal 0.90 (at 1,500 customers the Wald intervals are short)
    assert np.all(share >= 0.75), share


def test_prediction_interval_covers_simulated_mbg_revenue():
    sim = simulate_customers(4_000, np.random.default_rng(5), bg=MBG_TRUE, first_coin=True)
    summary = summary_of(sim)
    models = ltv.fit_customer_models(summary, model="mbgnbd")
    assert models.model == "mbgnbd" and models.bgnbd is models.purchase and "MBG/NBD" in models.describe()
    pred = ltv.predict_customers(summary, models, horizon_days=180)
    real = sim["holdout_revenue"]
    inside = (real >= pred["predicted_ltv_low"] - 1e-9) & (real <= pred["predicted_ltv_high"] + 1e-9)
    assert 0.87 <= inside.mean() <= 0.93
    churn = pred["churn_probability"]
    for lo, hi in [(0, 0.5), (0.5, 0.8), (0.8, 1.01)]:
        assert 0.82 <= inside[(churn >= lo) & (churn < hi)].mean() <= 0.97
    once = summary["frequency"] == 0
    assert 0.87 <= inside[once].mean() <= 0.95 and pred["p_alive"][once].max() < 1
    assert pred["expected_revenue"].sum() == pytest.approx(real.sum(), rel=0.1)
    # discounting follows the MBG/NBD expected purchases
    disc = ltv.predict_customers(summary, models, 180, discount_rate_annual=0.2, n_draws=10)
    ratio = disc["predicted_ltv"] / pred["predicted_ltv"]
    assert np.all((ratio > 1.2 ** -0.5) & (ratio < 1))


def test_fit_customer_models_names_the_models_it_knows():
    summary = summary_of(simulate_customers(300, np.random.default_rng(2)))
    with pytest.raises(ValueError, match="bgnbd, mbgnbd"):
        ltv.fit_customer_models(summary, model="pareto")
    models = ltv.fit_customer_models(summary)
    assert models.model == "bgnbd" and models.bgnbd is models.purchase
    again = pickle.loads(pickle.dumps(models))
    assert again.model == "bgnbd" and again.bgnbd.params == models.bgnbd.params
    # a predictor pickled before MBG/NBD kept the purchase fit as the field ``bgnbd``
    old = object.__new__(ltv.CustomerModels)
    old.__setstate__({"bgnbd": models.purchase, "gamma_gamma": models.gamma_gamma, "unit_days": 1.0})
    assert old.purchase is models.purchase and old.model == "bgnbd"


# ---------------------------------------------------------------------------------------- published example

def test_cdnow_mbgnbd_matches_btydplus_and_predicts_the_holdout(cdnow, cdnow_summary):
    models = ltv.fit_customer_models(cdnow_summary, model="mbgnbd")
    fit = models.purchase
    # BTYDplus (mbgcnbd with k = 1) and lifetimes' ModifiedBetaGeoFitter on the same 2,357 customers, in weeks
    for name, value in {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}.items():
        assert fit[name] == pytest.approx(value, abs=0.0015 * max(value, 1))
    assert fit.converged and fit.log_likelihood == pytest.approx(-9582.1, abs=0.1)
    pred = ltv.predict_customers(cdnow_summary, models, horizon_days=273, n_draws=50)
    actual = ltv.holdout_actuals(cdnow, "customer", "date", "amount", "1997-09-30", 273)
    ev = ltv.evaluate_holdout(pred, cdnow_summary, actual, 273, unit_days=7)
    assert ev["predicted_purchases"] == pytest.approx(ev["actual_purchases"], rel=0.2)  # -16% measured
    assert ev["rmse"] < ev["naive_rmse"] and ev["mae"] < ev["naive_mae"]
    once = cdnow_summary["frequency"] == 0
    assert pred["p_alive"][once].mean() < 0.5  # most one-time CDNOW buyers are taken to be gone


# ---------------------------------------------------------------------------------------- model selection

def test_select_purchase_model_picks_mbgnbd_when_one_time_buyers_leave():
    planted = {"r": 1.0, "alpha": 30.0, "a": 2.0, "b": 1.5}  # more than half of new customers never return
    sim = simulate_customers(8_000, np.random.default_rng(1), bg=planted, t_range=(0.0, 365.0), holdout=120,
                             first_coin=True)
    tx = _transactions(sim)
    end = CUTOFF + pd.Timedelta(days=120)
    choice = ltv.select_purchase_model(tx, "customer", "date", "amount", end, holdout_days=120)
    assert choice.model == "mbgnbd" and choice.calibration_cutoff == CUTOFF
    bg, mbg = choice.evaluations["bgnbd"], choice.evaluations["mbgnbd"]
    assert bg["actual_purchases"] == mbg["actual_purchases"] > 0
    assert bg["abs_relative_error"] > mbg["abs_relative_error"] + 0.02  # BG/NBD over-predicts the holdout
    assert "total holdout purchases" in choice.reason
    # totals deemed equal: the per-customer RMSE decides
    tied = ltv.select_purchase_model(tx, "customer", "date", "amount", end, holdout_days=120, tolerance=1.0)
    assert tied.model == min(tied.evaluations, key=lambda k: tied.evaluations[k]["rmse"])
    assert "RMSE" in tied.reason
    with pytest.raises(ValueError, match="no purchases in the holdout"):
        ltv.select_purchase_model(tx, "customer", "date", "amount", end + pd.Timedelta(days=400), holdout_days=90)


def test_select_purchase_model_on_cdnow_keeps_bgnbd(cdnow):
    choice = ltv.select_purchase_model(cdnow, "customer", "date", "amount", "1998-06-30", holdout_days=273,
                                       freq="W")
    assert choice.calibration_cutoff == pd.Timestamp("1997-09-30")
    assert choice.evaluations["bgnbd"]["actual_purchases"] == 1882
    # BG/NBD -12% against MBG/NBD -16% of the 1,882 holdout purchases
    assert choice.model == "bgnbd"
    assert choice.evaluations["mbgnbd"]["abs_relative_error"] > choice.evaluations["bgnbd"]["abs_relative_error"]
