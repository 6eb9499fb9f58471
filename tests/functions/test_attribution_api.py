"""Attribution routes: dataset journeys (date range, cache, MMM shares), uploads, errors."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import functions.deps
from core.attribution import MODELS
from core.demo.journeys import generate_journeys
from functions.app import create_app
from functions.datasets import publish_dataset, result_key
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS


def _marketing(days: int = 90) -> pd.DataFrame:
    dates = pd.date_range("2025-03-01", periods=days, freq="D")
    rows = []
    for ch, clicks in (("Search", 900.0), ("Video", 400.0), ("Email", 700.0)):
        rows.append(pd.DataFrame({"date": dates, "channel": ch, "spend": clicks, "impressions": clicks * 30,
                                  "clicks": clicks, "conversions": clicks / 40, "revenue": clicks * 2.0,
                                  "new_customers": 0, "returning_customers": 0}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    functions.deps._store.cache_clear()
    store = LocalStore(tmp_path)
    marketing = _marketing()
    journeys, truth = generate_journeys(marketing, n_journeys=3000, seed=4)
    version = publish_dataset(store, "default", {"marketing": marketing, "journeys": journeys})
    yield TestClient(create_app(), headers=AUTH_HEADERS), store, version, journeys, marketing
    functions.deps._store.cache_clear()


def test_all_models_on_dataset_journeys(env):
    client, store, version, journeys, _ = env
    r = client.get("/api/attribution")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["models"]) == set(MODELS) and set(body["descriptions"]) == set(MODELS)
    conversions = int(journeys.converted.sum())
    assert body["totals"]["conversions"] == conversions
    for model, credits in body["models"].items():
        assert sum(c["conversions"] for c in credits.values()) == pytest.approx(conversions, rel=1e-9), model
        assert sum(c["share"] for c in credits.values()) == pytest.approx(1.0, rel=1e-9), model
    assert body["mmm"] is None and body["cached"] is False
    assert store.list(result_key("default", version, "attribution"))
    again = client.get("/api/attribution").json()
    assert again["cached"] is True and again["models"] == body["models"]


def test_date_range_and_model_selection(env):
    client, _, _, journeys, _ = env
    full = client.get("/api/attribution", params={"models": "last_click"}).json()
    ends = journeys.groupby("journey_id").timestamp.max().dt.normalize()
    start, end = ends.min() + pd.Timedelta(days=20), ends.min() + pd.Timedelta(days=40)
    r = client.get("/api/attribution", params={"models": "last_click,markov", "start_date": str(start.date()),
                                               "end_date": str(end.date())})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["models"]) == ["last_click", "markov"]
    in_range = ends[(ends >= start) & (ends <= end)].index
    want = int(journeys[journeys.journey_id.isin(in_range)].converted.sum())
    assert body["totals"]["conversions"] == want < full["totals"]["conversions"]
    assert body["start_date"] == str(start.date()) and body["data_range"]["start_date"] == str(ends.min().date())


def test_bad_parameters(env):
    client = env[0]
    r = client.get("/api/attribution", params={"models": "last_click,guesswork"})
    assert r.status_code == 400 and "guesswork" in r.json()["detail"]
    r = client.get("/api/attribution", params={"start_date": "2030-01-01", "end_date": "2030-02-01"})
    assert r.status_code == 400 and "no journeys end between" in r.json()["detail"]
    r = client.get("/api/attribution", params={"start_date": "2025-05-01", "end_date": "2025-04-01"})
    assert r.status_code == 400


def test_mmm_shares_when_a_model_exists(env):
    client, store, version, _, _ = env
    store.write_json(result_key("default", version, "mmm", "model.json"),
                     {"channels": {"Search": {"contribution": 300.0}, "Video": {"contribution": 100.0},
                                   "Email": {"contribution": 100.0}}})
    body = client.get("/api/attribution", params={"models": "linear"}).json()
    assert body["mmm"] == pytest.approx({"Search": 0.6, "Video": 0.2, "Email": 0.2})


def test_unified_view_reconciles_journeys_with_the_mmm(env):
    client, store, version, _, _ = env
    body = client.get("/api/attribution", params={"models": "causal"}).json()
    alone = {r["channel"]: r for r in body["unified"]["channels"]}
    assert body["unified"]["calibrated"] == [] and body["recommended"] == "causal"
    for r in alone.values():  # no model yet: the reconciled view is the journey view
        assert r["reconciled"] == pytest.approx(r["journeys"]) and r["mmm"] is None
    # an MMM that gives Video far more than the journeys do pulls the reconciled share toward it, with a note
    store.write_json(result_key("default", version, "mmm", "model.json"),
                     {"channels": {"Search": {"contribution": 100.0, "contribution_interval": [90.0, 110.0]},
                                   "Video": {"contribution": 800.0, "contribution_interval": [700.0, 900.0]},
                                   "Email": {"contribution": 100.0, "contribution_interval": [90.0, 110.0]}}})
    body = client.get("/api/attribution", params={"models": "causal"}).json()
    u = {r["channel"]: r for r in body["unified"]["channels"]}
    assert set(body["unified"]["calibrated"]) == {"Search", "Video", "Email"}
    assert u["Video"]["reconciled"] > alone["Video"]["journeys"] + 0.1
    assert sum(r["reconciled"] for r in u.values()) == pytest.approx(1.0)
    assert u["Direct"]["intent_signal"] is (u["Direct"]["reconciled"] == 0.0)
    assert any(d.startswith("Video") for d in body["unified"]["disagreements"])
    assert body["cached"] is True  # the journey fit is reused; only the reconciliation is recomputed


def test_dataset_without_journeys_is_404(env):
    client, store, _, _, marketing = env
    publish_dataset(store, "default", {"marketing": marketing})
    r = client.get("/api/attribution")
    assert r.status_code == 404 and "journeys" in r.json()["detail"]


def test_upload_journeys_and_paths(env):
    client, store, _, journeys, _ = env
    csv = journeys.to_csv(index=False).encode()
    r = client.post("/api/attribution", files={"file": ("j.csv", csv, "text/csv")},
                    data={"models": "first_click,shapley", "lookback_days": "10"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body["models"]) == ["first_click", "shapley"] and body["format"] == "journeys"
    paths = io.StringIO("path,conversions,revenue,nulls\nSearch > Email,3,300,10\nVideo,1,50,20\n")
    r = client.post("/api/attribution", files={"file": ("p.csv", paths.getvalue().encode(), "text/csv")},
                    data={"format": "paths", "models": "last_click"})
    assert r.status_code == 200, r.text
    assert r.json()["models"]["last_click"]["Email"]["conversions"] == 3
    assert r.json()["totals"]["revenue"] == 350


def test_upload_with_bad_rows_lists_them_and_writes_nothing(env):
    client, store, version, journeys, _ = env
    before = store.list("workspaces/default")
    bad = journeys.head(20).copy().astype(object)
    bad.loc[3, "timestamp"] = "yesterday"
    bad.loc[7, "converted"] = "perhaps"
    r = client.post("/api/attribution", files={"file": ("bad.csv", bad.to_csv(index=False).encode(), "text/csv")})
    assert r.status_code == 422
    problems = r.json()["detail"]["problems"]
    assert {(p["row"], p["column"]) for p in problems} == {(5, "timestamp"), (9, "converted")}
    assert all(p["file"] == "bad.csv" for p in problems)
    assert store.list("workspaces/default") == before
    r = client.post("/api/attribution", files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")})
    assert r.status_code == 422 and "format" in r.json()["detail"]["message"]


def test_cli_writes_credits_json(env, tmp_path, capsys):
    import json

    from functions.cli.main import main

    journeys = env[3]
    src = tmp_path / "journeys.csv"
    journeys.to_csv(src, index=False)
    out = tmp_path / "out" / "credits.json"
    code = main(["attribution", str(src), "--format", "journeys", "--models", "last_click,markov,incremental",
                 "--lookback-days", "30", "--interactions", "click,visit,email_click", "--out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert list(doc["models"]) == ["last_click", "markov", "incremental"]
    kept = journeys[journeys.interaction.isin(["click", "visit", "email_click"])]
    assert doc["totals"]["conversions"] == int(kept.converted.sum())
    assert "last_click" in capsys.readouterr().out
    assert main(["attribution", str(src), "--models", "nope", "--out", str(out)]) == 2
    assert main(["attribution", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2


def test_dataset_with_aggregated_paths_only(env):
    from core.attribution import validate_paths

    client, store, _, _, marketing = env
    paths = validate_paths(pd.DataFrame({"path": ["Search > Email", "Video", "Video > Search"],
                                         "conversions": [4, 1, 2], "revenue": [400.0, 80.0, 150.0],
                                         "nulls": [20, 30, 10]}))
    publish_dataset(store, "default", {"marketing": marketing, "journey_paths": paths})
    body = client.get("/api/attribution", params={"models": "last_click,markov"}).json()
    assert body["format"] == "paths" and body["totals"]["conversions"] == 7
    assert body["models"]["last_click"]["Email"]["conversions"] == 4
    assert body["models"]["last_click"]["Search"]["revenue"] == 150
