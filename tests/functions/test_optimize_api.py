"""POST /api/optimize and /api/simulate against a stored model artifact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from functions.datasets import publish_dataset
from functions.mmm_service import model_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS
from tests.core.mmm.test_forecast import world
from tests.core.mmm.test_plan import WORLD_1, make_artifact


def long_tables(df: pd.DataFrame, channels: list[str]) -> dict[str, pd.DataFrame]:
    marketing = df.melt(id_vars="date", value_vars=channels, var_name="channel", value_name="spend")
    for col in ("impressions", "clicks", "conversions", "new_customers", "returning_customers"):
        marketing[col] = 0
    marketing["revenue"] = marketing["spend"] * 2.0
    kpis = pd.DataFrame({"date": df["date"], "revenue": df["revenue"], "orders": 0, "new_customers": 0})
    return {"marketing": marketing, "kpis": kpis}


@pytest.fixture()
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions.deps import _store

    _store.cache_clear()
    store = LocalStore(tmp_path)
    df, ef = world(days=120)
    dates = df["date"]
    for name, s in WORLD_1.items():  # spend around the artifact's current spend; Email a flat monthly fee
        df[name] = s["current"] if name == "Email" else s["current"] * np.exp(
            np.random.default_rng(1).normal(0, 0.2, len(dates)))
    tables = long_tables(df, list(WORLD_1))
    tables["external_factors"] = ef
    version = publish_dataset(store, "default", tables)
    store.write_json(model_key("default", version), make_artifact(WORLD_1))
    from functions.app import create_app

    yield TestClient(create_app(), headers=AUTH_HEADERS)
    _store.cache_clear()


def test_default_plan_at_current_budget(client) -> None:
    r = client.post("/api/optimize", json={})
    assert r.status_code == 200, r.text
    plan = r.json()
    total = sum(s["current"] for s in WORLD_1.values())
    assert plan["budget"] == pytest.approx(total)
    assert sum(plan["allocation"].values()) <= total + 1e-6
    rows = {r["channel"]: r for r in plan["channels"]}
    assert set(rows) == set(WORLD_1)
    assert rows["Google Ads"]["arrow"] == "↓" and rows["TikTok"]["arrow"] == "↑"  # the planted imbalance
    assert rows["Email"]["fixed_cost"] and rows["Email"]["arrow"] == "→"
    for key in ("marginal_roas_before", "marginal_roas_after", "current", "optimized", "change"):
        assert key in rows["Google Ads"]
    p = plan["projection"]
    assert p["lift_per_year"] == pytest.approx(p["lift_per_day"] * 365)
    assert p["lift_per_year_low"] <= p["lift_per_year"] <= p["lift_per_year_high"]
    assert p["lift_per_day"] > 0
    assert any("Risk-aware" in n for n in plan["notes"])


def test_constraints_and_periods(client) -> None:
    r = client.post("/api/optimize", json={"budget": 400_000, "period": "month", "max_change": 0.2,
                                           "locked": ["Meta Ads"], "min": {"Affiliate": 800}})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["budget"] == pytest.approx(400_000 / (365 / 12))
    a = plan["allocation"]
    assert a["Meta Ads"] == pytest.approx(3500) and a["Affiliate"] >= 800 - 1e-6
    for row in plan["channels"]:
        assert abs(row["optimized"] - row["current"]) <= 0.2 * row["current"] + 1e-6
    assert plan["projection"]["lift_per_period"] == pytest.approx(plan["projection"]["lift_per_day"] * 365 / 12)
    assert any("maximum change" in n for n in plan["notes"])


def test_other_goals(client) -> None:
    prof = client.post("/api/optimize", json={"goal": "max_profit", "margin": 0.6}).json()
    assert prof["goal"] == "max_profit" and prof["projection"]["revenue"] > 0
    m = client.post("/api/optimize", json={"goal": "target_mroas", "target_mroas": 2.0}).json()
    assert m["total_optimized"] < prof["total_optimized"]  # a higher bar spends less than the 1/0.6 bar
    r = client.post("/api/optimize", json={"goal": "min_budget", "target_revenue": 2.5e7, "period": "year"})
    assert r.status_code == 200, r.text
    assert r.json()["projection"]["total_revenue_per_day"] * 365 >= 2.5e7 * 0.999


@pytest.mark.parametrize("body,status,msg", [
    ({"daily_budget": 1000, "min": {"Google Ads": 900, "TikTok": 900}}, 400, "below the sum"),
    ({"locked": ["Radio"]}, 400, "unknown channel"),
    ({"min": {"TikTok": 5000}, "max": {"TikTok": 100}}, 400, "infeasible"),
    ({"daily_budget": -3}, 422, "greater than 0"),
    ({"goal": "fame"}, 422, "max_revenue"),
    ({"goal": "min_budget"}, 400, "target_revenue"),
    ({"daily_budget": 100, "budget": 100}, 422, "not both"),
    ({"min": {"TikTok": -5}}, 422, "non-negative"),
])
def test_degenerate_input(client, body, status, msg) -> None:
    r = client.post("/api/optimize", json=body)
    assert r.status_code == status, r.text
    assert msg in r.text


def test_simulate(client) -> None:
    cur = client.post("/api/simulate", json={"allocation": {}}).json()
    assert cur["lift"]["per_day"] == pytest.approx(0.0, abs=1e-9)
    r = client.post("/api/simulate", json={"allocation": {"Google Ads": 4200, "TikTok": 4000}})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["lift"]["per_day"] > 0 and s["lift"]["per_year"] == pytest.approx(s["lift"]["per_day"] * 365)
    assert s["revenue"]["low"] <= s["revenue"]["mean"] <= s["revenue"]["high"]
    rows = {c["channel"]: c for c in s["channels"]}
    assert rows["TikTok"]["spend"] == 4000 and rows["TikTok"]["current_spend"] == 2000
    assert rows["TikTok"]["revenue"] > rows["TikTok"]["current_revenue"]
    plan = client.post("/api/optimize", json={}).json()
    same = client.post("/api/simulate", json={"allocation": plan["allocation"]}).json()
    assert same["lift"]["per_year"] == pytest.approx(plan["projection"]["lift_per_year"], rel=1e-9)
    bad = client.post("/api/simulate", json={"allocation": {"Radio": 1}})
    assert bad.status_code == 400 and "unknown channel" in bad.text
    assert client.post("/api/simulate", json={"allocation": {"TikTok": -1}}).status_code == 422


def test_no_model_yet(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions.deps import _store

    _store.cache_clear()
    from functions.app import create_app

    c = TestClient(create_app(), headers=AUTH_HEADERS)
    r = c.post("/api/simulate", json={"allocation": {}})
    assert r.status_code == 404 and "import" in r.json()["detail"]
    df, _ = world(days=60)
    publish_dataset(LocalStore(tmp_path), "default", long_tables(df, ["Search", "Social", "Email"]))
    r = c.post("/api/optimize", json={})
    assert r.status_code == 404 and "no model" in r.json()["detail"]
    _store.cache_clear()


@pytest.mark.parametrize("path,body", [
    ("/api/simulate", '{"allocation": {"TikTok": 1e308}}'),
    ("/api/simulate", '{"allocation": {"TikTok": 2e12, "Google Ads": 100}}'),
    ("/api/optimize", '{"daily_budget": 1e308}'),
    ("/api/optimize", '{"budget": 1e300, "period": "year"}'),
    ("/api/optimize", '{"max": {"TikTok": 1e308}}'),
    ("/api/optimize", '{"min": {"TikTok": 1e13}}'),
    ("/api/optimize", '{"goal": "min_budget", "target_revenue": 1e308}'),
    ("/api/optimize", '{"goal": "target_mroas", "target_mroas": 1e308}'),
])
def test_amounts_must_be_bounded(client, path, body) -> None:
    """Overflowing amounts are refused (a spend of 1e308 once came back with a mean outside its own interval)."""
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "less than or equal" in r.text


@pytest.mark.parametrize("body", ['{"allocation": {"TikTok": Infinity}}', '{"allocation": {"TikTok": NaN}}'])
def test_non_finite_amounts_refused(client, body) -> None:
    """JSON's non-standard Infinity and NaN never reach the model."""
    r = client.post("/api/simulate", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert "finite" in r.text


def test_simulate_at_the_bound(client) -> None:
    """The largest daily amount accepted still gives a mean inside its own interval."""
    from functions.mmm_schemas import MAX_DAILY_AMOUNT

    r = client.post("/api/simulate", json={"allocation": {"TikTok": MAX_DAILY_AMOUNT}})
    assert r.status_code == 200, r.text
    s = r.json()
    for block in (s["revenue"], s["current_revenue"]):
        assert block["low"] <= block["mean"] <= block["high"]
    assert s["lift"]["per_day_low"] <= s["lift"]["per_day"] <= s["lift"]["per_day_high"]
    for row in s["channels"]:
        assert row["revenue_low"] <= row["revenue"] <= row["revenue_high"]
        assert row["lift_low"] <= row["lift"] <= row["lift_high"]
