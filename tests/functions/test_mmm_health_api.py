"""Model health and recommended lift tests over the API: ``GET /api/models/health``, health in the artifact, the
curve and the channel performance; the optimize response's tests, held-back reasons and move probabilities; a
model fitted before health existed answers with health unavailable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from core.mmm.experiment import recommend_tests
from core.mmm.plan import make_plan
from functions.datasets import publish_dataset
from functions.mmm_schemas import ModelHealthResponse
from functions.mmm_service import fit_current, loaded_model, model_key
from functions.routers.channels import Performance
from functions.routers.optimize import OptimizeResponse
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS
from tests.core.mmm.test_health import collinear_world
from tests.core.mmm.test_plan import WORLD_1, make_artifact
from tests.functions.test_api_response_models import as_json, same
from tests.functions.test_optimize_api import long_tables


def _client(tmp_path, artifact: dict | None) -> tuple[TestClient, LocalStore]:
    from functions.app import create_app
    from functions.deps import _store, get_store

    _store.cache_clear()
    store = get_store()
    w = collinear_world("D", 0)
    tables = long_tables(w.data, w.spend_cols)
    tables["external_factors"] = w.external_factors
    version = publish_dataset(store, "default", tables)
    if artifact is None:
        fit_current(store, "default", n_boot=40, country=None)
    else:
        store.write_json(model_key("default", version), artifact)
    return TestClient(create_app(), headers=AUTH_HEADERS), store


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Iterator[tuple[TestClient, LocalStore]]:
    """The collinear world (Meta Ads and TikTok spend together; Search on its own), fitted through the service."""
    from functions.deps import _store

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GROWTHLENS_DATA_DIR", str(tmp_path_factory.mktemp("health-api")))
        for var in ("GROWTHLENS_BUCKET", "GROWTHLENS_WORKSPACE", "GROWTHLENS_JOBS_QUEUE_URL"):
            mp.delenv(var, raising=False)
        yield _client(None, None)
        _store.cache_clear()


def test_health_route_and_the_artifact_carry_the_health_block(fitted) -> None:
    client, store = fitted
    art = loaded_model(store, "default").artifact
    r = client.get("/api/models/health")
    assert r.status_code == 200, r.text
    got = r.json()
    parsed = ModelHealthResponse.model_validate(got)
    assert parsed.health.available and parsed.health.channels["Search"].status == "identified"
    assert parsed.health.channels["TikTok"].status in ("weak", "unidentified")
    same(got["health"], as_json(art["health"]))
    same(got["tests"], as_json([t.to_dict() for t in recommend_tests(art)]))
    assert {t["channel"] for t in got["tests"]} >= {"TikTok"} and got["lift_tests"] == []
    latest = client.get("/api/models/latest").json()
    same(latest["health"], got["health"])
    curve = client.get("/api/channels/TikTok/curve").json()
    same(curve["health"], got["health"]["channels"]["TikTok"])


def test_channel_performance_shows_health_and_the_recommended_test(fitted) -> None:
    client, store = fitted
    art = loaded_model(store, "default").artifact
    tests = {t.channel: t.to_dict() for t in recommend_tests(art)}
    for name in ("TikTok", "Search"):
        r = client.get(f"/api/channels/{name}/performance")
        assert r.status_code == 200, r.text
        model = Performance.model_validate(r.json()).model
        body = r.json()["model"]
        same(body["health"], as_json(art["health"]["channels"][name]))
        same(body["model_health"], as_json(art["health"]["overall"]))
        assert body["model_granularity"] == "day" and body["lift_tests"] == []
        if name in tests:
            same(body["recommended_test"], as_json(tests[name]))
            assert model.recommended_test.weeks >= 1 and model.recommended_test.spend_change_per_day < 0
        else:
            assert body["recommended_test"] is None


def test_optimize_recommends_the_test_instead_of_the_move(fitted) -> None:
    client, store = fitted
    loaded = loaded_model(store, "default")
    for body, kwargs in (({}, {}), ({"test_first": False}, {"test_first": False})):
        r = client.post("/api/optimize", json=body)
        assert r.status_code == 200, r.text
        got = r.json()
        OptimizeResponse.model_validate(got)
        expected = make_plan(loaded.artifact, fixed=loaded.fixed, risk_quantile=0.25, **kwargs)
        expected["model"] = {"end": loaded.artifact["end"], "data_version": loaded.artifact["data_version"],
                             "granularity": "day"}
        same(got, as_json(expected))
    plan = client.post("/api/optimize", json={}).json()
    rows = {r["channel"]: r for r in plan["channels"]}
    held = [t["channel"] for t in plan["tests"] if t["hold"]]
    assert held, plan["tests"]
    for name in held:
        assert rows[name]["bound"] == "lift test first" and rows[name]["optimized"] == rows[name]["current"]
        assert "until a lift test measures it" in rows[name]["held_back"]
    assert all(r["prob_gain"] is None or 0 <= r["prob_gain"] <= 1 for r in rows.values())
    free = client.post("/api/optimize", json={"test_first": False}).json()
    assert all(r["bound"] != "lift test first" for r in free["channels"])


def test_a_model_fitted_before_health_answers_unavailable(tmp_path, monkeypatch) -> None:
    from functions.deps import _store

    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    for var in ("GROWTHLENS_BUCKET", "GROWTHLENS_WORKSPACE", "GROWTHLENS_JOBS_QUEUE_URL"):
        monkeypatch.delenv(var, raising=False)
    old = make_artifact({n: WORLD_1[n] for n in ("Google Ads", "Meta Ads", "TikTok")})
    old["channels"] = {"Search": old["channels"]["Google Ads"], "Meta Ads": old["channels"]["Meta Ads"],
                       "TikTok": old["channels"]["TikTok"]}
    try:
        client, _ = _client(tmp_path, old)
        got = client.get("/api/models/health").json()
        assert got["health"]["available"] is False and got["tests"] == []
        assert {c["status"] for c in got["health"]["channels"].values()} == {"unavailable"}
        perf = client.get("/api/channels/TikTok/performance").json()["model"]
        assert perf["health"]["status"] == "unavailable" and perf["recommended_test"] is None
        plan = client.post("/api/optimize", json={}).json()
        assert plan["tests"] == [] and all(r["bound"] != "lift test first" for r in plan["channels"])
    finally:
        _store.cache_clear()
