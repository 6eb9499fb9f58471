"""core.metrics against planted truth, on two differently-parameterised generated worlds."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core import metrics as M

WORLDS = {
    # name: (seed, start, days, {channel: (daily spend, platform ROAS in year 1, ROAS in year 2)}, best weekday, month)
    "five_channels": (1, "2023-01-02", 730, {"Google Ads": (6000, 3.0, 3.0), "Meta Ads": (3500, 2.5, 2.4),
                                             "Email": (500, 8.0, 8.0), "TikTok": (2000, 2.0, 4.0),
                                             "Affiliate": (800, 5.0, 5.0)}, 5, 12),
    "three_channels": (7, "2022-06-01", 500, {"Search": (1200, 4.0, 1.5), "Social": (900, 1.5, 1.6),
                                              "Display": (300, 1.2, 1.2)}, 2, 3),
}


def world(name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Daily marketing and kpis with planted ROAS per year, one stronger weekday and one stronger month."""
    seed, start, days, chans, best_wd, best_month = WORLDS[name]
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    second_year = np.arange(days) >= 365
    lift = np.where(dates.day_of_week == best_wd, 1.3, 1.0) * np.where(dates.month == best_month, 1.25, 1.0)
    frames = []
    for ch, (spend, r1, r2) in chans.items():
        s = spend * (1 + 0.05 * rng.standard_normal(days))
        roas = np.where(second_year, r2, r1) * lift
        frames.append(pd.DataFrame({"date": dates, "channel": ch, "spend": s, "impressions": s * 90,
                                    "clicks": s / 1.25, "conversions": s / 50, "revenue": s * roas,
                                    "new_customers": s / 100, "returning_customers": s / 150}))
    marketing = pd.concat(frames, ignore_index=True)
    kpis = pd.DataFrame({"date": dates, "revenue": 20000 + 500 * rng.standard_normal(days),
                         "orders": rng.integers(150, 250, days), "new_customers": rng.integers(40, 90, days)})
    return marketing, kpis, {"dates": dates, "channels": chans, "best_weekday": best_wd, "best_month": best_month}


@pytest.fixture(params=sorted(WORLDS))
def data(request):
    return world(request.param)


def test_totals_match_the_rows_in_range(data) -> None:
    mk, kp, truth = data
    s, e = truth["dates"][10], truth["dates"][69]
    t = M.overview_totals(mk, kp, s, e)
    in_range = (mk["date"] >= s) & (mk["date"] <= e)
    k_in = (kp["date"] >= s) & (kp["date"] <= e)
    assert t["spend"] == pytest.approx(mk.loc[in_range, "spend"].to_numpy().sum())
    assert t["revenue"] == pytest.approx(kp.loc[k_in, "revenue"].to_numpy().sum())  # business KPI, not platform
    assert t["platform_revenue"] == pytest.approx(mk.loc[in_range, "revenue"].to_numpy().sum())
    assert t["roas"] == pytest.approx(t["revenue"] / t["spend"])
    assert t["orders"] == pytest.approx(kp.loc[k_in, "orders"].sum())


def test_without_kpis_revenue_falls_back_to_platform_revenue(data) -> None:
    mk, _, truth = data
    t = M.overview_totals(mk, None, truth["dates"][0], truth["dates"][-1])
    assert t["revenue"] == pytest.approx(t["platform_revenue"])


def test_default_range_is_last_90_days_and_previous_period_has_equal_length(data) -> None:
    mk, kp, truth = data
    o = M.overview(mk, kp)
    assert o["end_date"] == truth["dates"][-1].date().isoformat()
    assert o["start_date"] == truth["dates"][-90].date().isoformat()
    ps, pe = pd.Timestamp(o["previous"]["start_date"]), pd.Timestamp(o["previous"]["end_date"])
    assert (pe - ps).days + 1 == 90 and pe == truth["dates"][-91]


def test_change_against_previous_period_is_planted_doubling() -> None:
    mk, kp, truth = world("five_channels")
    d = truth["dates"]
    mk = mk.copy()
    second = mk["date"] >= d[100]
    mk.loc[second, "spend"] *= 2  # spend doubles from day 100: [100, 159] vs [40, 99]
    o = M.overview(mk, kp, d[100].date(), d[159].date().isoformat())
    assert o["change"]["spend"]["pct"] == pytest.approx(1.0, rel=0.05)
    assert o["previous"]["start_date"] == d[40].date().isoformat()
    assert o["change"]["spend"]["abs"] == pytest.approx(o["totals"]["spend"] / 2, rel=0.05)
    # ROAS halves: business revenue is unchanged in expectation while spend doubled
    assert o["change"]["roas"]["pct"] == pytest.approx(-0.5, abs=0.05)


