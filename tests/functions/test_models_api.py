"""Model routes: a fit runs as a job and lands under the data version; reads never refit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import functions.deps
from functions import jobs
from functions.app import create_app
from functions.datasets import publish_dataset
from functions.mmm_service import model_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS


def _dataset(days: int = 420, seed: int = 3) -> dict[str, pd.DataFrame]:
    """Two channels with planted effects on top of a weekly-seasonal baseline."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    a = rng.uniform(500, 3000, days)
    b = rng.uniform(200, 1500, days) * (1 + 0.5 * np.sin(np.arange(days) / 30))
    revenue = 20000 + 1500 * np.sin(2 * np.pi * dates.day_of_week / 7) + 2.0 * a + 3.0 * b + rng.normal(0, 400, days)
    marketing = pd.concat([
        pd.DataFrame({"date": dates, "channel": "Search", "spend": a, "revenue": a * 3.5}),
        pd.DataFrame({"date": dates, "channel": "Social", "spend": b, "revenue": b * 2.0}),
    ], ignore_index=True)
    for col in ("impressions", "clicks", "conversions", "new_customers", "returning_customers"):
        marketing[col] = 0
    kpis = pd.DataFrame({"date": dates, "revenue": revenue, "orders": revenue / 80, "new_customers": revenue / 400})
    return {"marketing": marketing, "kpis": kpis}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_JOBS_QUEUE_URL", raising=False)
    functions.deps._store.cache_clear()
    store = LocalStore(tmp_path)
    version = publish_dataset(store, "default", _dataset())
    yield TestClient(create_app(), headers=AUTH_HEADERS), store, version
    functions.deps._store.cache_clear()


def test_no_model_yet_says_what_to_do(env) -> None:
    client, _, _ = env
    r = client.get("/api/models/latest")
    assert r.status_code == 404 and "POST /api/models" in r.json()["detail"]
    assert client.get("/api/insights").status_code == 404
    assert client.get("/api/models/status").json()["fitted"] is False


def test_fit_job_then_reads(env) -> None:
    client, store, version = env
    r = client.post("/api/models", json={"n_boot": 30})
    assert r.status_code == 202
    job_id = r.json()["job"]["id"]
    jobs.wait_local()
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "done", job
    assert store.exists(model_key("default", version))

    model = client.get("/api/models/latest").json()
    assert set(model["channels"]) == {"Search", "Social"}
    assert model["data_version"] == version
    for ch in model["channels"].values():
        assert ch["roas"]["low"] <= ch["roas"]["mean"] <= ch["roas"]["high"]
    # platform ROAS (what the ad tool claims) sits beside the incremental estimate
    assert model["channels"]["Search"]["platform_roas"] == pytest.approx(3.5)

    curve = client.get("/api/channels/Search/curve").json()
    assert len(curve["curve"]["spend"]) == len(curve["curve"]["mean"]) > 10
    assert curve["current_daily_spend"] > 0
    assert client.get("/api/channels/Nope/curve").status_code == 404

    weekly = client.get("/api/contributions", params={"granularity": "week"}).json()
    daily = client.get("/api/contributions", params={"granularity": "day"}).json()
    assert len(weekly["dates"]) < len(daily["dates"])
    assert sum(weekly["baseline"]) == pytest.approx(sum(daily["baseline"]), rel=1e-6)
    assert client.get("/api/contributions", params={"start_date": "2024-05-01", "end_date": "2024-04-01"}
                      ).status_code == 422

    insights = client.get("/api/insights").json()["insights"]
    assert insights and all(i["text"] for i in insights)


def test_ensure_model_does_not_duplicate_jobs(env) -> None:
    from functions.mmm_service import ensure_model

    _, store, _ = env
    first = ensure_model(store, "default")
    second = ensure_model(store, "default")
    assert first is not None and (second is None or second["id"] == first["id"])
    jobs.wait_local()
    assert ensure_model(store, "default") is None  # fitted: nothing to start
