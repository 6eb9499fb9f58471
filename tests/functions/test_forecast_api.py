"""GET/POST /api/forecast against a stored model artifact and a published dataset."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from functions.datasets import publish_dataset
from functions.mmm_service import model_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS
from tests.core.mmm.test_forecast import SPECS, world
from tests.core.mmm.test_plan import make_artifact
from tests.functions.test_optimize_api import long_tables


@pytest.fixture()
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions.deps import _store

    _store.cache_clear()
    store = LocalStore(tmp_path)
    df, ef = world(end="2026-10-31", days=760)
    tables = long_tables(df, list(SPECS))
    tables["external_factors"] = ef
    version = publish_dataset(store, "default", tables)
    store.write_json(model_key("default", version), make_artifact(SPECS, seed=1))
    from functions.app import create_app

    yield TestClient(create_app(), headers=AUTH_HEADERS)
    _store.cache_clear()


def test_get_forecast_default(client) -> None:
    r = client.get("/api/forecast")
    assert r.status_code == 200, r.text
    f = r.json()
    assert len(f["dates"]) == 90 and f["dates"][0] == "2026-11-01"
    assert all(lo <= m <= hi for lo, m, hi in zip(f["low"], f["mean"], f["high"], strict=True))
    assert f["history"]["dates"][-1] == "2026-10-31"
    bt = f["backtest"]
    assert bt["weeks"] == 8 and bt["mape"] < bt["naive_mape"]
    assert any(e["name"] == "Black Friday" and e["date"] == "2026-11-27" for e in f["events"])
    assert len(client.get("/api/forecast", params={"days": 30}).json()["mean"]) == 30


def test_post_forecast_with_planned_spend(client) -> None:
    base = client.post("/api/forecast", json={"days": 60}).json()
    more = client.post("/api/forecast", json={"days": 60, "spend": {"Social": 4000}}).json()
    assert more["spend"]["Social"] == 4000 and more["spend"]["Search"] == pytest.approx(3000)
    assert sum(more["mean"]) > sum(base["mean"])


@pytest.mark.parametrize("body,status,msg", [
    ({"days": 0}, 422, "greater than or equal to 1"),
    ({"spend": {"Radio": 10}}, 400, "unknown channel"),
    ({"spend": {"Search": -10}}, 422, "non-negative"),
    ({"horizon": 5}, 422, "horizon"),
])
def test_bad_input(client, body, status, msg) -> None:
    r = client.post("/api/forecast", json=body)
    assert r.status_code == status, r.text
    assert msg in r.text
