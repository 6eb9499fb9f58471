"""The TechStyle world: the brief's patterns, planted truth that adds up, determinism, other worlds."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from core.demo.techstyle import (
    ChannelParams,
    TechStyleParams,
    aggregate_weekly,
    generate_techstyle,
    true_revenue,
    write_techstyle,
)
from core.mmm.adstock import geometric_adstock
from core.mmm.saturation import hill

END = date(2026, 11, 25)


@pytest.fixture(scope="module")
def world():
    return generate_techstyle(seed=42, end=END)


@pytest.fixture(scope="module")
def second_world():
    channels = [
        ChannelParams("Search", spend_end=3000, spend_start=2000, decay=0.6, half=1500, shape=1.4, beta=9000,
                      platform_roas=3.0),
        ChannelParams("Social", spend_end=1200, spend_start=1500, decay=0.1, half=2500, shape=0.9, beta=7000,
                      privacy_loss=0.2, platform_roas=2.5),
        ChannelParams("Newsletter", spend_end=150, spend_start=150, decay=0.3, half=120, shape=1.0, beta=4000,
                      kind="email", weekday_spend=(1.0, 0.2, 0.2, 0.2, 1.0, 0.2, 0.2), volatility=0.0,
                      pulses_per_year=0, pause_prob=0.0, spend_seasonality=0.0, list_growth=0.01),
    ]
    params = TechStyleParams(channels=channels, days=400, baseline=8000, media_demand_elasticity=0.0,
                             privacy_change_day=200, noise_sd=0.02)
    return generate_techstyle(params, seed=7, end=date(2025, 6, 30))


def _daily(world, name):
    m = world.marketing
    return m[m["channel"] == name].set_index("date")


def test_shape_and_columns(world):
    m, k = world.marketing, world.kpis
    assert list(m.columns) == ["date", "channel", "spend", "impressions", "clicks", "conversions", "revenue",
                               "new_customers", "returning_customers"]
    assert len(k) == 730 and k["date"].iloc[-1] == pd.Timestamp(END) and k["date"].is_monotonic_increasing
    assert set(m["channel"]) == {"Google Ads", "Meta Ads", "Email", "TikTok", "Affiliate"}
    assert not m.duplicated(["date", "channel"]).any()
    assert (m["spend"] >= 0).all() and (m["clicks"] <= m["impressions"]).all()
    assert (m["new_customers"] + m["returning_customers"] == m["conversions"]).all()
    assert world.truth["start"] == "2024-11-26" and len(world.truth["dates"]) == 730


def test_default_end_is_yesterday():
    d = generate_techstyle(TechStyleParams(days=60), seed=1)
    assert d.kpis["date"].iloc[-1].date() == date.today() - pd.Timedelta(days=1)


def test_revenue_patterns(world):
    k = world.kpis.set_index("date")["revenue"]
    normal = k[k.index.month.isin([3, 4, 5, 9, 10])].mean()
    assert 25_000 < normal < 60_000
    summer = k[k.index.month.isin([7, 8])].mean() / normal
    assert 0.5 < summer < 0.72  # July–August ~40% lower
    december = k[k.index.month == 12].mean() / normal
    assert 1.25 < december < 1.75  # December ~1.5x
    ext = world.external_factors
    bf_days = ext.loc[ext["factor_name"].isin(["Black Friday", "Black Friday weekend", "Cyber Monday"]), "date"]
    assert len(bf_days) >= 4
    assert 2.3 < k.reindex(bf_days).mean() / normal < 3.8  # Black Friday week ~3x
    annual_revenue = k.sum() / 2
    annual_spend = world.marketing["spend"].sum() / 2
    assert 10e6 < annual_revenue < 20e6 and 2e6 < annual_spend < 5e6


def test_channel_stories(world):
    t = world.truth
    ch = t["channels"]
    g = ch["Google Ads"]
    assert 6000 <= g["current_daily_spend"] <= 6500
    assert 4500 <= g["optimal_daily_spend"] <= 5500 and g["marginal_roas_at_current"] < 1
    rois = {n: c["roas"] for n, c in ch.items()}
    assert 2 <= rois["Google Ads"] <= 3 and 2 <= rois["Meta Ads"] <= 4 and 1.5 <= rois["TikTok"] <= 3
    assert 2 <= rois["Affiliate"] <= 4 and rois["Email"] > max(v for n, v in rois.items() if n != "Email")
    values = sorted(rois.values())
    assert min(np.diff(values)) > 0.05  # distinct

    # Meta: ~30% less efficient after the privacy change (revenue per unit of saturated adstocked spend,
    # two months either side of the change)
    meta = _daily(world, "Meta Ads")
    change = pd.Timestamp(t["params"]["privacy_change_date"])
    inc = pd.Series(ch["Meta Ads"]["incremental_revenue_daily"], index=pd.to_datetime(t["dates"]))
    sat = ch["Meta Ads"]["saturation"]
    driver = hill(geometric_adstock(meta["spend"].to_numpy(), ch["Meta Ads"]["adstock"]["decay"]), sat["half"],
                  sat["shape"])
    per_unit = inc / driver
    window = pd.Timedelta(days=60)
    pre = per_unit[(per_unit.index < change) & (per_unit.index >= change - window)].median()
    post = per_unit[(per_unit.index >= change + pd.Timedelta(days=7)) & (per_unit.index < change + window)].median()
    assert 0.6 < post / pre < 0.8
    assert ch["Meta Ads"]["roas"] < 4
    assert ((world.external_factors["factor_type"] == "platform_change")
            & (world.external_factors["date"] == change)).any()

    # TikTok ~$500/day → ~$4,000/day
    tk = _daily(world, "TikTok")["spend"]
    assert 250 < tk.iloc[:28].mean() < 1200 and 3500 < tk.iloc[-28:].mean() < 4500

    # Email: fixed monthly cost, best days Tue/Thu, 20–25% of revenue, list growing 2%/month
    em = _daily(world, "Email")["spend"]
    monthly = em.groupby(em.index.to_period("M")).sum().iloc[1:-1]
    assert monthly.std() / monthly.mean() < 0.05 and ch["Email"]["fixed_cost"]
    by_day = em.groupby(em.index.day_of_week).mean()
    assert set(by_day.nlargest(2).index) == {1, 3}
    assert 0.17 <= ch["Email"]["incremental_revenue_total"] / t["kpi_total"] <= 0.27

    # Affiliate: 8% commission, reported revenue 8–12% of revenue
    af = _daily(world, "Affiliate")
    assert af["spend"].sum() / af["revenue"].sum() == pytest.approx(0.08, rel=0.02)
    assert 0.07 <= af["revenue"].sum() / t["kpi_total"] <= 0.13


def test_platforms_over_claim(world):
    m = world.marketing
    platform = m.groupby("channel")["revenue"].sum()
    truth = {n: c["incremental_revenue_total"] for n, c in world.truth["channels"].items()}
    assert platform["Google Ads"] > 1.3 * truth["Google Ads"]
    assert platform.sum() > world.kpis["revenue"].sum() - world.truth["baseline"]["total"]


def test_spend_varies_day_to_day(world):
    for name, g in world.marketing.groupby("channel"):
        s = g["spend"].to_numpy()
        assert np.std(np.diff(s)) / s.mean() > 0.05, name
    # channels do not move in lockstep (identifiable)
    wide = world.marketing.pivot(index="date", columns="channel", values="spend")
    corr = np.log1p(wide).diff().corr().to_numpy()
    assert np.abs(corr[np.triu_indices(5, 1)]).max() < 0.8


def test_truth_adds_up(world):
    t, k = world.truth, world.kpis
    parts = np.asarray(t["baseline"]["daily"]) + np.asarray(t["noise"]["daily"])
    for c in t["channels"].values():
        parts = parts + np.asarray(c["incremental_revenue_daily"])
        assert c["roas"] == pytest.approx(c["incremental_revenue_total"] / c["spend_total"])
        assert c["incremental_revenue_total"] == pytest.approx(sum(c["incremental_revenue_daily"]))
    np.testing.assert_allclose(parts, k["revenue"].to_numpy(), atol=1e-6)
    assert t["kpi_total"] == pytest.approx(k["revenue"].sum())
    for name, c in t["channels"].items():
        assert c["spend_total"] == pytest.approx(_daily(world, name)["spend"].sum())
    noise = np.asarray(t["noise"]["daily"]) / k["revenue"].to_numpy()
    assert 0.01 < noise.std() < 0.06
    json.dumps(t)  # serialisable


def test_response_curves_and_true_revenue(world):
    ch = world.truth["channels"]
    g = ch["Google Ads"]
    curve = g["response_curve"]
    assert np.all(np.diff(curve["revenue"]) >= 0)
    # numerical marginal ROAS at the optimum ≈ 1
    opt = g["optimal_daily_spend"]
    slope = (true_revenue(world.truth, {"Google Ads": opt + 1}) - true_revenue(world.truth, {"Google Ads": opt - 1}))
    assert slope / 2 == pytest.approx(1.0, abs=0.02)
    current = {n: c["current_daily_spend"] for n, c in ch.items()}
    moved = dict(current, **{"Google Ads": opt, "Meta Ads": current["Meta Ads"] + current["Google Ads"] - opt})
    assert true_revenue(world.truth, moved) > true_revenue(world.truth, current)  # a reallocation opportunity
    with pytest.raises(ValueError, match="unknown channel"):
        true_revenue(world.truth, {"Radio": 10})


def test_deterministic_and_seed_sensitive(world):
    again = generate_techstyle(seed=42, end=END)
    pd.testing.assert_frame_equal(world.marketing, again.marketing)
    pd.testing.assert_frame_equal(world.kpis, again.kpis)
    pd.testing.assert_frame_equal(world.campaigns, again.campaigns)
    assert world.truth == again.truth
    other = generate_techstyle(seed=43, end=END)
    assert not np.allclose(other.kpis["revenue"], world.kpis["revenue"])


def test_second_world_differs_and_adds_up(second_world, world):
    t = second_world.truth
    assert set(t["channels"]) == {"Search", "Social", "Newsletter"} and len(t["dates"]) == 400
    assert t["channels"]["Search"]["adstock"]["decay"] == 0.6
    assert t["channels"]["Newsletter"]["fixed_cost"]
    total = np.asarray(t["baseline"]["daily"]) + np.asarray(t["noise"]["daily"])
    total += sum(np.asarray(c["incremental_revenue_daily"]) for c in t["channels"].values())
    np.testing.assert_allclose(total, second_world.kpis["revenue"], atol=1e-6)
    assert 2800 < t["channels"]["Search"]["current_daily_spend"] < 3200
    # the optimum sits where the marginal ROAS is 1 for this world's own curve
    s = t["channels"]["Search"]
    x = s["optimal_daily_spend"]
    slope = true_revenue(t, {"Search": x + 1}) - true_revenue(t, {"Search": x - 1})
    assert slope / 2 == pytest.approx(1.0, abs=0.02)
    assert s["optimal_daily_spend"] != pytest.approx(world.truth["channels"]["Google Ads"]["optimal_daily_spend"])


def test_aggregate_weekly(world):
    wk = aggregate_weekly(world)
    dates = pd.to_datetime(wk.kpis["date"])
    assert (dates.dt.day_of_week == 0).all() and dates.diff().dropna().eq(pd.Timedelta(days=7)).all()
    t = wk.truth
    assert t["granularity"] == "week" and len(t["dates"]) == len(wk.kpis)
    total = np.asarray(t["baseline"]["daily"]) + np.asarray(t["noise"]["daily"])
    total += sum(np.asarray(c["incremental_revenue_daily"]) for c in t["channels"].values())
    np.testing.assert_allclose(total, wk.kpis["revenue"].to_numpy(), rtol=1e-9, atol=1e-5)
    for name, c in t["channels"].items():
        spend = wk.marketing.loc[wk.marketing["channel"] == name, "spend"].sum()
        assert c["spend_total"] == pytest.approx(spend)
        assert c["roas"] == pytest.approx(c["incremental_revenue_total"] / spend)
    assert len(wk.kpis) in (103, 104)


def test_bad_params():
    with pytest.raises(ValueError, match="at least one channel"):
        generate_techstyle(TechStyleParams(channels=[]))
    dup = [ChannelParams("A", 10, 10, 0.1, 10, 1, 10), ChannelParams("A", 10, 10, 0.1, 10, 1, 10)]
    with pytest.raises(ValueError, match="unique"):
        generate_techstyle(TechStyleParams(channels=dup))


def test_write_techstyle(tmp_path):
    paths = write_techstyle(tmp_path, seed=3, journeys=300, params=TechStyleParams(days=90), end=END)
    for name in ("daily_marketing_data", "daily_kpis", "campaigns", "external_factors", "journeys", "truth"):
        assert paths[name].exists()
    truth = json.loads(paths["truth"].read_text())
    assert "attribution" in truth and truth["seed"] == 3
    kpis = pd.read_csv(paths["daily_kpis"])
    assert len(kpis) == 90 and kpis["revenue"].sum() == pytest.approx(truth["kpi_total"])


def test_write_without_journeys(tmp_path):
    paths = write_techstyle(tmp_path, seed=3, journeys=0, params=TechStyleParams(days=90), end=END)
    assert "journeys" not in paths and not (tmp_path / "journeys.csv").exists()
    m = pd.read_csv(paths["daily_marketing_data"])
    assert m["date"].str.match(r"^\d{4}-\d{2}-\d{2}$").all() and len(m) == 90 * 5


def test_world_is_identifiable(world):
    """With the true transforms, least squares on spend + a plain baseline design recovers each sizeable channel's
    ROAS: spend varies enough, and independently enough, for a good model to find the planted effects."""
    t = world.truth
    dates = pd.to_datetime(t["dates"])
    n = len(dates)
    spend = world.marketing.pivot(index="date", columns="channel", values="spend")
    media = {}
    change = dates >= pd.Timestamp(t["params"]["privacy_change_date"])
    hit = {c["name"] for c in t["params"]["channels"] if c["privacy_loss"] > 0}
    for name, c in t["channels"].items():
        x = geometric_adstock(spend[name].to_numpy(), c["adstock"]["decay"])
        media[name] = hill(x, c["saturation"]["half"], c["saturation"]["shape"])
        if name in hit:  # a good model knows the dated platform change: separate effect before and after
            media[f"{name} (after change)"] = media[name] * change
            media[name] = media[name] * ~change
    years = np.arange(n) / 365.0
    doy = dates.day_of_year.to_numpy() / 365.25
    base = [np.ones(n), years, years**2]
    base += [f(2 * np.pi * k * doy) for k in range(1, 7) for f in (np.sin, np.cos)]
    base += [(dates.day_of_week == d).astype(float) for d in range(6)]
    ext = world.external_factors
    events = ext[ext["factor_type"] != "platform_change"].drop_duplicates("date")
    base += [dates.isin(events.loc[events["factor_name"] == f, "date"]).astype(float)
             for f in events["factor_name"].unique()]
    X = np.column_stack([*media.values(), *base])
    coef, *_ = np.linalg.lstsq(X, world.kpis["revenue"].to_numpy(), rcond=None)
    contribution: dict[str, float] = {}
    for i, (name, feature) in enumerate(media.items()):
        key = name.removesuffix(" (after change)")
        contribution[key] = contribution.get(key, 0.0) + coef[i] * feature.sum()
    for name, total in contribution.items():
        estimated = total / t["channels"][name]["spend_total"]
        true = t["channels"][name]["roas"]
        if t["channels"][name]["incremental_revenue_total"] / t["kpi_total"] > 0.05:
            assert estimated == pytest.approx(true, rel=0.3), name
