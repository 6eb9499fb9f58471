"""Lifetime models: likelihoods against direct integration, parameter recovery on customers simulated from the
models' stories (written here without the model code), the published CDNOW and Fader & Hardie (2007) estimates,
the CDNOW holdout, and the coverage of standard errors and prediction intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from core.cdp import btyd, ltv

CDNOW = Path(__file__).resolve().parents[2] / "data" / "cdnow" / "CDNOW_sample.txt"
BG_TRUE = {"r": 0.6, "alpha": 40.0, "a": 0.8, "b": 3.0}  # time unit: days
GG_TRUE = {"p": 6.0, "q": 4.0, "v": 15.0}  # mean order value p v / (q - 1) = 30


def simulate_customers(n: int, rng: np.random.Generator, bg: dict = BG_TRUE, gg: dict = GG_TRUE,
                       t_range: tuple[float, float] = (30.0, 365.0), holdout: float = 180.0,
                       first_coin: bool = False) -> dict:
    """Customers following the BG/NBD and Gamma-Gamma stories, in continuous days from each one's first purchase.

    Each customer draws a purchase rate, a dropout probability and a spend rate; purchases arrive as a Poisson
    process, after each repeat purchase she leaves with her dropout probability; every purchase's value is Gamma.
    With ``first_coin`` (the MBG/NBD story) she may also leave right after her first purchase. She is watched
    for ``T`` (calibration) then ``holdout`` more days. Returns per-customer arrays (with whether she was truly
    alive at ``T``) and the purchase log (customer, time, value), the first purchase at time 0."""
    lam = rng.gamma(bg["r"], 1.0 / bg["alpha"], n)
    drop = rng.beta(bg["a"], bg["b"], n)
    spend_rate = rng.gamma(gg["q"], 1.0 / gg["v"], n)
    T = rng.uniform(*t_range, n)
    end = T + holdout
    cust, times = [np.arange(n)], [np.zeros(n)]
    # the first purchase starts the watch; BG/NBD: dropping out is possible only after a repeat purchase
    now, alive, dead_at = np.zeros(n), np.ones(n, bool), np.full(n, np.inf)
    if first_coin:
        alive = rng.random(n) >= drop
        dead_at[~alive] = 0.0
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1.0 / lam[idx])
        bought = idx[now[idx] <= end[idx]]
        cust.append(bought)
        times.append(now[bought])
        alive[idx] = False
        leaves = rng.random(len(bought)) < drop[bought]
        alive[bought[~leaves]] = True
        dead_at[bought[leaves]] = now[bought[leaves]]
    cust, times = np.concatenate(cust), np.concatenate(times)
    order = np.lexsort((times, cust))
    cust, times = cust[order], times[order]
    values = rng.gamma(gg["p"], 1.0 / spend_rate[cust])
    cal = times <= T[cust]
    x = np.bincount(cust[cal], minlength=n) - 1
    t_x = np.zeros(n)
    np.maximum.at(t_x, cust[cal], times[cal])
    repeat = cal & (times > 0)
    spend = np.bincount(cust[repeat], weights=values[repeat], minlength=n)
    m = np.where(x > 0, spend / np.maximum(x, 1), 0.0)
    hold = ~cal
    return {"x": x.astype(float), "t_x": t_x, "T": T, "m": m, "alive": dead_at > T,
            "holdout_purchases": np.bincount(cust[hold], minlength=n).astype(float),
            "holdout_revenue": np.bincount(cust[hold], weights=values[hold], minlength=n),
            "log": pd.DataFrame({"customer": cust, "time": times, "value": values})}


def summary_of(sim: dict) -> pd.DataFrame:
    out = pd.DataFrame({"frequency": sim["x"], "recency": sim["t_x"], "T": sim["T"], "monetary_value": sim["m"]})
    out.attrs["freq"] = "D"
    return out


@pytest.fixture(scope="module")
def big():
    return simulate_customers(20_000, np.random.default_rng(7))


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    raw = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["master_id", "customer", "date", "cds", "amount"],
                      dtype=str)
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


# ------------------------------------------------------------------------------------------ likelihoods by hand

def test_bgnbd_log_likelihood_matches_direct_integration():
    params = (0.7, 5.0, 1.3, 2.2)
    data = [(0, 0.0, 10.0), (1, 4.0, 12.0), (3, 8.5, 9.0)]
    r, alpha, a, b = params

    log_norm = r * math.log(alpha) - math.lgamma(r) - math.lgamma(a) - math.lgamma(b) + math.lgamma(a + b)

    def lik(x, t_x, T):
        # P(data | lambda, p): alive through T, or dropped out right after the x-th purchase; times the priors
        def f(p, lam):
            given = (1 - p) ** x * lam ** x * math.exp(-lam * T)
            if x > 0:
                given += p * (1 - p) ** (x - 1) * lam ** x * math.exp(-lam * t_x)
            prior = math.exp(log_norm + (r - 1) * math.log(lam) - alpha * lam + (a - 1) * math.log(p)
                             + (b - 1) * math.log1p(-p))
            return given * prior
        return integrate.dblquad(f, 0, 20, 0, 1, epsabs=0, epsrel=1e-9)[0]

    got = btyd.bgnbd_log_likelihood(params, *map(np.array, zip(*data, strict=True)))
    want = [np.log(lik(*row)) for row in data]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_gamma_gamma_log_likelihood_matches_direct_integration():
    p, q, v = 3.0, 2.5, 10.0
    for x, m in [(1, 12.0), (4, 7.5)]:
        # the mean of x Gamma(p, nu) values is Gamma(p x, nu x); nu ~ Gamma(q, v)
        dens = integrate.quad(lambda nu, x=x, m=m: stats.gamma.pdf(m, p * x, scale=1 / (nu * x))
                              * stats.gamma.pdf(nu, q, scale=1 / v), 0, np.inf)[0]
        assert btyd.gamma_gamma_log_likelihood((p, q, v), x, m) == pytest.approx(np.log(dens), rel=1e-8)


def test_sbg_log_likelihood_matches_direct_integration():
    alpha, beta = 0.9, 2.0
    for s, active in [(0, False), (3, False), (3, True)]:
        prob = (lambda th, s=s: (1 - th) ** s) if active else (lambda th, s=s: th * (1 - th) ** s)
        want = integrate.quad(lambda th, f=prob: f(th) * stats.beta.pdf(th, alpha, beta), 0, 1)[0]
        assert btyd.sbg_log_likelihood((alpha, beta), s, active) == pytest.approx(np.log(want), rel=1e-9)


# ------------------------------------------------------------------------------------------ recovery and truth

def test_bgnbd_and_gamma_gamma_recover_planted_parameters(big):
    bg = btyd.fit_bgnbd(big["x"], big["t_x"], big["T"])
    assert bg.converged
    sd_log = dict(zip(bg.names, np.sqrt(np.diag(bg.cov_log)), strict=True))
    for name, true in BG_TRUE.items():
        assert abs(np.log(bg[name] / true)) < 3.5 * sd_log[name]
        assert bg[name] == pytest.approx(true, rel=0.25)
    gg = btyd.fit_gamma_gamma(big["x"], big["m"])
    for name, true in GG_TRUE.items():
        assert gg[name] == pytest.approx(true, rel=0.25)
    # the population spend mean is far better determined than p, q, v one by one
    assert gg["p"] * gg["v"] / (gg["q"] - 1) == pytest.approx(30.0, rel=0.03)


def test_penalizer_shrinks_the_parameters(big):
    plain = btyd.fit_bgnbd(big["x"][:3000], big["t_x"][:3000], big["T"][:3000])
    shrunk = btyd.fit_bgnbd(big["x"][:3000], big["t_x"][:3000], big["T"][:3000], penalizer=0.001)
    assert np.sum(np.square(shrunk.params)) < np.sum(np.square(plain.params))
    assert shrunk.log_likelihood < plain.log_likelihood and shrunk.penalizer == 0.001


def test_predictions_under_true_parameters_match_simulated_outcomes(big):
    params = tuple(BG_TRUE.values())
    expected = btyd.bgnbd_expected_purchases(params, 180.0, big["x"], big["t_x"], big["T"])
    assert expected.sum() == pytest.approx(big["holdout_purchases"].sum(), rel=0.04)
    churn = btyd.bgnbd_p_no_purchase(params, 180.0, big["x"], big["t_x"], big["T"])
    none = big["holdout_purchases"] == 0
    assert churn.mean() == pytest.approx(none.mean(), abs=0.01)
    for lo, hi in [(0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.01)]:  # calibrated across its range
        sel = (churn >= lo) & (churn < hi)
        assert churn[sel].mean() == pytest.approx(none[sel].mean(), abs=0.03)
    p_alive = btyd.bgnbd_p_alive(params, big["x"], big["t_x"], big["T"])
    for lo, hi in [(0, 0.5), (0.5, 0.9), (0.9, 1.01)]:
        sel = (p_alive >= lo) & (p_alive < hi)
        assert p_alive[sel].mean() == pytest.approx(big["alive"][sel].mean(), abs=0.03)
    # the population curve: new customers' repeat purchases over their first 30 days
    first_month = big["log"].query("time > 0 and time <= 30").groupby("customer").size()
    assert btyd.bgnbd_population_purchases(params, 30.0) == pytest.approx(first_month.sum() / 20_000, rel=0.05)


def test_standard_errors_cover_the_truth_across_replicates():
    rng = np.random.default_rng(11)
    inside = []
    for _ in range(30):
        sim = simulate_customers(1_500, rng)
        fit = btyd.fit_bgnbd(sim["x"], sim["t_x"], sim["T"])
        z = (np.log(fit.params) - np.log(list(BG_TRUE.values()))) / np.sqrt(np.diag(fit.cov_log))
        inside.append(np.abs(z) < 1.645)
    share = np.mean(inside, axis=0)  # per parameter, nominal 0.90
    assert np.all(share >= 0.75), share


def test_prediction_interval_covers_simulated_revenue():
    rng = np.random.default_rng(5)
    sim = simulate_customers(4_000, rng)
    summary = summary_of(sim)
    models = ltv.fit_customer_models(summary)
    pred = ltv.predict_customers(summary, models, horizon_days=180)
    real = sim["holdout_revenue"]
    inside = (real >= pred["predicted_ltv_low"] - 1e-9) & (real <= pred["predicted_ltv_high"] + 1e-9)
    assert 0.87 <= inside.mean() <= 0.93
    # at every level of predicted activity, not only by covering the many zeros
    churn = pred["churn_probability"]
    for lo, hi in [(0, 0.5), (0.5, 0.8), (0.8, 1.01)]:
        assert 0.85 <= inside[(churn >= lo) & (churn < hi)].mean() <= 0.97
    assert pred["expected_revenue"].sum() == pytest.approx(real.sum(), rel=0.08)


# ---------------------------------------------------------------------------------------- published examples

def test_cdnow_published_estimates_and_holdout(cdnow):
    summary = ltv.rfm_summary(cdnow, "customer", "date", "amount", "1997-09-30", freq="W")
    assert len(summary) == 2357 and int(summary["frequency"].sum()) == 2457
    models = ltv.fit_customer_models(summary)
    bg, gg = models.bgnbd, models.gamma_gamma
    for name, value in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert bg[name] == pytest.approx(value, abs=0.0015 * max(value, 1))
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert gg[name] == pytest.approx(value, rel=0.003)
    # Fader, Hardie & Lee's worked example: 2 repeat purchases, the last at 30.43 weeks, T = 38.86
    assert btyd.bgnbd_expected_purchases(bg.params, 39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=0.001)

    pred = ltv.predict_customers(summary, models, horizon_days=273, n_draws=100)
    actual = ltv.holdout_actuals(cdnow, "customer", "date", "amount", "1997-09-30", 273)
    ev = ltv.evaluate_holdout(pred, summary, actual, 273, unit_days=7)
    assert ev["actual_purchases"] == 1882 and ev["new_customers"] == 0
    assert ev["predicted_purchases"] == pytest.approx(ev["actual_purchases"], rel=0.15)  # -12% measured
    assert ev["rmse"] < ev["naive_rmse"] and ev["mae"] < ev["naive_mae"]


def test_sbg_published_cohorts_and_planted_parameters():
    regular = btyd.fit_sbg_cohort([1000, 631, 468, 382, 326, 289, 262, 241])
    high_end = btyd.fit_sbg_cohort([1000, 869, 743, 653, 593, 551, 517, 491])
    assert (regular["alpha"], regular["beta"]) == (pytest.approx(0.704, abs=0.001), pytest.approx(1.182, abs=0.001))
    assert (high_end["alpha"], high_end["beta"]) == (pytest.approx(0.668, abs=0.001),
                                                     pytest.approx(3.806, abs=0.001))
    # their projection of the regular cohort to year 12 (actual 173 survivors)
    assert 1000 * btyd.sbg_survival(regular.params, 12) == pytest.approx(170, abs=1)

    rng = np.random.default_rng(3)
    theta = rng.beta(1.5, 4.0, 30_000)
    lifetime = rng.geometric(theta)  # the renewal at which each subscriber leaves
    survivors = [(lifetime > t).sum() for t in range(9)]
    cohort = btyd.fit_sbg_cohort(survivors)
    assert cohort["alpha"] == pytest.approx(1.5, rel=0.1) and cohort["beta"] == pytest.approx(4.0, rel=0.1)
    watched = rng.integers(2, 12, len(theta))  # subscribers who joined at different times: right-censored
    active = lifetime > watched
    each = btyd.fit_sbg(np.where(active, watched, lifetime - 1), active)
    assert each["alpha"] == pytest.approx(1.5, rel=0.1) and each["beta"] == pytest.approx(4.0, rel=0.1)


def test_sbg_residual_lifetime_against_direct_sums():
    params = (1.5, 4.0)
    k = np.arange(1, 20_000)
    for s in (0, 3):
        cond = btyd.sbg_survival(params, s + k) / btyd.sbg_survival(params, s)
        assert btyd.sbg_expected_residual_lifetime(params, s, 0.1) == pytest.approx(
            np.sum(cond * 1.1 ** -(k - 1.0)), rel=1e-9)
        assert btyd.sbg_expected_residual_lifetime(params, s) == pytest.approx((4.0 + s) / 0.5)
    assert np.isinf(btyd.sbg_expected_residual_lifetime((0.704, 1.182), 2))


# ---------------------------------------------------------------------------------------------- summaries etc.

def test_rfm_summary_counts_days_once_and_leaves_out_the_first_purchase():
    tx = pd.DataFrame({
        "cust": ["a", "a", "a", "a", "b", "c"],
        "when": ["2024-01-01 09:00", "2024-01-01 18:00", "2024-01-11", "2024-02-10", "2024-01-20", "2024-03-05"],
        "amt": [10, 5, 20, 40, 7, 99],
    })
    s = ltv.rfm_summary(tx, "cust", "when", "amt", "2024-03-01")
    assert list(s.index) == ["a", "b"]  # c bought after the cutoff
    assert s.loc["a"].tolist() == [2.0, 40.0, 60.0, 30.0]
    assert s.loc["b"].tolist() == [0.0, 0.0, 41.0, 0.0]
    w = ltv.rfm_summary(tx, "cust", "when", "amt", "2024-03-01", freq="W")
    assert w.loc["a", "T"] == pytest.approx(60 / 7) and w.attrs["freq"] == "W"


@pytest.mark.parametrize(("n", "repeat", "missing"), [(49, 20, "50 customers"), (200, 9, "10 repeat buyers")])
def test_too_little_data_names_what_is_missing(n, repeat, missing):
    summary = pd.DataFrame({"frequency": [1.0] * repeat + [0.0] * (n - repeat), "recency": 5.0, "T": 30.0,
                            "monetary_value": 10.0})
    summary.loc[repeat:, ["recency", "monetary_value"]] = 0.0
    with pytest.raises(ValueError, match=missing):
        ltv.fit_customer_models(summary)


def test_discounting_follows_the_timing_of_expected_purchases(big):
    summary = summary_of(big).iloc[:3000]
    models = ltv.fit_customer_models(summary)
    plain = ltv.predict_customers(summary, models, 365, n_draws=20)
    disc = ltv.predict_customers(summary, models, 365, discount_rate_annual=0.2, n_draws=20)
    np.testing.assert_allclose(plain["predicted_ltv"], plain["expected_revenue"])
    ratio = disc["predicted_ltv"] / plain["predicted_ltv"]
    assert np.all((ratio > 1.2 ** -1) & (ratio < 1)) and ratio.mean() > 1.2 ** -0.5  # purchases front-loaded
    # against a fine sum of daily increments of the expected purchases
    row = summary.iloc[[int(np.argmax(summary["frequency"]))]]
    days = np.arange(0, 366.0)
    cum = btyd.bgnbd_expected_purchases(models.bgnbd.params, days, *(row[c].iloc[0] for c in ("frequency",
                                                                                             "recency", "T")))
    fine = np.sum(np.diff(cum) * 1.2 ** -((days[1:] - 0.5) / 365.25))
    assert ratio[row.index[0]] == pytest.approx(fine / cum[-1], rel=1e-3)
