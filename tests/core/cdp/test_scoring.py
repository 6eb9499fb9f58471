"""Scoring a base at its data's end, judged against the future GlowBeauty plants after it (never seen by the
models): purchase churn risk ranks and calibrates better than recency, 90-day purchases and revenue of the
lifetime models (one-off orders by BG/NBD, subscription charges by their schedule) land within 10% of what
happens, per-customer error beats a naive rate, and the 90% intervals hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.cdp.churn_features import churn_features
from core.cdp.ltv import rfm_summary
from core.cdp.scoring import PREDICTION_COLUMNS, fit_predictor, predict_lifetime, score_persons, subscription_lifetimes
from tests.core.cdp.test_churn import _world


@pytest.fixture(scope="module", params=["a", "b"], ids=["glowbeauty-a", "glowbeauty-b"])
def scored(request):
    _, truth, ev, end = _world(request.param)
    orders = ev[(ev["type"] == "order") & (ev["amount"] > 0)]
    tx = pd.DataFrame({"person_id": orders["person_id"].to_numpy(),
                       "day": orders["time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize().to_numpy(),
                       "amount": orders["amount"].to_numpy()})
    tx = tx.groupby(["person_id", "day"], as_index=False)["amount"].sum()
    pred = fit_predictor(ev, tx, end)
    return truth, ev, tx, end, pred, score_persons(pred, ev, tx).set_index("person_id")


def _truth(truth: dict, index: pd.Index, key: str) -> pd.Series:
    return pd.Series({p: v[key] for p, v in truth["persons"].items()}).reindex(index)


def test_every_person_gets_the_columns_and_buyers_a_risk(scored):
    _, ev, tx, _, pred, s = scored
    assert list(s.reset_index().columns) == list(PREDICTION_COLUMNS)
    buyers = pd.Index(tx["person_id"].unique())
    assert s.loc[buyers, "churn_risk"].between(0, 1).all()
    assert s.loc[s.index.difference(buyers), "churn_risk"].isna().all()
    assert (s.loc[buyers, "predicted_ltv_low"] <= s.loc[buyers, "predicted_ltv_high"]).all()
    assert pred.ltv is not None and pred.ltv_evaluation["actual_purchases"] > 0
    cards = pred.cards()
    assert cards["purchase"]["evaluation"]["model"]["roc_auc"] > 0.5 and cards["ltv"]["model"] in {"bgnbd", "mbgnbd"}


def test_purchase_churn_risk_beats_recency_on_the_planted_future(scored):
    truth, _, tx, _, _, s = scored
    pop = s[s["purchase_churn_risk"].notna()]
    y = _truth(truth, pop.index, "purchase_churn").astype(int).to_numpy()
    p = pop["purchase_churn_risk"].to_numpy()
    days_since = (tx["day"].max() - tx.groupby("person_id")["day"].max()).dt.days.reindex(pop.index).to_numpy()
    assert roc_auc_score(y, p) > max(0.85, roc_auc_score(y, days_since))
    brier, base = float(np.mean((p - y) ** 2)), float(y.mean() * (1 - y.mean()))
    assert brier < base


def test_lifetime_predictions_meet_the_planted_future(scored):
    truth, ev, tx, end, pred, s = scored
    assert pred.recurring_split and pred.recurring is not None  # charges follow their schedule, one-offs BG/NBD
    p, _ = predict_lifetime(pred, ev, tx, churn_features(ev, end, persons=s.index), s, 90)
    last = (end - pd.Timedelta(days=1)).tz_localize(None)
    summary = rfm_summary(tx.rename(columns={"person_id": "customer"}), "customer", "day", "amount", last)
    assert p.index.equals(summary.index)  # every buyer, whether or not she has a one-off order
    orders = _truth(truth, summary.index, "future_orders").astype(float)
    revenue = _truth(truth, summary.index, "future_revenue").astype(float)
    assert p["expected_purchases"].sum() == pytest.approx(orders.sum(), rel=0.10)
    assert p["expected_revenue"].sum() == pytest.approx(revenue.sum(), rel=0.10)
    naive = summary["frequency"] / summary["T"].where(summary["T"] > 0, 1.0) * 90
    rmse = float(np.sqrt(np.mean((p["expected_purchases"] - orders) ** 2)))
    assert rmse < float(np.sqrt(np.mean((naive - orders) ** 2)))
    held = ((revenue >= p["predicted_ltv_low"]) & (revenue <= p["predicted_ltv_high"])).mean()
    assert 0.85 <= held <= 0.97


def test_subscription_lifetimes_follow_the_events(scored):
    _, ev, _, end, _, _ = scored
    life = subscription_lifetimes(ev, end)
    created = ev[ev["type"] == "subscription_created"]
    cancelled = ev[ev["type"] == "subscription_cancelled"]
    assert 0 < len(life) <= len(created)
    assert int((~life["active"]).sum()) <= len(cancelled) and (life["periods"] >= 0).all()
