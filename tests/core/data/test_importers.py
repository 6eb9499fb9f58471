"""Importers: recognise files by their columns, build canonical tables, list every problem with where it is."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.data.importers import ImportOptions, build_dataset, infer_granularity, read_frame
from core.data.schemas import ImportRejected, detect_kind, is_spend_column, normalise_column, spend_column_channel


def _frames(**csvs: str) -> list[tuple[str, pd.DataFrame]]:
    return [(f"{name}.csv", read_frame(f"{name}.csv", text.encode())) for name, text in csvs.items()]


def _long(days: int = 10, channels=("Google Ads", "Meta Ads"), start: str = "2025-01-01", freq: str = "D") -> str:
    rows = ["date,channel,spend,impressions,clicks,conversions,revenue"]
    for i, d in enumerate(pd.date_range(start, periods=days, freq=freq)):
        for j, ch in enumerate(channels):
            rows.append(f"{d.date()},{ch},{100 + 10 * i + j},{1000 + i},{50 + i},{5 + j},{300 + 7 * i}")
    return "\n".join(rows) + "\n"


def _kpis(days: int = 10, start: str = "2025-01-01", freq: str = "D") -> str:
    rows = ["date,revenue,orders"]
    for i, d in enumerate(pd.date_range(start, periods=days, freq=freq)):
        rows.append(f"{d.date()},{5000 + 50 * i},{60 + i}")
    return "\n".join(rows) + "\n"


def _reject(files, options=None) -> list[dict]:
    with pytest.raises(ImportRejected) as e:
        build_dataset(files, options)
    return [p.as_dict() for p in e.value.problems]


def _has(problems, file, row, column, text):
    return any(p["file"] == file and p["row"] == row and p["column"] == column and text in p["problem"]
               for p in problems)


def test_schema_helpers():
    assert normalise_column(" Amount Spent (USD) ") == "amount_spent_usd"
    assert is_spend_column("google_spend") and is_spend_column("spend_meta") and is_spend_column("TV Cost")
    assert not is_spend_column("revenue") and not is_spend_column("spending_power_index_x")
    assert spend_column_channel("google_spend") == "Google Ads"
    assert spend_column_channel("spend_radio") == "Radio"
    assert spend_column_channel("out_of_home_cost") == "Out of Home"
    assert detect_kind(["date", "channel", "spend"]) == "marketing"
    assert detect_kind(["date", "revenue", "orders"]) == "kpis"
    assert detect_kind(["date", "revenue", "google_spend"]) == "wide"
    assert detect_kind(["channel", "campaign_name", "start_date"]) == "campaigns"
    assert detect_kind(["date", "factor_type", "factor_name"]) == "external_factors"
    assert detect_kind(["journey_id", "timestamp", "channel", "converted", "revenue"]) == "journeys"
    assert detect_kind(["foo", "bar"]) is None
    assert infer_granularity(pd.Series(pd.date_range("2025-01-06", periods=5, freq="W-MON"))) == "week"


def test_long_with_kpis():
    r = build_dataset(_frames(m=_long(), k=_kpis()))
    assert r.granularity == "day" and r.channels == ["Google Ads", "Meta Ads"]
    m, k = r.tables["marketing"], r.tables["kpis"]
    assert len(m) == 20 and len(k) == 10 and m["spend"].dtype == float
    assert list(m.columns) == ["date", "channel", "spend", "impressions", "clicks", "conversions", "revenue",
                               "new_customers", "returning_customers"]
    assert m["new_customers"].isna().all() and k["revenue"].iloc[0] == 5000
    assert r.warnings == [] and r.kinds == {"m.csv": "marketing", "k.csv": "kpis"}
    assert pd.api.types.is_datetime64_any_dtype(m["date"])


def test_long_without_kpis_sums_platform_revenue_with_warning():
    r = build_dataset(_frames(m=_long(days=3)))
    k = r.tables["kpis"].set_index("date")["revenue"]
    assert k.iloc[0] == 600 and k.iloc[2] == 628
    assert any("platforms' reported revenue" in w for w in r.warnings)


def test_every_problem_listed_with_row_and_column():
    text = _long(days=5)
    lines = text.splitlines()
    lines[2] = "2025-01-01,Meta Ads,-5,1000,50,5,300"  # row 3: negative spend
    lines[3] = "2025-13-45,Google Ads,120,1001,51,5,307"  # row 4: bad date
    lines[4] = "2025-01-02,Meta Ads,abc,1001,51,6,307"  # row 5: non-numeric spend
    lines.append("2025-01-05,Meta Ads,1,1,1,1,1")  # row 12: duplicate (date, channel)
    probs = _reject(_frames(m="\n".join(lines) + "\n"))
    assert _has(probs, "m.csv", 3, "spend", "negative")
    assert _has(probs, "m.csv", 4, "date", "'2025-13-45' is not a date")
    assert _has(probs, "m.csv", 5, "spend", "'abc' is not a number")
    assert _has(probs, "m.csv", 12, "channel", "duplicate date/channel (2025-01-05, Meta Ads); first seen on row 11")
    assert len(probs) == 4


def test_gap_in_dates():
    text = "\n".join(line for line in _long(days=8).splitlines() if not line.startswith(("2025-01-04", "2025-01-05")))
    probs = _reject(_frames(m=text + "\n"))
    assert any("nothing between 2025-01-03 and 2025-01-06 (2 days missing)" in p["problem"] for p in probs)


def test_weekly_gap_and_mixed_granularity():
    text = _long(days=6, start="2025-01-06", freq="W-MON")
    gap = "\n".join(line for line in text.splitlines() if not line.startswith("2025-01-20"))
    probs = _reject(_frames(m=gap + "\n"))
    assert any("1 week missing" in p["problem"] for p in probs)
    probs = _reject(_frames(m=text, k=_kpis(days=40, start="2025-01-06")))
    assert _has(probs, "k.csv", None, "date", "dates are daily but the marketing data is weekly")


def test_missing_and_unknown_columns():
    probs = _reject(_frames(m="date,channel,cost_center,spend\n2025-01-01,A,x,1\n2025-01-02,A,y,2\n"))
    assert _has(probs, "m.csv", None, "cost_center", "unknown column for marketing data")
    probs = _reject(_frames(c="channel,campaign_name\nA,x\n", m=_long(days=3, channels=("A",))))
    assert _has(probs, "c.csv", None, "start_date", "required column is missing for campaigns")
    probs = _reject(_frames(x="foo,bar\n1,2\n"))
    assert _has(probs, "x.csv", None, None, "cannot tell what this file holds")


def test_empty_file():
    with pytest.raises(ImportRejected, match="empty"):
        read_frame("e.csv", b"")
    probs = _reject(_frames(m="date,channel,spend\n"))
    assert _has(probs, "m.csv", None, None, "empty")


def test_unknown_channel_in_campaigns():
    camp = "campaign_id,channel,campaign_name,start_date,end_date,daily_budget\n" \
           "C1,Google Ads,Search,2025-01-01,2025-01-05,100\nC2,Radio,Morning,2025-01-01,2025-01-03,50\n" \
           "C3,Meta Ads,Bad,2025-01-05,2025-01-01,20\n"
    probs = _reject(_frames(m=_long(), c=camp))
    assert _has(probs, "c.csv", 3, "channel", "channel 'Radio' has no marketing data")
    assert _has(probs, "c.csv", 4, "end_date", "end_date is before start_date")
    assert len(probs) == 2


def test_wide_with_controls_and_named_roles():
    dates = pd.date_range("2024-01-01", periods=12, freq="W-MON")
    df = pd.DataFrame({"Week": dates.strftime("%Y-%m-%d"), "sales": np.arange(12) * 100 + 5000,
                       "google_spend": 100.0, "spend_meta": 50.0, "tv_cost": 0.0, "price_index": 1.0,
                       "competitor_promo": [0, 1] * 6})
    r = build_dataset([("w.csv", read_frame("w.csv", df.to_csv(index=False).encode()))],
                      ImportOptions(kpi_col="sales", control_cols=["price_index", "competitor_promo"]))
    assert r.granularity == "week" and r.channels == ["Google Ads", "Meta Ads", "TV"]
    m = r.tables["marketing"]
    assert len(m) == 36 and (m.loc[m["channel"] == "Google Ads", "spend"] == 100).all()
    assert m["impressions"].isna().all()
    assert list(r.tables["controls"].columns) == ["date", "price_index", "competitor_promo"]
    assert r.tables["kpis"]["revenue"].iloc[-1] == 6100

    # explicit spend columns, and an unnamed extra numeric column becomes a control (with a warning)
    df2 = df.rename(columns={"Week": "date", "sales": "revenue", "google_spend": "search"})
    r2 = build_dataset([("w.csv", read_frame("w.csv", df2.to_csv(index=False).encode()))],
                       ImportOptions(spend_cols=["search", "spend_meta", "tv_cost"]))
    assert "Search" in r2.channels and "price_index" in r2.tables["controls"].columns
    assert any("control variables" in w for w in r2.warnings)


def test_wide_problems():
    text = "date,revenue,google_spend,notes\n2025-01-01,100,5,ok\n2025-01-02,x,-1,fine\n2025-01-02,3,4,dup\n"
    probs = _reject(_frames(w=text))
    assert _has(probs, "w.csv", 3, "revenue", "'x' is not a number")
    assert _has(probs, "w.csv", 3, "google_spend", "negative")
    assert _has(probs, "w.csv", 4, "date", "duplicate date")
    assert _has(probs, "w.csv", None, "notes", "not numeric")
    probs = _reject(_frames(w="date,revenue,google_spend\n2025-01-01,1,1\n"), ImportOptions(kpi_col="sales"))
    assert _has(probs, "w.csv", None, "sales", "KPI column not found")


def test_brief_style_external_factors_and_aliases():
    ext = "date,is_holiday,holiday_name,competitor_activity,seasonality_index\n" \
          "2025-01-01,true,New Year,,1.2\n2025-01-02,false,,Rival sale,1.0\n"
    m = _long(days=3).replace("date,channel,spend", "Day,Source,Cost")
    r = build_dataset(_frames(m=m, e=ext))
    e = r.tables["external_factors"]
    assert list(e["factor_type"]) == ["holiday", "competitor"] and e["impact_multiplier"].iloc[0] == 1.2
    assert r.kinds["m.csv"] == "marketing" and len(r.tables["marketing"]) == 6


def test_channel_missing_some_dates_is_filled_with_zero():
    text = _long(days=5)
    lines = [x for x in text.splitlines() if not x.startswith("2025-01-03,Meta Ads")]
    r = build_dataset(_frames(m="\n".join(lines) + "\n", k=_kpis(days=5)))
    m = r.tables["marketing"]
    row = m[(m["channel"] == "Meta Ads") & (m["date"] == "2025-01-03")]
    assert len(row) == 1 and row["spend"].iloc[0] == 0
    assert any("filled with zero spend: Meta Ads (1)" in w for w in r.warnings)


def test_parquet_and_duplicate_across_files():
    df = pd.read_csv(io.StringIO(_long(days=4)))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    r = build_dataset([("m.parquet", read_frame("m.parquet", buf.getvalue()))])
    assert len(r.tables["marketing"]) == 8
    probs = _reject(_frames(a=_long(days=4), b=_long(days=4)))
    assert any("duplicate date/channel row(s) across files" in p["problem"] for p in probs)


def test_journeys_validated_when_attribution_present():
    good = "journey_id,timestamp,channel,converted,revenue\nj1,2025-01-01 10:00,Google Ads,0,0\n" \
           "j1,2025-01-02 09:00,Meta Ads,1,80\n"
    r = build_dataset(_frames(m=_long(days=3), j=good))
    assert len(r.tables["journeys"]) == 2 and r.kinds["j.csv"] == "journeys"
    bad = good + "j2,not a time,Email,1,10\n"
    probs = _reject(_frames(m=_long(days=3), j=bad))
    assert _has(probs, "j.csv", 4, "timestamp", "not a date")


def test_techstyle_round_trip(tmp_path):
    from core.demo.techstyle import TechStyleParams, generate_techstyle

    data = generate_techstyle(TechStyleParams(days=120), seed=5)
    files = []
    for name, df in (("daily_marketing_data.csv", data.marketing), ("daily_kpis.csv", data.kpis),
                     ("campaigns.csv", data.campaigns), ("external_factors.csv", data.external_factors)):
        files.append((name, read_frame(name, df.to_csv(index=False).encode())))
    r = build_dataset(files)
    assert r.warnings == []
    pd.testing.assert_series_equal(r.tables["kpis"]["revenue"], data.kpis["revenue"], check_names=False)
    assert r.tables["marketing"]["spend"].sum() == pytest.approx(data.marketing["spend"].sum())
    assert len(r.tables["campaigns"]) == len(data.campaigns)


def test_lift_tests_are_recognised_and_every_bad_row_listed():
    good = "channel,start,end,spend_change,lift,se\nGoogle Ads,2025-01-02,2025-01-08,-100,-2500,400\n"
    res = build_dataset(_frames(m=_long(), k=_kpis(), lt=good))
    t = res.tables["lift_tests"]
    assert detect_kind(["channel", "start", "end", "spend_change", "lift", "se"]) == "lift_tests"
    assert list(t["channel"]) == ["Google Ads"] and t["spend_change"].iloc[0] == -100 and t["se"].iloc[0] == 400
    bad = ("channel,start,end,spend_change,lift,se\nRadio,2025-01-02,2025-01-08,50,900,100\n"
           "Meta Ads,2025-01-08,2025-01-02,50,900,100\nMeta Ads,2025-01-02,2025-01-08,0,900,100\n"
           "Meta Ads,2025-01-02,2025-01-08,50,900,0\n")
    probs = _reject(_frames(m=_long(), k=_kpis(), lt=bad))
    assert _has(probs, "lt.csv", 2, "channel", "channel 'Radio' has no marketing data")
    assert _has(probs, "lt.csv", 3, "end_date", "end_date is before start_date")
    assert _has(probs, "lt.csv", 4, "spend_change", "a test must change the spend")
    assert _has(probs, "lt.csv", 5, "se", "se must be > 0")