def test_change_is_none_without_a_previous_period(data) -> None:
    mk, kp, truth = data
    d = truth["dates"]
    o = M.overview(mk, kp, d[0], d[29])
    assert o["previous"]["available"] is False and o["change"]["spend"] == {"abs": None, "pct": None}
    assert M.change(5.0, 0.0) == {"abs": 5.0, "pct": None}


def test_channel_breakdown_shares_and_platform_roas(data) -> None:
    mk, _, truth = data
    d = truth["dates"]
    rows = M.channel_breakdown(mk, d[0], d[300])  # year one only
    assert [r["channel"] for r in rows] == sorted(truth["channels"], key=lambda c: -truth["channels"][c][0])
    assert sum(r["share_of_spend"] for r in rows) == pytest.approx(1.0)
    for r in rows:
        planted = truth["channels"][r["channel"]][1]
        assert r["platform_roas"] == pytest.approx(planted, rel=0.08)  # weekday/month lifts average out


@pytest.mark.parametrize("days,expected", [(1, "day"), (120, "day"), (121, "week"), (731, "week"), (732, "month")])
def test_auto_granularity(days: int, expected: str) -> None:
    s = pd.Timestamp("2024-01-01")
    assert M.auto_granularity(s, s + pd.Timedelta(days=days - 1)) == expected


def test_series_aggregation_preserves_totals_and_bounds_the_size(data) -> None:
    mk, kp, truth = data
    d = truth["dates"]
    total = M.channel_breakdown(mk, d[0], d[-1])
    for gran, max_len in [("week", 106), ("month", 26), (None, 106)]:
        ser = M.channel_series(mk, kp, d[0], d[-1], gran)
        assert len(ser["dates"]) <= max_len
        for row in total:
            assert sum(ser["spend"][row["channel"]]) == pytest.approx(row["spend"])
            assert sum(ser["revenue"][row["channel"]]) == pytest.approx(row["platform_revenue"])
        assert sum(ser["total_revenue"]) == pytest.approx(kp["revenue"].sum())
    weekly = M.channel_series(mk, kp, d[0], d[-1], "week")
    assert all(pd.Timestamp(x).weekday() == 0 for x in weekly["dates"][1:])  # periods start on Mondays
    monthly = M.channel_series(mk, kp, d[0], d[-1], "month")
    assert all(pd.Timestamp(x).day == 1 for x in monthly["dates"])


def test_channel_performance_ratios_are_ratios_of_sums(data) -> None:
    mk, _, truth = data
    ch = next(iter(truth["channels"]))
    d = truth["dates"]
    p = M.channel_performance(mk, ch, d[0], d[89], "week")
    s = p["series"]
    assert s["cpc"][0] == pytest.approx(1.25) and s["cpa"][0] == pytest.approx(50.0)
    assert s["conversion_rate"][0] == pytest.approx(1.25 / 50)
    assert s["platform_roas"][3] == pytest.approx(s["platform_revenue"][3] / s["spend"][3])
    assert p["totals"]["spend"] == pytest.approx(sum(s["spend"]))
    assert p["totals"]["avg_daily_spend"] == pytest.approx(p["totals"]["spend"] / 90)


def test_best_weekday_and_month_are_the_planted_ones(data) -> None:
    mk, _, truth = data
    ch = next(iter(truth["channels"]))
    d = truth["dates"]
    wd = M.best_weekdays(mk, ch, d[0], d[-1])
    assert len(wd) == 7 and wd[0]["weekday"] == truth["best_weekday"] and wd[0]["rank"] == 1
    assert wd[0]["label"] == M.WEEKDAYS[truth["best_weekday"]]
    months = M.best_months(mk, ch)
    assert months[0]["month"] == truth["best_month"] and months[0]["label"] == M.MONTHS[truth["best_month"] - 1]


def test_best_periods_rank_by_revenue_when_a_channel_has_no_spend_some_days() -> None:
    mk, _, truth = world("three_channels")
    mk = mk.copy()
    email = mk["channel"] == "Display"
    mk.loc[email & (mk["date"].dt.day_of_week == 6), "spend"] = 0.0  # fixed-cost style: nothing spent on Sundays
    wd = M.best_weekdays(mk, "Display", truth["dates"][0], truth["dates"][-1])
    assert wd[0]["weekday"] == truth["best_weekday"]  # ranked by revenue index instead of a division by zero


