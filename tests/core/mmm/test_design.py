"""Input handling: long → wide, granularity detection, refusals that say why, baseline design."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.mmm.design import baseline_design, demand_index, prepare, to_wide
from core.mmm.fit import fit_mmm


def _wide(n: int = 120, freq: str = "D", channels: int = 2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq=freq)})
    df["revenue"] = 1000 + rng.normal(0, 50, n)
    for c in range(channels):
        df[f"ch{c}"] = rng.uniform(50, 150, n)
    return df


def test_to_wide_pivots_and_keeps_platform_revenue():
    m = pd.DataFrame({"date": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02"],
                      "channel": ["A", "B", "A", "B", "B"], "spend": [10.0, 5.0, 11.0, 6.0, 1.0],
                      "revenue": [30.0, 10.0, 33.0, 12.0, 2.0]})
    k = pd.DataFrame({"date": ["2024-01-01", "2024-01-02"], "revenue": [100.0, 120.0]})
    w = to_wide(m, k)
    assert list(w.columns) == ["date", "revenue", "A", "B"]
    assert w["B"].tolist() == [5.0, 7.0]
    assert w.attrs["platform_revenue"] == {"A": 63.0, "B": 24.0}


def test_granularity_detected():
    assert prepare(_wide(), "date", "revenue", ["ch0", "ch1"], None, 4).granularity == "day"
    p = prepare(_wide(60, "W-MON"), "date", "revenue", ["ch0", "ch1"], None, 4)
    assert (p.granularity, p.days) == ("week", 7.0)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.assign(revenue=5.0), "constant"),
    (lambda d: d.assign(ch1=0.0), "zero throughout"),
    (lambda d: d.assign(ch0=d["ch0"].where(d.index != 7)), "row 8"),
    (lambda d: d.drop(index=[10, 11]), "gap of 3 days"),
    (lambda d: d.head(12), "too few rows"),
    (lambda d: d.assign(ch0=-d["ch0"]), "negative spend"),
    (lambda d: d.assign(date=d["date"].astype(str).where(d.index != 3, "soon")), "row 4 is not a date"),
    (lambda d: pd.concat([d, d.tail(1)]), "more than once"),
])
def test_refusals_say_why(mutate, message):
    with pytest.raises(ValueError, match=message):
        fit_mmm(mutate(_wide()), spend_cols=["ch0", "ch1"], n_boot=0)


def test_missing_column_refused():
    with pytest.raises(ValueError, match="not found: nope"):
        fit_mmm(_wide(), spend_cols=["ch0", "nope"], n_boot=0)


def test_baseline_design_columns_and_factors():
    dates = pd.date_range("2022-01-01", periods=800, freq="D")
    ef = pd.DataFrame({"date": ["2022-11-25", "2023-11-24", "2022-07-01"],
                       "factor_type": ["holiday", "holiday", "promo"],
                       "factor_name": ["Black Friday", "Black Friday", "Summer sale"],
                       "impact_multiplier": [3.0, 3.0, 1.0]})
    B, names, pen = baseline_design(dates, 1.0, np.zeros((800, 0)), [], ef)
    assert B.shape == (800, len(names)) and len(pen) == len(names)
    assert "weekday_6" in names and "yearly_sin1" in names
    bf = B[:, names.index("factor:Black Friday")]
    assert bf.sum() == pytest.approx(4.0) and bf[dates.get_loc(pd.Timestamp("2022-11-25"))] == 2.0
    sale = B[:, names.index("factor:Summer sale")]
    assert sale.sum() == 1.0  # multiplier 1.0 → a plain indicator


def test_demand_index_recovers_a_multiplicative_season_without_the_trend():
    dates = pd.date_range("2022-01-03", periods=730, freq="D")
    doy = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
    season = np.exp(0.4 * np.sin(doy) + 0.15 * np.cos(2 * doy)) * np.where(dates.day_of_week >= 5, 1.2, 1.0)
    growth = np.linspace(1.0, 1.6, 730)
    y = 1000 * season * growth * np.exp(np.random.default_rng(3).normal(0, 0.03, 730))
    s = demand_index(dates, 1.0, None, y)
    assert np.exp(np.log(s).mean()) == pytest.approx(1.0)
    assert np.corrcoef(np.log(s), np.log(season))[0, 1] > 0.95
    assert abs(np.log(s[:365]).mean() - np.log(s[365:]).mean()) < 0.02  # growth is not demand
    flat = demand_index(dates, 1.0, None, 1000 * growth)
    assert np.ptp(np.log(flat)) < 0.05
    assert (demand_index(dates, 1.0, None, y - 2000) == 1.0).all()  # KPI not positive: no index
