"""POST /api/data/import and GET /api/data through the app (tmp store)."""

from __future__ import annotations

import importlib

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import functions.deps as deps
import functions.routers.data as data_router
from functions.app import create_app
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS


def _long(days: int = 10) -> str:
    rows = ["date,channel,spend,revenue"]
    for i, d in enumerate(pd.date_range("2025-01-01", periods=days)):
        for j, ch in enumerate(("Google Ads", "Meta Ads")):
            rows.append(f"{d.date()},{ch},{100 + 10 * i + j},{300 + 7 * i}")
    return "\n".join(rows) + "\n"


def _kpis(days: int = 10) -> str:
    return "date,revenue\n" + "".join(f"{d.date()},{5000 + i}\n" for i, d in
                                      enumerate(pd.date_range("2025-01-01", periods=days)))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.delenv("GROWTHLENS_WORKSPACE", raising=False)
    deps._store.cache_clear()
    started = []
    monkeypatch.setattr(data_router, "start_model", lambda store, ws: started.append(ws) or "job-1")
    yield TestClient(create_app(["data"]), headers=AUTH_HEADERS), LocalStore(tmp_path), started
    deps._store.cache_clear()


def _data(store: LocalStore) -> list[str]:
    """Every stored key but the audit log's (each request is recorded there, stored or not)."""
    return [k for k in store.list("") if "/audit/" not in k]


def _snapshot(store: LocalStore) -> dict[str, bytes]:
    return {k: store.read_bytes(k) for k in _data(store)}


def test_no_data_yet_is_404(env):
    client, _, _ = env
    r = client.get("/api/data")
    assert r.status_code == 404 and "no data yet" in r.json()["detail"]


def test_import_then_describe(env):
    client, store, started = env
    r = client.post("/api/data/import", files=[("files", ("marketing.csv", _long(), "text/csv")),
                                               ("files", ("kpis.csv", _kpis(), "text/csv"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tables"] == {"kpis": 10, "marketing": 20} and body["model_job"] == "job-1"
    assert body["version"] and body["warnings"] == [] and started == ["default"]
    info = client.get("/api/data").json()
    assert info["version"] == body["version"]
    assert info["tables"]["marketing"]["rows"] == 20 and info["channels"] == ["Google Ads", "Meta Ads"]
    assert (info["start_date"], info["end_date"]) == ("2025-01-01", "2025-01-10")
    assert info["granularity"] == "day" and info["source_files"] == ["kpis.csv", "marketing.csv"]


def test_rejected_upload_is_422_with_problems_and_store_unchanged(env):
    client, store, started = env
    assert client.post("/api/data/import", files=[("files", ("m.csv", _long(), "text/csv"))]).status_code == 200
    before = _snapshot(store)
    bad = _long().replace("2025-01-03,Google Ads,120", "2025-01-03,Google Ads,-120")
    bad = bad.replace("2025-01-04,Meta Ads", "2025-01-4x,Meta Ads")
    r = client.post("/api/data/import", files=[("files", ("m.csv", bad, "text/csv"))])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["message"].startswith("import rejected: 2 problems in m.csv")
    assert {"file": "m.csv", "row": 6, "column": "spend", "problem": "spend is negative (-120)"} in detail["problems"]
    assert any(p["row"] == 9 and p["column"] == "date" for p in detail["problems"])
    assert _snapshot(store) == before and len(started) == 1


def test_wide_upload_with_roles_and_dry_run(env):
    client, store, started = env
    dates = pd.date_range("2024-01-01", periods=10, freq="W-MON")
    wide = pd.DataFrame({"week": dates.strftime("%Y-%m-%d"), "sales": range(10), "search": 5.0, "social": 2.0,
                         "price": 1.0}).to_csv(index=False)
    form = {"kpi_col": "sales", "spend_cols": "search, social", "control_cols": "price", "date_col": "week"}
    r = client.post("/api/data/import", data={**form, "dry_run": "true"},
                    files=[("files", ("wide.csv", wide, "text/csv"))])
    assert r.status_code == 200, r.text
    assert r.json()["version"] is None and r.json()["model_job"] is None and _data(store) == []
    r = client.post("/api/data/import", data=form, files=[("files", ("wide.csv", wide, "text/csv"))])
    body = r.json()
    assert body["granularity"] == "week" and body["channels"] == ["Search", "Social"]
    assert body["tables"] == {"controls": 10, "kpis": 10, "marketing": 20}
    r = client.post("/api/data/import", data={"kpi_col": "nope"}, files=[("files", ("wide.csv", wide, "text/csv"))])
    assert r.status_code == 422
    assert any(p["column"] == "nope" for p in r.json()["detail"]["problems"])


def test_bad_format_option_is_422(env):
    client, _, _ = env
    r = client.post("/api/data/import", data={"format": "diagonal"}, files=[("files", ("m.csv", _long(), "text/csv"))])
    assert r.status_code == 422


def test_start_model_uses_the_model_service(monkeypatch, tmp_path):
    service = importlib.import_module("functions.mmm_service")
    calls = []
    monkeypatch.setattr(service, "ensure_model", lambda store, ws: calls.append(ws) or {"id": "abc", "kind": "x"})
    assert data_router.start_model(LocalStore(tmp_path), "w1") == "abc" and calls == ["w1"]
    monkeypatch.setattr(service, "ensure_model", lambda store, ws: None)
    assert data_router.start_model(LocalStore(tmp_path), "w1") is None


def test_lift_tests_import_and_calibrate_the_fit(env):
    """A lift-test file rides with the import; the fit of that data version reads it and reports the test beside
    the model's own prediction of it. A bad lift-test row rejects the import and stores nothing."""
    from functions.datasets import load_dataset
    from functions.mmm_service import fit_dataset
    from tests.core.mmm.structured_worlds import Channel, make

    client, store, _ = env
    w = make([Channel("Brand", 6000, 2.0, half=1.5, flighted=False, vol=0.04), Channel("Search", 4000, 2.5)],
             periods=400, seed=5)
    long = w.data.melt(id_vars=["date", "revenue"], value_vars=w.spend_cols, var_name="channel", value_name="spend")
    marketing = long[["date", "channel", "spend"]].to_csv(index=False)
    kpis = w.data[["date", "revenue"]].to_csv(index=False)
    tests = "channel,start,end,spend_change,lift,se\nBrand,2023-06-05,2023-07-02,-6000,-150000,15000\n"
    bad = "channel,start,end,spend_change,lift,se\nBrand,2023-06-05,2023-07-02,-6000,-150000,-1\n"
    files = [("files", ("marketing.csv", marketing, "text/csv")), ("files", ("kpis.csv", kpis, "text/csv"))]
    r = client.post("/api/data/import", files=[*files, ("files", ("lift.csv", bad, "text/csv"))])
    assert r.status_code == 422 and "se must be > 0" in r.text and "lift.csv" in r.text
    assert _data(store) == []  # nothing stored
    r = client.post("/api/data/import", files=[*files, ("files", ("lift.csv", tests, "text/csv"))])
    assert r.status_code == 200, r.text
    assert r.json()["tables"]["lift_tests"] == 1
    art = fit_dataset(load_dataset(store, "default"), n_boot=0)
    row = art["lift_tests"][0]
    assert row["channel"] == "Brand" and row["lift"] == -150000 and row["start"] == "2023-06-05"
    assert row["predicted"] < 0