def test_insights_name_the_planted_channels() -> None:
    mk, kp, truth = world("five_channels")
    d = truth["dates"]
    ins = M.quick_insights(mk, kp, d[-90], d[-1])
    by = {i["title"]: i for i in ins}
    assert "Email" in by["Best platform ROAS"]["text"]
    yoy = by["Biggest ROAS change year over year"]["text"]
    assert yoy.startswith("TikTok platform ROAS up 100%") or yoy.startswith("TikTok platform ROAS up 10")
    assert by["Biggest ROAS change year over year"]["kind"] == "positive"


def test_insights_on_the_second_world_report_a_fall_and_a_spend_shift() -> None:
    mk, kp, truth = world("three_channels")
    d = truth["dates"]
    mk = mk.copy()
    recent = (mk["date"] >= d[-60]) & (mk["channel"] == "Social")
    mk.loc[recent, ["spend", "revenue"]] *= 3  # Social's share jumps in the last 60 days vs the 60 before
    ins = {i["title"]: i for i in M.quick_insights(mk, kp, d[-60], d[-1])}
    yoy = ins["Biggest ROAS change year over year"]
    assert yoy["text"].startswith("Search platform ROAS down") and yoy["kind"] == "warning"
    shift = ins["Largest shift in spend mix"]["text"]
    assert shift.startswith("Social's share of spend grew")
    assert all(i["text"] and i["title"] for i in ins.values())


@pytest.mark.parametrize("start,end,message", [
    ("2024-13-01", None, "start_date '2024-13-01' is not a valid date"),
    ("2024-02-01", "yesterday", "end_date 'yesterday' is not a valid date"),
    ("2024-03-01", "2024-02-01", "end_date 2024-02-01 is before start_date 2024-03-01"),
    ("2030-01-01", "2030-02-01", "no data between 2030-01-01 and 2030-02-01"),
])
def test_bad_ranges_raise_clear_errors(start, end, message) -> None:
    mk, kp, _ = world("five_channels")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        M.overview(mk, kp, start, end)


def test_unknown_channel_and_granularity() -> None:
    mk, _, truth = world("three_channels")
    d = truth["dates"]
    with pytest.raises(LookupError, match="unknown channel 'Radio'; the data has: Search, Social, Display"):
        M.channel_performance(mk, "Radio", d[0], d[10])
    with pytest.raises(ValueError, match="granularity 'hour' is not one of"):
        M.channel_performance(mk, "Search", d[0], d[10], "hour")


def test_insights_report_the_channel_whose_spend_grew_most_year_over_year() -> None:
    mk, kp, truth = world("five_channels")
    d = truth["dates"]
    mk = mk.copy()
    tiktok_now = (mk["channel"] == "TikTok") & (mk["date"] >= d[-90])
    mk.loc[tiktok_now, ["spend", "revenue"]] *= 2.5
    ins = {i["title"]: i for i in M.quick_insights(mk, kp, d[-90], d[-1])}
    text = ins["Biggest spend change year over year"]["text"]
    assert re.match(r"TikTok spend up 1[45]\d% year over year \(\$\d+K → \$\d+K\)", text), text


def test_channels_absent_from_a_range_and_missing_values_are_handled() -> None:
    mk, kp, truth = world("three_channels")
    d = truth["dates"]
    mk = mk[~((mk["channel"] == "Display") & (mk["date"] < d[200]))].copy()  # Display launches on day 200
    mk.loc[mk.index[:5], "clicks"] = np.nan
    mk = mk.drop(columns=["new_customers"])
    early = M.channel_breakdown(mk, d[0], d[99])
    assert [r["channel"] for r in early] == ["Search", "Social"]
    ser = M.channel_series(mk, kp, d[150], d[249], "week")
    assert set(ser["spend"]) == {"Search", "Social", "Display"}
    assert sum(ser["spend"]["Display"]) == pytest.approx(mk.loc[(mk["channel"] == "Display") &
                                                                (mk["date"] <= d[249]), "spend"].sum())
    t = M.overview_totals(mk, None, d[0], d[-1])
    assert t["new_customers"] is None and t["spend"] == pytest.approx(mk["spend"].sum())
    assert M.channel_performance(mk, "Search", d[0], d[9])["totals"]["clicks"] == pytest.approx(
        mk[(mk["channel"] == "Search") & (mk["date"] <= d[9])]["clicks"].sum())


def test_possessive_in_the_spend_mix_insight() -> None:
    mk, kp, truth = world("five_channels")
    d = truth["dates"]
    mk = mk.copy()
    mk.loc[(mk["channel"] == "Google Ads") & (mk["date"] >= d[-60]), ["spend", "revenue"]] *= 2
    ins = {i["title"]: i["text"] for i in M.quick_insights(mk, kp, d[-60], d[-1])}
    assert ins["Largest shift in spend mix"].startswith("Google Ads' share of spend grew")
