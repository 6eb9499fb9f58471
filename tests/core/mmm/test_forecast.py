"""Revenue forecast: holiday projection, backtest vs seasonal-naive on two generated worlds, planned spend."""

from __future__ import annotations

import importlib
from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.mmm.forecast import backtest, forecast_revenue, project_factors
from tests.core.mmm.test_plan import make_artifact


def black_friday(year: int) -> pd.Timestamp:
    nov = pd.date_range(f"{year}-11-01", f"{year}-11-30")
    return nov[nov.day_of_week == 3][3] + pd.Timedelta(days=1)


SPECS = {
    "Search": {"beta": 9000, "half": 3000, "shape": 1.2, "current": 3000, "decay": 0.3},
    "Social": {"beta": 7000, "half": 2000, "shape": 1.0, "current": 2000, "decay": 0.5},
    "Email": {"beta": 2500, "half": 150, "shape": 1.0, "current": 400, "decay": 0.1, "fixed_cost": True},
}


def world(end: str = "2026-12-10", days: int = 760, seed: int = 0, noise: float = 0.04) -> tuple[pd.DataFrame,
                                                                                                 pd.DataFrame]:
    """Daily KPI = baseline (trend, yearly, weekly, holidays) + media (adstock + Hill) + noise."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(end=end, periods=days)
    t = np.arange(days) / 365.25
    doy = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
    base = 30000 * (1 + 0.12 * t) * (1 + 0.15 * np.sin(doy - 1.0) + 0.05 * np.cos(2 * doy))
    base *= np.array([1.0, 0.97, 0.98, 1.02, 1.08, 1.12, 0.9])[dates.day_of_week]
    rows = []
    for y in sorted(set(dates.year)):
        for d, name, mult in [(black_friday(y), "Black Friday", 1.9), (black_friday(y) + pd.Timedelta(days=3),
                                                                       "Cyber Monday", 1.5)]:
            rows.append((d, name, mult))
        for k in (23, 24, 25):
            rows.append((pd.Timestamp(y, 12, k), "Christmas", 1.3))
    ef = pd.DataFrame(rows, columns=["date", "factor_name", "impact_multiplier"])
    ef = ef[(ef["date"] >= dates[0]) & (ef["date"] <= dates[-1])]
    ef["factor_type"] = "holiday"
    ef["description"] = ef["factor_name"]
    mult = pd.Series(1.0, index=dates)
    for r in ef.itertuples():
        mult[r.date] *= r.impact_multiplier
    base = base * mult.to_numpy()
    df = pd.DataFrame({"date": dates})
    media = np.zeros(days)
    for name, s in SPECS.items():
        x = s["current"] * np.exp(rng.normal(0, 0.3, days)) * (1 + 0.2 * np.sin(doy))
        if name == "Email":
            x = np.full(days, s["current"])
        a = np.empty(days)
        level = x[0]
        for i in range(days):
            level = s["decay"] * level + (1 - s["decay"]) * x[i]
            a[i] = level
        media += s["beta"] * a ** s["shape"] / (a ** s["shape"] + s["half"] ** s["shape"])
        df[name] = x
    df["revenue"] = base + media + rng.normal(0, noise * 30000, days)
    return df, ef


def test_recurring_holidays_are_projected_by_their_own_rule() -> None:
    rows = [("2024-11-29", "Black Friday"), ("2025-11-28", "Black Friday"), ("2024-12-02", "Cyber Monday"),
            ("2025-12-01", "Cyber Monday"), ("2024-11-30", "BF weekend"), ("2024-12-01", "BF weekend"),
            ("2025-11-29", "BF weekend"), ("2025-11-30", "BF weekend"), ("2024-09-02", "Labor Day"),
            ("2025-09-01", "Labor Day"), ("2024-12-24", "Christmas"), ("2024-12-25", "Christmas"),
            ("2025-12-24", "Christmas"), ("2025-12-25", "Christmas"), ("2026-02-14", "Spring launch"),
            ("2025-07-15", "Prime Day"), ("2025-07-16", "Prime Day"), ("2025-06-01", "Founders Day")]
    ef = pd.DataFrame(rows, columns=["date", "factor_name"])
    ef["date"] = pd.to_datetime(ef["date"])
    ef["impact_multiplier"] = 1.5
    ef["factor_type"] = ef["factor_name"].map({"Prime Day": "competitor", "Spring launch": "promotion"}).fillna(
        "holiday")
    got = project_factors(ef, pd.Timestamp("2026-01-01"), pd.Timestamp("2026-12-31"))
    by = {n: sorted(g["date"].dt.strftime("%Y-%m-%d")) for n, g in got.groupby("factor_name")}
    assert by["Black Friday"] == ["2026-11-27"]  # day after the 4th Thursday (the last Friday), not Nov 28
    assert by["Cyber Monday"] == ["2026-11-30"]  # follows Black Friday, although it was the 1st Monday of Dec twice
    assert by["BF weekend"] == ["2026-11-28", "2026-11-29"]  # a 5th Saturday twice; Nov 2026 has none: follows BF
    assert by["Labor Day"] == ["2026-09-07"]  # first Monday of September
    assert by["Christmas"] == ["2026-12-24", "2026-12-25"]  # fixed dates, whole run
    assert by["Spring launch"] == ["2026-02-14"]  # a future-dated row is taken as given
    assert by["Founders Day"] == ["2026-06-01"]  # a holiday seen once: same calendar day
    assert "Prime Day" not in by  # a one-off event is not repeated
    assert len(got) == len(got.drop_duplicates(["date", "factor_name"]))


def test_backtest_beats_seasonal_naive_with_black_friday_in_the_test_weeks() -> None:
    df, ef = world()
    art = make_artifact(SPECS, seed=1)
    bt = backtest(art, df, ef, weeks=8)
    assert bt["weeks"] == 8 and len(bt["dates"]) == 56 and bt["end"] == "2026-12-10"
    assert set(bt["naive_mapes"]) == {"same weekday last year", "last week repeated"}
    assert bt["mape"] < bt["naive_mape"] == min(bt["naive_mapes"].values())
    assert bt["mape"] < 0.08
    assert 0.7 <= bt["coverage"] <= 1.0
    i = bt["dates"].index("2026-11-27")
    assert bt["forecast"][i] > 1.5 * bt["forecast"][i - 7]  # Black Friday learnt from the past two years


def test_backtest_beats_naive_on_a_second_world() -> None:
    synth = importlib.import_module("core.demo.mmm_synth")
    w = synth.default_daily(seed=3)
    specs = {n: {"beta": c["beta"], "half": c["saturation"]["half"], "shape": c["saturation"]["shape"],
                 "decay": c["adstock"]["decay"], "current": c["current_daily_spend"]}
             for n, c in w.truth["channels"].items()}
    art = make_artifact(specs, seed=4, bias={n: 0.9 for n in specs})  # a model that under-rates media by 10%
    bt = backtest(art, w.data, w.external_factors, weeks=8)
    assert bt["mape"] < bt["naive_mape"]
    assert 0.6 <= bt["coverage"] <= 1.0


def test_forecast_follows_planned_spend_and_holidays() -> None:
    df, ef = world(end="2026-10-31")
    art = make_artifact(SPECS, seed=1)
    f = forecast_revenue(art, df, ef, days=90, backtest_weeks=None)
    assert len(f["dates"]) == len(f["mean"]) == 90 and f["dates"][0] == "2026-11-01"
    assert all(lo <= m <= hi for lo, m, hi in zip(f["low"], f["mean"], f["high"], strict=True))
    assert f["spend"] == {n: pytest.approx(s["current"]) for n, s in SPECS.items()}
    i = f["dates"].index("2026-11-27")
    assert f["mean"][i] > 1.5 * f["mean"][i - 7]  # projected Black Friday
    assert {"date": "2026-11-27", "name": "Black Friday"} in f["events"]
    more = forecast_revenue(art, df, ef, days=90, spend={"Search": 6000}, backtest_weeks=None)
    gain = np.array(more["mean"]) - np.array(f["mean"])
    assert (gain > 0).all()
    steady = 9000 * (6000**1.2 / (6000**1.2 + 3000**1.2) - 3000**1.2 / (3000**1.2 + 3000**1.2))
    assert gain[-1] == pytest.approx(steady, rel=0.05)  # carry-over done: the steady-state response gain
    assert gain[0] < gain[-1]  # adstock: the effect builds up
    email_off = forecast_revenue(art, df, ef, days=30, spend={"Email": 0}, backtest_weeks=None)
    assert email_off["mean"] == pytest.approx(f["mean"][:30])  # a fixed fee: response does not follow spend


def test_forecast_reports_its_backtest_and_history() -> None:
    df, ef = world(end="2026-10-31")
    art = make_artifact(SPECS, seed=1)
    f = forecast_revenue(art, df, ef, days=30)
    assert f["backtest"]["mape"] < f["backtest"]["naive_mape"]
    assert f["history"]["dates"][-1] == "2026-10-31" and len(f["history"]["actual"]) == 180


@pytest.mark.parametrize("kwargs,msg", [
    ({"days": 0}, "days must be between"),
    ({"spend": {"Radio": 5}}, "unknown channel"),
    ({"spend": {"Search": -1}}, "non-negative"),
    ({"kpi_col": "sales"}, "no 'sales' column"),
])
def test_bad_input(kwargs, msg) -> None:
    df, ef = world(days=400)
    with pytest.raises(ValueError, match=msg):
        forecast_revenue(make_artifact(SPECS), df, ef, **kwargs)


def test_short_history_has_no_backtest_but_a_forecast() -> None:
    df, ef = world(days=60)
    f = forecast_revenue(make_artifact(SPECS), df, ef, days=14)
    assert len(f["mean"]) == 14 and f["backtest"]["mape"] is None and "needs at least" in f["backtest"]["error"]


def test_techstyle_forecast_beats_naive() -> None:
    techstyle = importlib.import_module("core.demo.techstyle")
    fit = importlib.import_module("core.mmm.fit")
    design = importlib.import_module("core.mmm.design")
    data = techstyle.generate_techstyle(seed=42, end=date(2026, 11, 25))
    wide = design.to_wide(data.marketing, data.kpis)
    spend_cols = [c for c in wide.columns if c not in {"date", "revenue"}]
    art = fit.fit_mmm(wide, spend_cols=spend_cols, external_factors=data.external_factors, n_boot=30, seed=0)
    bt = backtest(art, wide, data.external_factors, weeks=8)
    assert bt["mape"] < bt["naive_mape"], bt["naive_mapes"]
