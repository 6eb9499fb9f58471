"""Predictions in the customer store, over a GlowBeauty synced through the batch API: every profile scored by the
refresh writer, churn risk ranking the planted future better than recency, the Insights route's figures equal
to what its own members and predictions give, a webhook rescoring only its partition, and a failed prediction
update leaving the previous predictions until the next refresh heals them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from core.demo.glowbeauty import FILES, write_glowbeauty
from functions.storage import LocalStore
from tests.auth_keys import AUTH_HEADERS, TEST_API_KEY
from tests.functions.sync_helpers import sync_demo

WS = "default"
API_KEY = TEST_API_KEY
SECRET = "test-shopify-secret-predictions"
CDP = f"workspaces/{WS}/cdp"


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """GlowBeauty (800 customers) synced through the batch API, and the demo's truth (with its planted future)."""
    tmp = tmp_path_factory.mktemp("predictions")
    demo = write_glowbeauty(tmp / "gb", seed=11, customers=800, end=date(2025, 3, 31))
    mp = pytest.MonkeyPatch()
    mp.setenv("GROWTHLENS_DATA_DIR", str(tmp / "store"))
    mp.delenv("GROWTHLENS_BUCKET", raising=False)
    mp.setenv("GROWTHLENS_API_KEY", API_KEY)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["sync"]), headers=AUTH_HEADERS) as c:
        sync_demo(c, demo)
    _store.cache_clear()
    mp.undo()
    yield tmp / "store", json.loads((demo / "truth.json").read_text()), demo


@pytest.fixture()
def api(synced, tmp_path, monkeypatch):
    """A client on a private copy of the synced store."""
    src, truth, demo = synced
    shutil.copytree(src, tmp_path / "store")
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("GROWTHLENS_BUCKET", raising=False)
    monkeypatch.setenv("GROWTHLENS_API_KEY", API_KEY)
    monkeypatch.setenv("GROWTHLENS_WEBHOOK_SECRET_SHOPIFY", SECRET)
    from functions.app import create_app
    from functions.deps import _store

    _store.cache_clear()
    with TestClient(create_app(groups=["sync", "customers", "segments"]), headers=AUTH_HEADERS) as c:
        c.store = LocalStore(tmp_path / "store")
        c.truth, c.demo = truth, demo
        yield c
    _store.cache_clear()


def _table(c, name: str) -> pd.DataFrame:
    return c.store.read_table(f"{CDP}/{name}.parquet")


def _truth_by_person(c) -> pd.DataFrame:
    """The planted future of each profile, matched through the primary email."""
    prof = _table(c, "profiles")
    by_email = {p["email"].lower(): p for p in c.truth["persons"].values()}
    rows = []
    for pid, email in zip(prof["person_id"], prof["email"].fillna(""), strict=True):
        t = by_email.get(email.lower())
        if t is not None:
            rows.append({"person_id": pid, "purchase_churn": t["purchase_churn"], "persona": t["persona"]})
    return pd.DataFrame(rows).set_index("person_id")


def test_every_profile_is_scored_and_churn_risk_beats_recency_on_the_future(api):
    prof, pred = _table(api, "profiles"), _table(api, "predictions")
    assert sorted(pred["person_id"]) == sorted(prof["person_id"])
    buyers = prof.loc[prof["total_orders"] > 0, "person_id"]
    p = pred.set_index("person_id")
    assert p.loc[buyers, "churn_risk"].between(0, 1).all()
    never = prof.loc[prof["total_orders"] == 0, "person_id"]
    assert p.loc[never, "churn_risk"].isna().all()  # nobody to lose: not scored
    assert set(p["health"].dropna()) <= {"healthy", "warning", "critical"}
    assert p.loc[buyers, "predicted_ltv"].ge(0).all()
    assert (p.loc[buyers, "predicted_ltv_low"] <= p.loc[buyers, "predicted_ltv_high"]).all()
    assert p["next_action"].notna().all() and p["next_action_reason"].str.len().gt(10).all()
    # judged against what the generator planted after the data's end, never seen by the models
    truth = _truth_by_person(api)
    purchase = p[p["churn_target"] == "purchase"].join(truth, how="inner")
    assert len(purchase) > 200
    y = purchase["purchase_churn"].astype(int)
    recency = prof.set_index("person_id").loc[purchase.index, "days_since_last_order"]
    auc, auc_recency = roc_auc_score(y, purchase["churn_risk"]), roc_auc_score(y, recency)
    assert auc > auc_recency and auc > 0.75


