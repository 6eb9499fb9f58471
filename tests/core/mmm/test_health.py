"""Model health against planted truth: collinear channels are flagged with the collinearity action and a
well-separated channel is identified; an omitted, persistent driver leaves autocorrelated residuals and the action
to add it; a channel whose spend barely moves gets the action to vary it; old artifacts load as unavailable."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core.demo.mmm_synth import SynthChannel, SynthParams, SynthWorld, make_world
from core.mmm.fit import fit_mmm
from core.mmm.health import (
    RESID_LAG1,
    SEVERE_R,
    ModelHealth,
    health_of,
    ljung_box,
    naive_holdout,
)
from tests.core.mmm.structured_worlds import Channel, make
from tests.core.mmm.test_plan import WORLD_1, make_artifact


def collinear_world(freq: str = "D", seed: int = 0, noise: float = 0.04) -> SynthWorld:
    """Search spends on its own (volatile, with pauses); TikTok's spend follows Meta's almost exactly (r > 0.95)."""
    chans = [SynthChannel("Search", 4000, 0.3, 3500, 1.2, 12000, volatility=0.6, pause_prob=0.05),
             SynthChannel("Meta Ads", 3000, 0.4, 3000, 1.0, 9000, volatility=0.4),
             SynthChannel("TikTok", 2500, 0.4, 2500, 1.0, 7000, volatility=0.05, follows="Meta Ads")]
    return make_world(SynthParams(chans, periods=730 if freq == "D" else 156, freq=freq, noise_sd=noise), seed=seed)


def fit(w: SynthWorld, n_boot: int = 60, **kw) -> dict:
    return fit_mmm(w.data, spend_cols=w.spend_cols, external_factors=w.external_factors, n_boot=n_boot,
                   country=None, **kw)


@pytest.mark.parametrize("freq,seed", [("D", 0), ("W", 2)])
def test_collinear_channels_are_flagged_and_a_flighted_channel_is_identified(freq: str, seed: int) -> None:
    w = collinear_world(freq, seed)
    assert np.corrcoef(w.data["Meta Ads"], w.data["TikTok"])[0, 1] > 0.95
    art = fit(w)
    health = art["health"]
    assert health["available"]
    ch = health["channels"]
    for name, other in (("Meta Ads", "TikTok"), ("TikTok", "Meta Ads")):
        h = ch[name]
        assert h["status"] in ("weak", "unidentified"), h
        assert h["max_corr_with"] == other and h["max_corr"] > SEVERE_R
        coll = [f for f in h["findings"] if f["kind"] == "collinear"]
        assert coll and coll[0]["other"] == other
        assert h["actions"][0] == f"Run a lift test on {name}: its spend moves with {other} (r = {h['max_corr']:.2f})"
    s = ch["Search"]
    assert s["status"] == "identified" and s["findings"] == [] and s["max_corr"] < 0.3, s
    assert s["roas_rel_width"] < ch["TikTok"]["roas_rel_width"]
    assert health["overall"]["holdout_ratio"] < 1  # the model forecasts held-out weeks better than naive


def _omitted_driver_world() -> tuple[pd.DataFrame, SynthWorld]:
    """A price index that drifts for weeks at a time (AR(1), φ = 0.9) and moves revenue; the data carry it."""
    chans = [SynthChannel("Search", 4000, 0.3, 3500, 1.2, 12000, volatility=0.6, pause_prob=0.05),
             SynthChannel("Social", 3000, 0.4, 3000, 1.0, 9000, volatility=0.5, pause_prob=0.03)]
    w = make_world(SynthParams(chans, periods=730, noise_sd=0.03), seed=4)
    rng = np.random.default_rng(9)
    e = np.zeros(len(w.data))
    for t in range(1, len(e)):
        e[t] = 0.9 * e[t - 1] + rng.normal()
    e /= e.std()
    df = w.data.copy()
    df["price"] = 100 + 5 * e
    df["revenue"] = df["revenue"] - 2000 * e
    return df, w


def test_an_omitted_driver_leaves_autocorrelated_residuals_and_the_action_to_add_it() -> None:
    df, w = _omitted_driver_world()
    kw = dict(spend_cols=w.spend_cols, external_factors=w.external_factors, n_boot=20, country=None)
    without = fit_mmm(df, **kw)["health"]["overall"]
    assert without["residual_lag1"] > RESID_LAG1 and without["ljung_box_p"] < 0.01 and without["status"] == "caution"
    acts = [f["action"] for f in without["findings"] if f["kind"] == "autocorrelation"]
    assert acts == [f"Add a price or promotion column: residuals are autocorrelated (lag-1 "
                    f"{without['residual_lag1']:.2f})"]
    with_price = fit_mmm(df, control_cols=["price"], **kw)["health"]["overall"]
    assert with_price["residual_lag1"] < RESID_LAG1
    assert not [f for f in with_price["findings"] if f["kind"] == "autocorrelation"]
    assert with_price["residual_sd"] < without["residual_sd"]


def test_a_channel_whose_spend_barely_moves_gets_the_action_to_vary_it() -> None:
    w = make([Channel("Brand", 6000, 2.0, half=1.5, flighted=False, vol=0.04, decay=0.5),
              Channel("Search", 4000, 2.5, half=1.0)], periods=730, seed=41, noise=0.05)
    h = fit_mmm(w.data, spend_cols=w.spend_cols, n_boot=40, country=None, kpi_form="additive")["health"]
    brand = h["channels"]["Brand"]
    cv = float(w.data["Brand"].std(ddof=0) / w.data["Brand"].mean())
    assert brand["spend_cv"] == pytest.approx(cv, rel=1e-6) and cv < 0.1
    assert brand["status"] in ("weak", "unidentified")
    assert f"Vary Brand's spend: it changed by only {cv:.0%} over the period" in brand["actions"]
    assert h["channels"]["Search"]["status"] == "identified"


def test_ljung_box_tells_persistent_noise_from_independent_noise() -> None:
    rng = np.random.default_rng(0)
    iid = rng.normal(size=600)
    ar = np.zeros(600)
    for t in range(1, 600):
        ar[t] = 0.6 * ar[t - 1] + rng.normal()
    lag1, p = ljung_box(iid, 14)
    assert abs(lag1) < 0.1 and p > 0.05
    lag1, p = ljung_box(ar, 14)
    assert lag1 == pytest.approx(0.6, abs=0.08) and p < 1e-6


def test_naive_holdout_picks_the_better_naive_forecast() -> None:
    t = np.arange(800)
    yearly = 1000 + 300 * np.sin(2 * np.pi * t / 364)  # repeats exactly every 364 days
    name, mape = naive_holdout(yearly, 1.0, 56)
    assert name == "the same weeks last year" and mape < 1e-9
    flat = np.full(800, 500.0) + 10 * np.sin(2 * np.pi * t / 7)  # a weekly pattern only: the recent mean wins
    name, mape = naive_holdout(flat, 1.0, 56)
    assert name == "the last four weeks' mean" and mape < 1e-9
    assert naive_holdout(flat[:40], 1.0, 56) is None


def test_old_artifacts_load_as_unavailable_and_the_block_round_trips() -> None:
    old = make_artifact(WORLD_1)
    h = health_of(old)
    assert not h.available and h.overall.status == "unavailable"
    assert {c.status for c in h.channels.values()} == {"unavailable"} and set(h.channels) == set(WORLD_1)
    art = fit(collinear_world("D", 0), n_boot=10)
    again = ModelHealth.from_dict(art["health"])
    assert again.to_dict() == art["health"]
    assert health_of(art).channels["TikTok"].actions == art["health"]["channels"]["TikTok"]["actions"]
    assert all(re.search(r"\d", a) for c in art["health"]["channels"].values() for a in c["actions"])
