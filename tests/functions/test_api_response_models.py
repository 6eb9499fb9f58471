"""Response models of POST /api/optimize, POST /api/simulate and GET/POST /api/forecast.

The JSON of each route must parse into its model, must equal what the core function returns (a response model that
forgot a field would silently drop it), must carry every key the dashboard reads, and the OpenAPI schema must name
the models.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.mmm.forecast import forecast_revenue
from core.mmm.plan import PERIOD_DAYS, make_plan, simulate
from functions.datasets import load_dataset, publish_dataset
from functions.mmm_service import loaded_model, model_key, wide_from_dataset
from functions.routers.forecast import Backtest, BacktestUnavailable, ForecastResponse
from functions.routers.optimize import OptimizeResponse, SimulateResponse
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS
from tests.core.mmm.test_forecast import SPECS, world
from tests.core.mmm.test_plan import WORLD_1, make_artifact
from tests.functions.test_optimize_api import long_tables

# keys the dashboard reads (dashboard/pages/optimizer.py, dashboard/pages/forecast.py)
DASHBOARD_PLAN = {"current", "channels", "total_current", "allocation", "projection", "total_optimized", "notes"}
DASHBOARD_PLAN_ROW = {"channel", "fixed_cost", "locked", "arrow", "current", "optimized", "change",
                      "marginal_roas_before", "marginal_roas_after"}
DASHBOARD_PROJECTION = {"lift_per_year", "lift_per_day", "lift_per_year_low", "lift_per_year_high"}
DASHBOARD_SIM_LIFT = {"per_day", "per_year", "per_day_low", "per_day_high", "per_year_low", "per_year_high",
                      "prob_positive"}
DASHBOARD_FORECAST = {"history", "dates", "mean", "low", "high", "spend", "spend_per_day", "events", "backtest"}
DASHBOARD_BACKTEST = {"mape", "naive_mape", "start", "end", "naive", "coverage", "dates", "actual", "forecast",
                      "naive_forecast"}


def same(a: Any, b: Any, path: str = "$") -> None:
    """Assert two JSON values are equal: same keys everywhere, floats to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: keys differ: only in response {set(a) - set(b)}, " \
                                 f"only in core output {set(b) - set(a)}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} items against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), f"{path}: {a!r} against {b!r}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{path}: {a!r} against {b!r}"
    else:
        assert a == b, f"{path}: {a!r} against {b!r}"


def as_json(obj: Any) -> Any:
    """What the core output looks like on the wire (tuples as lists, sets refused)."""
    return json.loads(json.dumps(obj))


def make_client(tmp_path, monkeypatch, tables: dict, artifact: dict) -> tuple[TestClient, LocalStore]:
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    from functions.app import create_app
    from functions.deps import _store, get_store

    _store.cache_clear()
    store = get_store()  # the routes' own store object, so the test reads the same cached model
    version = publish_dataset(store, "default", tables)
    store.write_json(model_key("default", version), artifact)
    return TestClient(create_app(), headers=AUTH_HEADERS), store


@pytest.fixture()
def opt(tmp_path, monkeypatch):
    """The optimizer world: Email a flat fee, Google past its optimum, TikTok under-funded."""
    from functions.deps import _store

    df, ef = world(days=120)
    for name, s in WORLD_1.items():
        df[name] = s["current"] if name == "Email" else s["current"] * np.exp(
            np.random.default_rng(1).normal(0, 0.2, len(df)))
    tables = long_tables(df, list(WORLD_1))
    tables["external_factors"] = ef
    yield make_client(tmp_path, monkeypatch, tables, make_artifact(WORLD_1))
    _store.cache_clear()


def forecast_tables(days: int) -> dict:
    df, ef = world(end="2026-10-31", days=days)
    tables = long_tables(df, list(SPECS))
    tables["external_factors"] = ef
    return tables


@pytest.fixture()
def fc(tmp_path, monkeypatch):
    """Two years of daily data: the forecast comes with its 8-week backtest."""
    from functions.deps import _store

    yield make_client(tmp_path, monkeypatch, forecast_tables(760), make_artifact(SPECS, seed=1))
    _store.cache_clear()


