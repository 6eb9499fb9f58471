"""Health bands and what they put at stake, on planted frames whose answers are known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core.cdp.health import BANDS, HealthThresholds, health_band, summarize_health


def _planted() -> pd.DataFrame:
    # risk at and around both default cut-offs; two people never ordered (not scored)
    return pd.DataFrame({
        "person_id": [f"p{i}" for i in range(9)],
        "churn_risk": [0.05, 0.2999, 0.30, 0.45, 0.5999, 0.60, 0.90, np.nan, None],
        "predicted_ltv": [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 50.0, np.nan],
    })


def test_bands_follow_churn_risk_with_cut_offs_inclusive():
    bands = health_band(_planted())
    assert bands.tolist() == ["healthy", "healthy", "warning", "warning", "warning", "critical", "critical",
                              None, None]
    assert bands.index.equals(_planted().index)


def test_custom_thresholds_move_people_between_bands():
    bands = health_band(_planted(), HealthThresholds(warning=0.5, critical=0.8))
    assert bands.tolist() == ["healthy", "healthy", "healthy", "healthy", "warning", "warning", "critical",
                              None, None]


def test_value_never_moves_a_band():
    f = _planted()
    f["predicted_ltv"] = [1e6, 0.0, 5.0, 1e6, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert health_band(f).tolist() == health_band(_planted()).tolist()


def test_summary_counts_and_revenue_at_stake_by_hand():
    s = summarize_health(_planted())
    assert (s.customers, s.scored, s.unscored) == (9, 7, 2)
    healthy, warning, critical = (s.band(b) for b in BANDS)
    assert [b.band for b in s.bands] == list(BANDS)
    assert (healthy.customers, warning.customers, critical.customers) == (2, 3, 2)
    assert healthy.share == pytest.approx(2 / 7) and critical.share == pytest.approx(2 / 7)
    assert healthy.revenue_at_stake == pytest.approx(0.05 * 100 + 0.2999 * 200)
    assert warning.revenue_at_stake == pytest.approx(0.30 * 300 + 0.45 * 400 + 0.5999 * 500)
    assert critical.revenue_at_stake == pytest.approx(0.60 * 600 + 0.90 * 700)
    assert critical.predicted_value == pytest.approx(1300.0)
    assert warning.avg_churn_risk == pytest.approx((0.30 + 0.45 + 0.5999) / 3)
    assert s.total.customers == 7 and s.total.share == 1.0
    assert s.total.revenue_at_stake == pytest.approx(sum(b.revenue_at_stake for b in s.bands))
    # the interval of the critical band: mean +- z * sqrt(sum p (1 - p) ltv^2), clipped to [0, band value]
    z = stats.norm.ppf(0.95)
    sd = math.sqrt(0.6 * 0.4 * 600 ** 2 + 0.9 * 0.1 * 700 ** 2)
    assert critical.revenue_at_stake_low == pytest.approx(990.0 - z * sd)
    assert critical.revenue_at_stake_high == pytest.approx(min(990.0 + z * sd, 1300.0))


def test_empty_band_and_nobody_scored():
    f = pd.DataFrame({"churn_risk": [np.nan, np.nan], "predicted_ltv": [10.0, 20.0]})
    s = summarize_health(f)
    assert (s.scored, s.unscored) == (0, 2)
    for b in s.bands:
        assert (b.customers, b.share, b.revenue_at_stake, b.avg_churn_risk) == (0, 0.0, 0.0, None)
    json.dumps(s.to_json(), allow_nan=False)


def test_interval_covers_the_simulated_realised_loss():
    """Draw each person's churn as Bernoulli(churn_risk) many times: the 90% interval holds about 90% of the
    realised losses of a band (the model is taken as right, which is what the interval claims)."""
    rng = np.random.default_rng(7)
    n = 400
    f = pd.DataFrame({"churn_risk": rng.uniform(0.6, 0.95, n), "predicted_ltv": rng.gamma(2.0, 150.0, n)})
    band = summarize_health(f).band("critical")
    assert band.customers == n
    p, ltv = f["churn_risk"].to_numpy(), f["predicted_ltv"].to_numpy()
    losses = (rng.random((4000, n)) < p) @ ltv
    inside = np.mean((losses >= band.revenue_at_stake_low) & (losses <= band.revenue_at_stake_high))
    assert 0.87 < inside < 0.93
    assert np.mean(losses) == pytest.approx(band.revenue_at_stake, rel=0.01)


def test_to_json_shape():
    out = summarize_health(_planted(), HealthThresholds(0.25, 0.7)).to_json()
    json.dumps(out, allow_nan=False)
    assert set(out) == {"thresholds", "level", "customers", "scored", "unscored", "bands", "total"}
    assert out["thresholds"] == {"warning": 0.25, "critical": 0.7}
    assert [b["band"] for b in out["bands"]] == list(BANDS) and out["total"]["band"] == "total"
    assert set(out["bands"][0]) == {"band", "customers", "share", "revenue_at_stake", "revenue_at_stake_low",
                                    "revenue_at_stake_high", "predicted_value", "avg_churn_risk"}


@pytest.mark.parametrize("kwargs, name", [
    ({"warning": 0.0}, "warning"), ({"warning": -0.1}, "warning"), ({"warning": float("nan")}, "warning"),
    ({"warning": "0.3"}, "warning"), ({"warning": True}, "warning"), ({"critical": 1.0}, "critical"),
    ({"critical": 1.5}, "critical"), ({"warning": 0.6, "critical": 0.5}, "critical"),
    ({"warning": 0.4, "critical": 0.4}, "critical"),
])
def test_bad_thresholds_name_the_field(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        HealthThresholds(**kwargs)


def test_risk_in_percent_is_refused():
    f = pd.DataFrame({"churn_risk": [0.2, 64.0], "predicted_ltv": [1.0, 1.0]})
    with pytest.raises(ValueError, match="^churn_risk:.*row 2"):
        health_band(f)
    with pytest.raises(ValueError, match="^predicted_ltv:"):
        summarize_health(f[["churn_risk"]].iloc[:1])
    with pytest.raises(ValueError, match="^level:"):
        summarize_health(f.iloc[:1], level=1.0)


def test_a_million_rows():
    rng = np.random.default_rng(1)
    n = 1_000_000
    risk = np.where(rng.random(n) < 0.1, np.nan, rng.beta(2, 4, n))
    f = pd.DataFrame({"churn_risk": risk, "predicted_ltv": rng.gamma(1.5, 60, n)})
    s = summarize_health(f)
    assert s.scored + s.unscored == n and sum(b.customers for b in s.bands) == s.scored
    assert health_band(f).notna().sum() == s.scored
