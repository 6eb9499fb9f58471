"""GET /api/metrics/overview through the app with a tmp store and a published dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from functions.datasets import publish_dataset
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS

CHANNELS = {"Google Ads": (6000, 3.0), "Meta Ads": (3500, 2.5), "Email": (500, 8.0), "TikTok": (2000, 4.0)}


def small_dataset(days: int = 400, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Daily marketing (constant spend per channel ± 5%) and kpis (business revenue) for ``days`` days."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    frames = []
    for ch, (spend, roas) in CHANNELS.items():
        s = spend * (1 + 0.05 * rng.standard_normal(days))
        frames.append(pd.DataFrame({"date": dates, "channel": ch, "spend": s, "impressions": s * 80,
                                    "clicks": s / 1.2, "conversions": s / 45, "revenue": s * roas,
                                    "new_customers": s / 90, "returning_customers": s / 120}))
    kpis = pd.DataFrame({"date": dates, "revenue": 25000 + 800 * rng.standard_normal(days),
                         "orders": rng.integers(200, 300, days), "new_customers": rng.integers(50, 100, days)})
    return {"marketing": pd.concat(frames, ignore_index=True), "kpis": kpis}


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    from functions import deps
    from functions.app import create_app

    deps._store.cache_clear()
    tables = small_dataset()
    publish_dataset(LocalStore(tmp_path), "default", tables)
    with TestClient(create_app(), headers=AUTH_HEADERS) as c:
        c.tables = tables
        yield c
    deps._store.cache_clear()


def test_overview_defaults_to_last_90_days_with_business_revenue(client) -> None:
    r = client.get("/api/metrics/overview")
    assert r.status_code == 200, r.text
    body = r.json()
    mk, kp = client.tables["marketing"], client.tables["kpis"]
    end = mk["date"].max()
    start = end - pd.Timedelta(days=89)
    assert (body["start_date"], body["end_date"]) == (start.date().isoformat(), end.date().isoformat())
    in_m = mk[(mk["date"] >= start) & (mk["date"] <= end)]
    in_k = kp[(kp["date"] >= start) & (kp["date"] <= end)]
    assert body["totals"]["spend"] == pytest.approx(in_m["spend"].sum())
    assert body["totals"]["revenue"] == pytest.approx(in_k["revenue"].sum())
    assert body["totals"]["roas"] == pytest.approx(in_k["revenue"].sum() / in_m["spend"].sum())
    assert body["previous"]["end_date"] == (start - pd.Timedelta(days=1)).date().isoformat()
    assert {c["channel"] for c in body["channels"]} == set(CHANNELS)
    assert body["series"]["granularity"] == "day" and len(body["series"]["dates"]) == 90
    assert set(body["series"]["spend"]) == set(CHANNELS) and len(body["series"]["total_revenue"]) == 90
    assert body["insights"] and all(i["title"] and i["text"] for i in body["insights"])
    assert "Email" in body["insights"][0]["text"]  # highest planted platform ROAS


def test_overview_explicit_range_change_and_aggregation(client) -> None:
    r = client.get("/api/metrics/overview", params={"start_date": "2024-03-01", "end_date": "2025-01-31"})
    body = r.json()
    assert r.status_code == 200 and body["series"]["granularity"] == "week"
    assert len(body["series"]["dates"]) <= 50  # 337 days, never raw daily rows
    prev = client.get("/api/metrics/overview", params={"start_date": body["previous"]["start_date"],
                                                       "end_date": body["previous"]["end_date"]}).json()
    spend_now, spend_prev = body["totals"]["spend"], prev["totals"]["spend"]
    assert body["change"]["spend"]["abs"] == pytest.approx(spend_now - spend_prev)
    assert body["previous"]["available"] is False or body["change"]["spend"]["pct"] == pytest.approx(
        (spend_now - spend_prev) / spend_prev)
    monthly = client.get("/api/metrics/overview", params={"start_date": "2024-01-01", "granularity": "month"}).json()
    assert monthly["series"]["granularity"] == "month" and len(monthly["series"]["dates"]) == 14


@pytest.mark.parametrize("params,status,message", [
    ({"start_date": "2024-02-30"}, 400, "start_date '2024-02-30' is not a valid date"),
    ({"start_date": "2024-05-01", "end_date": "2024-04-01"}, 400, "end_date 2024-04-01 is before start_date"),
    ({"start_date": "2031-01-01", "end_date": "2031-02-01"}, 400, "no data between 2031-01-01 and 2031-02-01"),
    ({"granularity": "hour"}, 400, "granularity 'hour' is not one of"),
])
def test_overview_rejects_bad_input_with_a_message(client, params, status, message) -> None:
    r = client.get("/api/metrics/overview", params=params)
    assert r.status_code == status and message in r.json()["detail"]


def test_overview_without_data_is_404(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    from functions import deps
    from functions.app import create_app

    deps._store.cache_clear()
    try:
        r = TestClient(create_app(), headers=AUTH_HEADERS).get("/api/metrics/overview")
        assert r.status_code == 404 and "no data yet" in r.json()["detail"]
    finally:
        deps._store.cache_clear()


def test_new_import_is_not_served_from_the_cache(client, tmp_path) -> None:
    first = client.get("/api/metrics/overview").json()["totals"]["spend"]
    tables = small_dataset()
    tables["marketing"] = tables["marketing"].assign(spend=tables["marketing"]["spend"] * 2)
    publish_dataset(LocalStore(tmp_path), "default", tables)
    second = client.get("/api/metrics/overview").json()["totals"]["spend"]
    assert second == pytest.approx(2 * first)


def test_openapi_documents_the_route(client) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/metrics/overview"]["get"]
    assert {p["name"] for p in op["parameters"]} >= {"start_date", "end_date", "granularity"}
    assert "Overview" in spec["components"]["schemas"]