# --------------------------------------------------------------------------------------------- optimize
@pytest.mark.parametrize("body,kwargs", [
    ({}, {}),
    ({"budget": 400_000, "period": "month", "max_change": 0.2, "locked": ["Meta Ads"], "min": {"Affiliate": 800}},
     {"daily_budget": 400_000 / PERIOD_DAYS["month"], "period": "month", "max_change": 0.2, "locked": ["Meta Ads"],
      "min_spend": {"Affiliate": 800}}),
    ({"goal": "max_profit", "margin": 0.6, "risk_aware": False},
     {"goal": "max_profit", "margin": 0.6, "risk_quantile": None}),
    ({"goal": "min_budget", "target_revenue": 2.5e7, "period": "year"},
     {"goal": "min_budget", "target_revenue": 2.5e7, "period": "year"}),
    ({"goal": "target_mroas", "target_mroas": 2.0, "fixed": []}, {"goal": "target_mroas", "target_mroas": 2.0,
                                                                   "fixed": []}),
])
def test_optimize_response_is_the_whole_plan(opt, body, kwargs) -> None:
    client, store = opt
    r = client.post("/api/optimize", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    parsed = OptimizeResponse.model_validate(got)
    assert parsed.goal == body.get("goal", "max_revenue")
    loaded = loaded_model(store, "default")
    kwargs = {"fixed": loaded.fixed, "risk_quantile": 0.25, **kwargs}
    expected = make_plan(loaded.artifact, **kwargs)
    expected["model"] = {"end": "2026-11-24", "data_version": None, "granularity": "day"}
    same(got, as_json(expected))


def test_optimize_carries_what_the_dashboard_reads(opt) -> None:
    client, _ = opt
    plan = client.post("/api/optimize", json={}).json()
    assert DASHBOARD_PLAN <= set(plan)
    assert all(DASHBOARD_PLAN_ROW <= set(row) for row in plan["channels"])
    assert DASHBOARD_PROJECTION <= set(plan["projection"])
    rows = {r["channel"]: r for r in plan["channels"]}
    assert rows["Email"]["fixed_cost"] is True and rows["Email"]["bound"] == "fixed cost"


# --------------------------------------------------------------------------------------------- simulate
@pytest.mark.parametrize("allocation", [{}, {"Google Ads": 4200, "TikTok": 4000}, {"Email": 0, "Affiliate": 0}])
def test_simulate_response_is_the_whole_projection(opt, allocation) -> None:
    client, store = opt
    r = client.post("/api/simulate", json={"allocation": allocation})
    assert r.status_code == 200, r.text
    got = r.json()
    parsed = SimulateResponse.model_validate(got)
    assert [c.channel for c in parsed.channels] == list(WORLD_1)
    assert DASHBOARD_SIM_LIFT <= set(got["lift"]) and "mean" in got["revenue"] and "per_day" in got["spend"]
    loaded = loaded_model(store, "default")
    same(got, as_json(simulate(loaded.artifact, allocation, fixed=loaded.fixed)))


# --------------------------------------------------------------------------------------------- forecast
def expected_forecast(store: LocalStore, days: int, spend: dict[str, float]) -> dict[str, Any]:
    loaded = loaded_model(store, "default")
    wide, _, _, factors = wide_from_dataset(load_dataset(store, "default"))
    return forecast_revenue(loaded.artifact, wide, factors, days=days, spend=spend, fixed=set(loaded.fixed))


def test_forecast_responses_are_the_whole_forecast(fc) -> None:
    client, store = fc
    r = client.get("/api/forecast", params={"days": 30})
    assert r.status_code == 200, r.text
    got = r.json()
    parsed = ForecastResponse.model_validate(got)
    assert isinstance(parsed.backtest, Backtest) and parsed.backtest.weeks == 8
    assert DASHBOARD_FORECAST <= set(got) and DASHBOARD_BACKTEST <= set(got["backtest"])
    assert {"dates", "actual"} <= set(got["history"]) and all(set(e) == {"date", "name"} for e in got["events"])
    same(got, as_json(expected_forecast(store, 30, {})))

    r = client.post("/api/forecast", json={"days": 14, "spend": {"Social": 4000}})
    assert r.status_code == 200, r.text
    assert ForecastResponse.model_validate(r.json()).spend["Social"] == 4000
    same(r.json(), as_json(expected_forecast(store, 14, {"Social": 4000})))


def test_forecast_without_enough_history_for_a_backtest(tmp_path, monkeypatch) -> None:
    from functions.deps import _store

    client, store = make_client(tmp_path, monkeypatch, forecast_tables(90), make_artifact(SPECS, seed=1))
    try:
        r = client.get("/api/forecast", params={"days": 7})
        assert r.status_code == 200, r.text
        got = r.json()
        bt = ForecastResponse.model_validate(got).backtest
        assert isinstance(bt, BacktestUnavailable) and "needs at least" in bt.error
        assert got["backtest"] == {"weeks": 8, "mape": None, "naive_mape": None, "error": bt.error}  # as before
        same(got, as_json(expected_forecast(store, 7, {})))
    finally:
        _store.cache_clear()


# --------------------------------------------------------------------------------------------- OpenAPI
def test_openapi_lists_the_response_schemas(opt) -> None:
    client, _ = opt
    doc = client.get("/openapi.json").json()

    def ref(path: str, method: str) -> str:
        schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        return schema["$ref"].rsplit("/", 1)[-1]

    assert ref("/api/optimize", "post") == "OptimizeResponse"
    assert ref("/api/simulate", "post") == "SimulateResponse"
    assert ref("/api/forecast", "get") == ref("/api/forecast", "post") == "ForecastResponse"
    schemas = doc["components"]["schemas"]

    def props(name: str) -> dict[str, Any]:
        return schemas[name]["properties"]

    def required(name: str) -> set[str]:
        return set(schemas[name].get("required", []))

    assert props("OptimizeResponse")["channels"]["items"]["$ref"].endswith("/PlanChannel")
    assert props("OptimizeResponse")["projection"]["$ref"].endswith("/PlanProjection")
    assert props("OptimizeResponse")["notes"]["items"] == {"type": "string"}
    assert DASHBOARD_PLAN <= required("OptimizeResponse") and DASHBOARD_PLAN_ROW <= required("PlanChannel")
    assert DASHBOARD_PROJECTION <= required("PlanProjection")
    assert "constraint" in props("PlanChannel")["bound"]["description"]
    assert "draws" in props("PlanProjection")["prob_positive_lift"]["description"]
    assert props("SimulateResponse")["channels"]["items"]["$ref"].endswith("/SimulatedChannel")
    assert DASHBOARD_SIM_LIFT <= required("SimulatedLift")
    backtest = {s.get("$ref", "").rsplit("/", 1)[-1] or s.get("type") for s in props("ForecastResponse")["backtest"]
                ["anyOf"]}
    assert backtest == {"Backtest", "BacktestUnavailable", "null"}
    assert DASHBOARD_FORECAST <= required("ForecastResponse") and DASHBOARD_BACKTEST <= required("Backtest")
    assert "interval" in props("Backtest")["coverage"]["description"]
