"""The fitted-model dependency ``get_model``: 404s that say why, fixed-cost channels, the per-process cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from functions.datasets import publish_dataset
from functions.mmm_service import (
    LoadedModel,
    get_model,
    get_model_if_fitted,
    loaded_model,
    model_key,
    save_model,
)
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS
from tests.core.mmm.test_forecast import world
from tests.core.mmm.test_plan import WORLD_1, make_artifact
from tests.functions.test_optimize_api import long_tables


class CountingStore(LocalStore):
    """A local store that records the keys it reads."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def read_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return super().read_bytes(key)


def tables(seed: int = 1, monthly_fee: bool = False) -> dict:
    """WORLD_1's channels at about their current spend; Email the same amount every day or, with ``monthly_fee``,
    the same amount every calendar month (a flat fee spread over its days)."""
    df, _ = world(days=120)
    rng = np.random.default_rng(seed)
    for name, s in WORLD_1.items():
        df[name] = s["current"] * np.exp(rng.normal(0, 0.2, len(df)))
    df["Email"] = 15_000 / df["date"].dt.days_in_month if monthly_fee else 500.0
    return long_tables(df, list(WORLD_1))


def unflagged_artifact() -> dict:
    """WORLD_1's artifact without the fixed-cost flag: Email is a fixed cost only by its spend in the data."""
    art = make_artifact(WORLD_1)
    art["channels"]["Email"].pop("fixed_cost")
    return art


def test_no_data_then_no_model_are_404s_that_say_why(tmp_path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(HTTPException) as e:
        get_model(store, "default")
    assert e.value.status_code == 404 and "no data yet" in e.value.detail
    assert get_model_if_fitted(store, "default") is None

    version = publish_dataset(store, "default", tables())
    with pytest.raises(HTTPException) as e:
        get_model(store, "default")
    assert e.value.status_code == 404 and "POST /api/models" in e.value.detail
    assert get_model_if_fitted(store, "default") is None

    store.write_json(f"workspaces/default/results/{version}/mmm/job.json", {"job_id": "j1"})
    store.write_json("workspaces/default/jobs/j1.json", {"id": "j1", "status": "running", "message": "bootstrap 3/30"})
    with pytest.raises(HTTPException) as e:
        get_model(store, "default")
    assert "being fitted (job j1, bootstrap 3/30)" in e.value.detail
    store.write_json("workspaces/default/jobs/j1.json", {"id": "j1", "status": "failed", "error": "singular matrix"})
    with pytest.raises(HTTPException) as e:
        get_model(store, "default")
    assert e.value.detail == "the last model fit failed: singular matrix"


def test_fixed_costs_are_decided_once_at_fit_time(tmp_path) -> None:
    """The fit flags flat monthly fees (from the data) in the artifact; reading the model does not decide again."""
    from functions.datasets import load_dataset
    from functions.mmm_service import fit_dataset

    store = LocalStore(tmp_path)
    version = publish_dataset(store, "default", tables(monthly_fee=True))
    fitted = fit_dataset(load_dataset(store, "default"), n_boot=0)
    assert fitted["channels"]["Email"]["fixed_cost"] is True  # a flat monthly fee in the data
    store.write_json(model_key("default", version), unflagged_artifact())
    loaded = get_model(store, "default")
    assert isinstance(loaded, LoadedModel) and loaded.version == version
    assert loaded.fixed == frozenset()  # an artifact without the flag: nothing is re-detected per request
    assert set(loaded.artifact["channels"]) == set(WORLD_1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.fixed = frozenset()  # type: ignore[misc]

    other = LocalStore(tmp_path / "flagged")  # Email the same every day: no monthly fee, fixed by its flag
    v2 = publish_dataset(other, "default", tables())
    art = make_artifact(WORLD_1)
    art["channels"]["Affiliate"]["fixed_cost"] = True
    other.write_json(model_key("default", v2), art)
    assert get_model(other, "default").fixed == frozenset({"Email", "Affiliate"})  # flagged in the model


def test_cached_per_data_version_reading_only_the_pointer(tmp_path) -> None:
    store = CountingStore(tmp_path)
    version = publish_dataset(store, "default", tables())
    store.write_json(model_key("default", version), make_artifact(WORLD_1))
    first = get_model(store, "default")
    store.reads.clear()
    assert get_model(store, "default") is first
    assert store.reads == ["workspaces/default/datasets/current.json"]

    # a new import: the next request loads that version's model
    v2 = publish_dataset(store, "default", tables(seed=7))
    store.write_json(model_key("default", v2), make_artifact(WORLD_1, seed=5))
    second = get_model(store, "default")
    assert second.version == v2 != version and second.artifact["seed"] == 5

    # a refit of the same version replaces the cached model in this process
    save_model(store, "default", v2, make_artifact(WORLD_1, seed=6))
    assert loaded_model(store, "default").artifact["seed"] == 6

    # a store of its own never sees another store's cached model
    elsewhere = LocalStore(tmp_path / "elsewhere")
    publish_dataset(elsewhere, "default", tables(seed=7))
    assert get_model_if_fitted(elsewhere, "default") is None


def test_routes_share_the_model_and_see_a_fit_land(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    from functions.app import create_app
    from functions.deps import _store, get_store

    _store.cache_clear()
    try:
        store = get_store()
        version = publish_dataset(store, "default", tables())
        client = TestClient(create_app(), headers=AUTH_HEADERS)
        for path in ("/api/models/latest", "/api/insights", "/api/channels/TikTok/curve", "/api/contributions"):
            r = client.get(path)
            assert r.status_code == 404 and "POST /api/models" in r.json()["detail"], path
        assert client.post("/api/simulate", json={"allocation": {}}).status_code == 404
        assert client.get("/api/channels/TikTok/performance").json()["model"] is None

        save_model(store, "default", version, make_artifact(WORLD_1, seed=3))  # a fit lands
        assert client.get("/api/models/latest").json()["seed"] == 3
        assert client.get("/api/channels/TikTok/performance").json()["model"]["current_daily_spend"] == 2000
        assert client.get("/api/channels/TikTok/curve").json()["current_daily_spend"] == 2000
        assert client.get("/api/insights").json()["insights"]
        assert client.post("/api/simulate", json={"allocation": {}}).status_code == 200

        save_model(store, "default", version, make_artifact(WORLD_1, seed=4))  # refit with other options
        assert client.get("/api/models/latest").json()["seed"] == 4
    finally:
        _store.cache_clear()
