"""GET /api/channels and /api/channels/{channel}/performance, with and without a fitted model artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from functions.datasets import publish_dataset, result_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS

CHANNELS = {"Search": (1500, 3.5), "Social": (900, 1.8), "Video": (400, 2.2)}
BEST_WEEKDAY = 4  # Friday


def dataset(days: int = 420, seed: int = 11) -> dict[str, pd.DataFrame]:
    """Three channels with a planted Friday lift on platform revenue."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-02-01", periods=days, freq="D")
    lift = np.where(dates.day_of_week == BEST_WEEKDAY, 1.4, 1.0)
    frames = []
    for ch, (spend, roas) in CHANNELS.items():
        s = spend * (1 + 0.05 * rng.standard_normal(days))
        frames.append(pd.DataFrame({"date": dates, "channel": ch, "spend": s, "impressions": s * 70,
                                    "clicks": s / 0.8, "conversions": s / 30, "revenue": s * roas * lift,
                                    "new_customers": s / 90, "returning_customers": s / 120}))
    kpis = pd.DataFrame({"date": dates, "revenue": 9000 + 300 * rng.standard_normal(days), "orders": 100,
                         "new_customers": 40})
    return {"marketing": pd.concat(frames, ignore_index=True), "kpis": kpis}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    from functions import deps
    from functions.app import create_app

    deps._store.cache_clear()
    store = LocalStore(tmp_path)
    tables = dataset()
    version = publish_dataset(store, "default", tables)
    with TestClient(create_app(), headers=AUTH_HEADERS) as c:
        yield c, store, version, tables
    deps._store.cache_clear()


def test_channel_list_covers_all_data_by_default(env) -> None:
    c, _, _, tables = env
    body = c.get("/api/channels").json()
    mk = tables["marketing"]
    assert [x["channel"] for x in body["channels"]] == ["Search", "Social", "Video"]  # by spend
    assert body["start_date"] == mk["date"].min().date().isoformat() == body["data_start"]
    search = body["channels"][0]
    assert search["spend"] == pytest.approx(mk.loc[mk["channel"] == "Search", "spend"].sum())
    assert sum(x["share_of_spend"] for x in body["channels"]) == pytest.approx(1.0)


def test_performance_series_metrics_and_best_periods(env) -> None:
    c, _, _, tables = env
    r = c.get("/api/channels/Search/performance", params={"start_date": "2024-03-04", "end_date": "2024-06-30"})
    assert r.status_code == 200, r.text
    body = r.json()
    s = body["series"]
    assert s["granularity"] == "day" and len(s["dates"]) == 119
    assert s["cpc"][0] == pytest.approx(0.8) and s["cpa"][0] == pytest.approx(30.0)
    assert s["conversion_rate"][0] == pytest.approx(0.8 / 30)
    mk = tables["marketing"]
    sel = mk[(mk["channel"] == "Search") & (mk["date"] >= "2024-03-04") & (mk["date"] <= "2024-06-30")]
    assert body["totals"]["spend"] == pytest.approx(sel["spend"].sum())
    assert body["totals"]["platform_roas"] == pytest.approx(sel["revenue"].sum() / sel["spend"].sum())
    assert body["best_weekdays"][0]["label"] == "Friday" and len(body["best_weekdays"]) == 7
    assert len(body["best_months"]) == 12 and body["best_months"][0]["rank"] == 1
    assert body["model"] is None  # no model fitted yet


def test_performance_long_range_is_aggregated(env) -> None:
    c, *_ = env
    body = c.get("/api/channels/Video/performance", params={"start_date": "2024-02-01"}).json()
    assert body["series"]["granularity"] == "week" and len(body["series"]["dates"]) <= 62
    monthly = c.get("/api/channels/Video/performance", params={"start_date": "2024-02-01",
                                                                "granularity": "month"}).json()
    assert len(monthly["series"]["dates"]) == 14
    assert sum(monthly["series"]["spend"]) == pytest.approx(sum(body["series"]["spend"]))


@pytest.mark.parametrize("path,params,status,message", [
    ("/api/channels/Radio/performance", {}, 404, "unknown channel 'Radio'; the data has: Search, Social, Video"),
    ("/api/channels/Search/performance", {"end_date": "03/05/2024"}, 400, "end_date '03/05/2024' is not a valid"),
    ("/api/channels/Search/performance", {"start_date": "2024-06-01", "end_date": "2024-05-01"}, 400,
     "is before start_date"),
    ("/api/channels/Search/performance", {"granularity": "quarter"}, 400, "granularity 'quarter'"),
    ("/api/channels", {"start_date": "2020-01-01", "end_date": "2020-02-01"}, 400, "no data between"),
])
def test_bad_requests_say_what_is_wrong(env, path, params, status, message) -> None:
    c, *_ = env
    r = c.get(path, params=params)
    assert r.status_code == status and message in r.json()["detail"]


def test_performance_includes_the_model_view_once_an_artifact_exists(env) -> None:
    c, store, version, _ = env
    grid = [0.0, 500.0, 1000.0, 2000.0, 4000.0]
    artifact = {
        "version": 1, "kpi": "revenue", "granularity": "day", "start": "2024-02-01", "end": "2025-03-26",
        "target_roas": 1.0,
        "channels": {"Search": {
            "spend_total": 630000.0, "contribution": 1.2e6, "contribution_interval": [1.0e6, 1.4e6], "share": 0.3,
            "roas": {"mean": 1.9, "low": 1.6, "high": 2.2}, "marginal_roas": 0.7, "marginal_roas_interval": [0.5, 0.9],
            "current_daily_spend": 1510.0, "optimal_daily_spend": 1100.0, "optimal_daily_spend_interval": [900, 1300],
            "opportunity_per_day": 120.0, "adstock": {"type": "geometric", "decay": 0.3},
            "saturation": {"type": "hill", "half": 1000.0, "shape": 1.1},
            "params_draws": {"beta": [1.0], "half": [1000.0], "shape": [1.1], "decay": [0.3]},
            "curve": {"spend": grid, "mean": [0, 900, 1500, 2300, 3000], "low": [0, 800, 1300, 2000, 2600],
                      "high": [0, 1000, 1700, 2600, 3400]},
            "seasonality": {"month": {str(m): 1.0 for m in range(1, 13)},
                            "weekday": {str(d): 1.0 for d in range(7)}},
            "platform_roas": 3.5}},
        "baseline": {"total": 1.0, "share": 0.5},
    }
    store.write_json(result_key("default", version, "mmm", "model.json"), artifact)
    body = c.get("/api/channels/Search/performance").json()
    m = body["model"]
    assert m["roas"] == {"mean": 1.9, "low": 1.6, "high": 2.2}
    assert m["current_daily_spend"] == 1510.0 and m["optimal_daily_spend"] == 1100.0
    assert m["opportunity_per_day"] == 120.0 and m["curve"]["spend"] == grid and m["curve"]["high"][-1] == 3400
    assert m["seasonality"]["month"]["12"] == 1.0 and m["model_end"] == "2025-03-26"
    assert "params_draws" not in m
    # a channel the model does not know gets no model section
    assert c.get("/api/channels/Social/performance").json()["model"] is None