def test_model_cards_are_served_with_their_evaluation(api):
    r = api.get("/api/customers/models")
    assert r.status_code == 200, r.text
    cards = r.json()
    card = cards["purchase"]
    assert card["target"] == "purchase" and card["horizon_days"] == 90 and card["n_train"] > 200
    ev = card["evaluation"]
    assert {"model", "days_since_last_order", "rfm_logistic"} <= set(ev)
    assert ev["model"]["roc_auc"] > 0.5 and len(ev["model"]["calibration"]) == 10
    assert cards["ltv"]["holdout"]["actual_purchases"] > 0
    for target in ("subscription", "purchase"):  # a model, or the reason there is none
        assert cards[target] is not None or target in cards["messages"]


def test_predictions_are_segment_fields_and_search_columns(api):
    fields = {f["name"] for f in api.get("/api/segments/fields").json()["fields"]}
    assert {"churn_risk", "predicted_ltv", "next_order_date"} <= fields
    pred = _table(api, "predictions")
    rule = {"all": [{"field": "churn_risk", "op": "gt", "value": 50}]}  # percent
    prev = api.post("/api/segments/preview", json={"rules": rule}).json()
    assert prev["count"] == int((pred["churn_risk"] > 0.5).sum()) > 0
    found = api.get("/api/customers", params={"sort": "-churn_risk", "page_size": 5}).json()
    risks = [i["churn_risk"] for i in found["items"]]
    assert risks == sorted(risks, reverse=True) and risks[0] == pytest.approx(pred["churn_risk"].max())
    pid = found["items"][0]["id"]
    prof = api.get(f"/api/customers/{pid}").json()["profile"]
    assert prof["churn_risk"] == pytest.approx(risks[0]) and prof["next_action_label"]
    assert prof["health"] in {"healthy", "warning", "critical"}


def test_insights_figures_come_from_their_members_and_assumptions(api):
    r = api.get("/api/customers/insights")
    assert r.status_code == 200, r.text
    doc = r.json()
    pred = _table(api, "predictions")
    scored = pred["churn_risk"].notna()
    bands = {b["band"]: b for b in doc["health"]["bands"]}
    assert sum(b["customers"] for b in bands.values()) == doc["health"]["scored"] == int(scored.sum())
    crit = pred[pred["churn_risk"] >= doc["health"]["thresholds"]["critical"]]
    assert bands["critical"]["customers"] == len(crit)
    assert bands["critical"]["revenue_at_stake"] == pytest.approx(
        float((crit["churn_risk"] * crit["predicted_ltv"]).sum()), rel=1e-6)
    opps = doc["opportunities"]
    assert len(opps) == 3
    dollars = [o["dollars"] for o in opps]
    assert dollars == sorted(dollars, reverse=True)  # ranked by expected incremental dollars
    for o in opps:  # the members the dollars were computed on are the members the rule selects
        prev = api.post("/api/segments/preview", json={"rules": o["rule"]}).json()
        assert prev["count"] == o["customers"]
        assert o["low"] <= o["dollars"] <= o["high"]
    # doubling a rate assumption doubles that opportunity's dollars
    conv = next(o for o in opps if o["id"] == "convert_to_subscription")
    rate = next(a for a in conv["assumptions"] if a["name"] == "conversion_rate")
    r2 = api.get("/api/customers/insights", params={"convert_to_subscription.conversion_rate": rate["value"] * 2})
    conv2 = next(o for o in r2.json()["opportunities"] if o["id"] == "convert_to_subscription")
    assert conv2["dollars"] == pytest.approx(2 * conv["dollars"], rel=1e-9)
    bad = api.get("/api/customers/insights", params={"convert_to_subscription.conversion_rate": 700})
    assert bad.status_code == 400 and "conversion_rate" in bad.json()["detail"]
    unknown = api.get("/api/customers/insights", params={"prevent_churn.nope": 1})
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]
    perf = {s["id"]: s for s in doc["segment_performance"]}
    assert perf["vip-customers"]["avg_ltv"] > 1000
    disc = doc["discovered"]
    assert disc["k"] >= 2 and len(disc["segments"]) == disc["k"]
    assert sum(s["size"] for s in disc["segments"]) == len(pred)


def _order_webhook(api, email: str, total: str, oid: int) -> None:
    rows = [json.loads(line) for line in (api.demo / FILES["shopify"]["orders"]).read_text().splitlines()]
    order = next(o for o in rows if str(o.get("email", "")).lower() == email.lower())
    order.update({"id": oid, "name": f"#{oid}", "created_at": "2025-03-30T10:15:00-05:00",
                  "updated_at": "2025-03-30T10:15:00-05:00", "total_price": total, "financial_status": "paid",
                  "cancelled_at": None,
                  "line_items": [{"id": 1, "title": "Glow Starter Kit", "quantity": 1, "price": total}]})
    body = json.dumps(order).encode()
    sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    r = api.post("/api/sync/shopify/webhook", content=body, headers={
        "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/create", "Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def _lapsed_buyer(api) -> pd.Series:
    prof, pred = _table(api, "profiles"), _table(api, "predictions")
    emails = {str(json.loads(line).get("email", "")).lower()
              for line in (api.demo / FILES["shopify"]["orders"]).read_text().splitlines()}
    both = prof.merge(pred, on="person_id")
    lapsed = both[(both["churn_target"] == "purchase") & both["email"].str.lower().isin(emails)]
    return lapsed.sort_values("churn_risk", ascending=False).iloc[0]


def test_a_webhook_rescores_only_its_partition(api):
    from functions.cdp.common import person_part

    before = _table(api, "predictions").set_index("person_id")
    who = _lapsed_buyer(api)
    _order_webhook(api, who["email"], "120.00", 880001)
    after = _table(api, "predictions").set_index("person_id")
    assert after.loc[who["person_id"], "churn_risk"] < before.loc[who["person_id"], "churn_risk"]
    part = int(person_part([who["person_id"]])[0])
    others = before.index[before["part"] != part]
    cols = ["churn_risk", "predicted_ltv", "next_action"]
    pd.testing.assert_frame_equal(after.loc[others, cols], before.loc[others, cols])
    status = api.store.read_json(f"{CDP}/predictions/status.json")
    state = api.store.read_json(f"{CDP}/state.json")
    assert status["tokens"] == state["activity_parts"] and state["predictions"] == status["table"]


def test_a_failed_update_keeps_the_old_predictions_and_the_next_refresh_heals(api):
    from functions.cdp import predictions, refresh

    before = _table(api, "predictions").set_index("person_id")
    who = _lapsed_buyer(api)
    orders = _table(api, "profiles").set_index("person_id").loc[who["person_id"], "total_orders"]

    def broken(*a, **k):
        raise OSError("injected: scoring failed")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(predictions, "score_persons", broken)
        _order_webhook(api, who["email"], "95.00", 880002)
    after = _table(api, "profiles").set_index("person_id").loc[who["person_id"], "total_orders"]
    assert after == orders + 1  # the refresh itself completed
    stale = _table(api, "predictions").set_index("person_id")
    pd.testing.assert_frame_equal(stale, before)  # untouched, still readable
    out = refresh.catch_up(api.store, WS)  # nothing new to fold: the predictions still catch up
    assert out["predictions"]["scored_parts"] == 1
    healed = _table(api, "predictions").set_index("person_id")
    assert healed.loc[who["person_id"], "churn_risk"] < before.loc[who["person_id"], "churn_risk"]
    assert np.isfinite(healed["churn_risk"].dropna()).all()
